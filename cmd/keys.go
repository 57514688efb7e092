package cmd

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/custodylog/custody/verify"
	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"
)

// writeKeyPair writes prefix.key (0600, never overwritten) and prefix.pub.
func writeKeyPair(prefix, origin string) (vkey string, err error) {
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		return "", withHint(err, "the origin must be a non-empty name without spaces or '+', e.g. example.com/custody")
	}
	return writeKeyFiles(prefix, skey, vkey)
}

// writeKeyFiles writes the private key skey to prefix.key (mode 0600) and
// vkey to prefix.pub, refusing to overwrite either. Both are created
// exclusively and without following symbolic links (O_EXCL|O_NOFOLLOW):
// a symlink planted at either name, dangling or not, is refused, never
// written through. Both are synced. It returns vkey.
func writeKeyFiles(prefix, skey, vkey string) (string, error) {
	keyPath, pubPath := prefix+".key", prefix+".pub"
	for _, p := range []string{keyPath, pubPath} {
		if err := refuseExisting(p); err != nil {
			return "", err
		}
	}
	if err := createFile(keyPath, skey+"\n", 0o600); err != nil {
		return "", err
	}
	if err := createFile(pubPath, vkey+"\n", 0o644); err != nil {
		os.Remove(keyPath)
		return "", err
	}
	return vkey, nil
}

// refuseExisting fails if anything is at p, a symbolic link included
// (dangling or not): key files are never written over or through.
func refuseExisting(p string) error {
	fi, err := os.Lstat(p)
	switch {
	case err == nil && fi.Mode()&fs.ModeSymlink != 0:
		return withHint(fmt.Errorf("%s is a symbolic link: refusing to write a key through it", p), "remove the link, or choose another --dir/--out")
	case err == nil:
		return withHint(fmt.Errorf("%s already exists", p), "refusing to overwrite a key; choose another --out or remove it yourself")
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("checking %s: %w", p, err)
	}
	return nil
}

// createFile creates p exclusively, not following a symbolic link at p,
// writes data and syncs it. On failure it removes what it created.
func createFile(p, data string, mode os.FileMode) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, mode)
	if err != nil {
		if errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.ELOOP) {
			// Appeared since refuseExisting looked (a race, or a link).
			return withHint(fmt.Errorf("%s appeared while the keys were being written: refusing to write over or through it", p), "remove it, or choose another --dir/--out")
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

// loadSigner reads a PRIVATE+KEY file, refusing one that group or others can
// read. The key is never printed.
func loadSigner(path string) (note.Signer, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("reading private key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, withHint(fmt.Errorf("private key %s is readable by group or others (mode %04o)", path, fi.Mode().Perm()), "chmod 600 %s", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading private key: %w", err)
	}
	s, err := note.NewSigner(strings.TrimSpace(string(b)))
	if err != nil {
		// Do not echo the file's contents.
		return nil, withHint(fmt.Errorf("%s does not hold a signing key (PRIVATE+KEY+…)", path), "create one with 'custody keygen' or 'custody init'")
	}
	return s, nil
}

// keyHint returns the hint for an error loading the verifier key given to
// flag: hint, or, if what was given is (or holds) a private key, a hint that
// names the flag and asks for the public .pub file. The errors of the key
// loaders never quote key material (verify.LoadVerifierKey).
func keyHint(flag string, err error, hint string) string {
	if errors.Is(err, verify.ErrPrivateKey) {
		return fmt.Sprintf("%s takes public verifier keys: pass the .pub file (e.g. mylog/log.pub) or its contents, never the private .key file, which stays with its owner", flag)
	}
	return hint
}

// loadVerifier reads a verifier key given as a string or a file name.
func loadVerifier(s string) (note.Verifier, error) {
	k, err := verify.LoadVerifierKey(s)
	if err != nil {
		return nil, err
	}
	return verify.NewVerifier(k)
}

func (e *env) keygenCmd() *cobra.Command {
	var origin, out string
	var witnessKey bool
	c := &cobra.Command{
		Use:   "keygen --origin NAME [--out PREFIX] [--witness]",
		Short: "Create an Ed25519 signing key pair for a log",
		Long: `keygen creates PREFIX.key (the private key, mode 0600, never overwritten)
and PREFIX.pub (the verifier key to give to auditors and witnesses), in the
signed-note key format of golang.org/x/mod/sumdb/note. The origin is the key
name and the log's identity: a scheme-less URL such as example.com/custody.
With --witness the key is a witness's: NAME is the witness name and
PREFIX.pub holds its cosignature/v1 verifier key (type 0x04).`,
		Example: `  custody keygen --origin transparency.example.com/custody --out log
  cat log.pub   # transparency.example.com/custody+1a2b3c4d+AT…`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if origin == "" {
				return usageError("pass --origin, e.g. --origin example.com/custody", "missing --origin")
			}
			if out == "" {
				out = "custody"
			}
			write := writeKeyPair
			if witnessKey {
				write = writeWitnessKeyPair
			}
			vkey, err := write(out, origin)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s\n", vkey)
			fmt.Fprintf(e.stderr, "custody: wrote %s.key (private, 0600) and %s.pub\n", out, out)
			return nil
		},
	}
	c.Flags().StringVar(&origin, "origin", "", "key name and log origin, e.g. example.com/custody")
	c.Flags().StringVar(&out, "out", "", "file name prefix (default \"custody\")")
	c.Flags().BoolVar(&witnessKey, "witness", false, "create a witness key: PREFIX.pub is the cosignature/v1 verifier key (type 0x04)")
	return c
}

// logFiles are the files of a log directory.
type logFiles struct{ dir string }

func (f logFiles) key() string { return filepath.Join(f.dir, "log.key") }
func (f logFiles) pub() string { return filepath.Join(f.dir, "log.pub") }
func (f logFiles) db() string  { return filepath.Join(f.dir, "custody.db") }

// exists reports whether anything is at p, a symbolic link included (even
// a dangling one): callers refuse to create files there.
func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil || !errors.Is(err, fs.ErrNotExist)
}
