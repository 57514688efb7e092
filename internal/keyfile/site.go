package keyfile

import (
	"crypto/rand"

	"github.com/custodylog/custody/site"
)

// WriteSite creates a site key pair (site.GenerateKey) for the site name:
// PREFIX.key (the private key, 0600) and PREFIX.pub (its verifier key, for
// the routing policy's sites section), refusing (ErrExists) to overwrite
// either. It returns the verifier key.
func WriteSite(prefix, name string) (string, error) {
	skey, vkey, err := site.GenerateKey(rand.Reader, name)
	if err != nil {
		return "", errorf(ErrBadName, fixSiteName, "%v", err)
	}
	return Write(prefix, skey, vkey)
}

// LoadSite reads a site's PRIVATE+KEY file (refusing one group or others
// may access, ErrMode) and returns its software signer.
func LoadSite(path string) (site.Signer, error) {
	skey, err := readPrivate(path)
	if err != nil {
		return nil, err
	}
	s, err := site.NewSigner(skey)
	if err != nil {
		// Do not echo the file's contents.
		return nil, errorf(ErrNotKey, fixSiteKey, "%s does not hold a site signing key (PRIVATE+KEY+SITE+…): %v", path, err)
	}
	return s, nil
}
