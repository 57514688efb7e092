// Package keyfile writes and reads the key files of logs and witnesses:
// PREFIX.key (a golang.org/x/mod/sumdb/note PRIVATE+KEY, mode 0600) and
// PREFIX.pub (the verifier key). Key files are never written over or
// through a symbolic link, and private keys are refused when group or
// others may read them. No error quotes key material.
package keyfile

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"

	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

// Errors callers tell apart (with errors.Is) to say how to fix them.
var (
	// ErrBadName: the origin or witness name cannot name a key.
	ErrBadName = errors.New("not a key name")
	// ErrExists: something (a file, a symbolic link) is already where a
	// key file would be written.
	ErrExists = errors.New("a key file is in the way")
	// ErrMode: a private key file group or others may access.
	ErrMode = errors.New("private key file is accessible by group or others")
	// ErrNotKey: the file does not hold a signing key of the kind asked for.
	ErrNotKey = errors.New("not a signing key")
)

// kindError is an error of one of the kinds above with its own message
// and its fix.
type kindError struct {
	kind error
	msg  string
	fix  string
}

func (e *kindError) Error() string        { return e.msg }
func (e *kindError) Is(target error) bool { return target == e.kind }

// Hint says what to do about the error, in the words of custody's
// commands.
func (e *kindError) Hint() string { return e.fix }

// ExitCode is custody's exit code for the error: 1.
func (e *kindError) ExitCode() int { return 1 }

func errorf(kind error, fix, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...), fix: fix}
}

// Fixes of kindErrors.
const (
	fixLogName     = "the origin must be a non-empty name without spaces or '+', e.g. example.com/custody"
	fixLink        = "remove the link, or choose another --dir/--out"
	fixLogKey      = "create one with 'custody keygen' or 'custody init'"
	fixWitnessKey  = "create one with 'custody keygen --witness --origin NAME'"
	fixSiteKey     = "create one with 'custody keygen --site NAME'"
	fixWitnessName = "the name must be non-empty without spaces or '+', e.g. witness.example.com"
	fixSiteName    = "a site name is 2 to 32 characters of a-z 0-9 -, e.g. --site zrh"
)

// WriteLog creates the key pair of a log named origin: PREFIX.key and
// PREFIX.pub (see Write). It returns the verifier key.
func WriteLog(prefix, origin string) (string, error) {
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		return "", errorf(ErrBadName, fixLogName, "%v", err)
	}
	return Write(prefix, skey, vkey)
}

// WriteWitness creates the key pair of a witness named name: PREFIX.key
// (an x/mod PRIVATE+KEY of type 0x01) and PREFIX.pub (its cosignature/v1
// verifier key, type 0x04). It returns the verifier key.
func WriteWitness(prefix, name string) (string, error) {
	skey, _, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		return "", errorf(ErrBadName, fixWitnessName, "%v", err)
	}
	_, vkey, err := verify.NewCosignatureSignerFromKey(skey, nil)
	if err != nil {
		return "", err
	}
	return Write(prefix, skey, vkey)
}

// Write writes the private key skey to PREFIX.key (mode 0600) and vkey to
// PREFIX.pub, refusing (ErrExists) to overwrite either. Both are created
// exclusively and without following symbolic links (O_EXCL|O_NOFOLLOW): a
// symlink planted at either name, dangling or not, is refused, never
// written through. Both are synced. It returns vkey.
func Write(prefix, skey, vkey string) (string, error) {
	keyPath, pubPath := prefix+".key", prefix+".pub"
	for _, p := range []string{keyPath, pubPath} {
		if err := refuseExisting(p); err != nil {
			return "", err
		}
	}
	if err := CreateFile(keyPath, skey+"\n", 0o600); err != nil {
		return "", err
	}
	if err := CreateFile(pubPath, vkey+"\n", 0o644); err != nil {
		os.Remove(keyPath)
		return "", err
	}
	return vkey, nil
}

// refuseExisting fails if anything is at p, a symbolic link included
// (dangling or not).
func refuseExisting(p string) error {
	fi, err := os.Lstat(p)
	switch {
	case err == nil && fi.Mode()&fs.ModeSymlink != 0:
		return errorf(ErrExists, fixLink, "%s is a symbolic link: refusing to write a key through it", p)
	case err == nil:
		return errorf(ErrExists, "refusing to overwrite a key; choose another --out or remove it yourself", "%s already exists", p)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("checking %s: %w", p, err)
	}
	return nil
}

// CreateFile creates p exclusively, not following a symbolic link at p,
// writes data and syncs it. On failure it removes what it created.
func CreateFile(p, data string, mode os.FileMode) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, mode)
	if err != nil {
		if errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.ELOOP) {
			// Appeared since refuseExisting looked (a race, or a link).
			return errorf(ErrExists, fixLink, "%s appeared while the keys were being written: refusing to write over or through it", p)
		}
		return fmt.Errorf("creating %s: %w", p, err)
	}
	if _, err := f.WriteString(data); err != nil {
		f.Close()
		os.Remove(p)
		return fmt.Errorf("writing %s: %w", p, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(p)
		return fmt.Errorf("syncing %s: %w", p, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(p)
		return fmt.Errorf("writing %s: %w", p, err)
	}
	return nil
}

// readPrivate reads a private key file, refusing one group or others may
// access.
func readPrivate(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("reading private key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", errorf(ErrMode, "chmod 600 "+path, "private key %s is readable by group or others (mode %04o)", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading private key: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// LoadSigner reads a log's PRIVATE+KEY file.
func LoadSigner(path string) (note.Signer, error) {
	skey, err := readPrivate(path)
	if err != nil {
		return nil, err
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		// Do not echo the file's contents.
		return nil, errorf(ErrNotKey, fixLogKey, "%s does not hold a signing key (PRIVATE+KEY+…)", path)
	}
	return s, nil
}

// LoadCosigner reads a witness's PRIVATE+KEY file and returns its
// cosignature/v1 signer and verifier key.
func LoadCosigner(path string) (note.Signer, string, error) {
	skey, err := readPrivate(path)
	if err != nil {
		return nil, "", err
	}
	s, vkey, err := verify.NewCosignatureSignerFromKey(skey, nil)
	if err != nil {
		// The error never includes the key.
		return nil, "", errorf(ErrNotKey, fixWitnessKey, "%s: %v", path, err)
	}
	return s, vkey, nil
}
