package site

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"io"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/custodylog/custody/record"
)

// Signer is what signs a site's attestations. It is exactly
// golang.org/x/mod/sumdb/note.Signer, so any note signer fits:
//
//   - Name returns the site's name, [a-z0-9-]{2,32} (the policy's key for
//     the site and the name inside its verifier key);
//   - KeyHash returns the signed-note key hash of the site's public key:
//     the first 4 bytes, big-endian, of SHA-256(name + "\n" + 0x01 +
//     the 32-byte Ed25519 public key);
//   - Sign returns the 64-byte Ed25519 signature (RFC 8032, pure Ed25519,
//     no pre-hashing) of msg, which is the attestation's text.
//
// # Hardware signers
//
// An HSM, TPM or cloud KMS holding an Ed25519 key plugs in by implementing
// these three methods: Name and KeyHash return constants computed once
// from the public key (NewVerifierKey gives the verifier key string to put
// in the routing policy, and ParseVerifierKey of that string its hash),
// and Sign calls the
// device's Ed25519 operation (PKCS#11 CKM_EDDSA with no parameters, a
// TPM 2.0 TPM2_Sign with TPM_ALG_EDDSA where supported, or a KMS
// "ED25519" sign of the raw message). The device must sign the message
// itself, not a digest of it (Ed25519ph signatures do not verify). Sign
// may block; the site code calls it once per batch. Attest checks every
// signature with the public key before it returns, so a device that
// signs with another key or a wrong algorithm fails at once rather than
// at the log.
type Signer = note.Signer

// GenerateKey returns a new Ed25519 site key pair for the site name, as
// signed-note key strings: the private key
// "PRIVATE+KEY+NAME+HASH+BASE64" and the verifier key "NAME+HASH+BASE64"
// (golang.org/x/mod/sumdb/note.GenerateKey's format, which that package,
// custody's log keys and other signed-note tools parse). rand is
// crypto/rand.Reader except in tests. The name must satisfy
// record.CheckSite.
func GenerateKey(rand io.Reader, name string) (skey, vkey string, err error) {
	if err := record.CheckSite(name); err != nil {
		return "", "", fmt.Errorf("site key for %q: %w", name, err)
	}
	return note.GenerateKey(rand, name)
}

// NewSigner returns the software Signer of a private key string written
// by GenerateKey (surrounding white space, such as a final newline, is
// ignored). Its name must be a valid site name. The key string is secret:
// whoever holds it speaks for the site.
func NewSigner(skey string) (Signer, error) {
	s, err := note.NewSigner(strings.TrimSpace(skey))
	if err != nil {
		return nil, fmt.Errorf("site private key: %w: want PRIVATE+KEY+SITE+HASH+BASE64 from custody keygen --site", err)
	}
	if err := record.CheckSite(s.Name()); err != nil {
		return nil, fmt.Errorf("site private key names %q, not a valid site name: %w", s.Name(), err)
	}
	return s, nil
}

// ParseVerifierKey parses a site verifier key string "NAME+HASH+BASE64"
// (an Ed25519 signed-note verifier key whose name is a valid site name)
// and returns the note verifier and the raw public key.
func ParseVerifierKey(vkey string) (note.Verifier, ed25519.PublicKey, error) {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, nil, fmt.Errorf("site verifier key %.80q: %w: want NAME+HASH+BASE64 from custody keygen --site", vkey, err)
	}
	if err := record.CheckSite(v.Name()); err != nil {
		return nil, nil, fmt.Errorf("site verifier key names %q, not a valid site name: %w", v.Name(), err)
	}
	// NewVerifier accepted it, so it is NAME+HASH+base64(0x01 || 32 bytes).
	_, rest, _ := strings.Cut(vkey, "+")
	_, b64, _ := strings.Cut(rest, "+")
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) != 1+ed25519.PublicKeySize || raw[0] != 1 {
		return nil, nil, fmt.Errorf("site verifier key %.80q: not an Ed25519 key", vkey)
	}
	return v, ed25519.PublicKey(raw[1:]), nil
}

// NewVerifierKey returns the verifier key string of the site name's
// Ed25519 public key pub, for example one read from an HSM.
func NewVerifierKey(name string, pub ed25519.PublicKey) (string, error) {
	if err := record.CheckSite(name); err != nil {
		return "", err
	}
	return note.NewEd25519VerifierKey(name, pub)
}
