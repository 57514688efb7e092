package cmd

import (
	"errors"
	"fmt"

	"github.com/custodylog/custody/internal/keyfile"
	"github.com/spf13/cobra"
)

// keyErr gives an error of package keyfile about a bad name or a file
// that holds no key the fix create, where the caller knows a better one
// than keyfile's own (Hint). path is no longer needed: keyfile's errors
// name the file in their text and their fix.
func keyErr(err error, path, create string) error {
	if create != "" && (errors.Is(err, keyfile.ErrBadName) || errors.Is(err, keyfile.ErrNotKey)) {
		return withHint(err, "%s", create)
	}
	return err
}

// keyHint returns the hint for an error loading the verifier key given to
// a flag (keyfile.VerifierHint: a private key gets the fix naming the flag).
var keyHint = keyfile.VerifierHint

// loadVerifier reads a verifier key given as a string or a file name.
var loadVerifier = keyfile.LoadVerifier

func (e *env) keygenCmd() *cobra.Command {
	var origin, out, siteName string
	var witnessKey bool
	c := &cobra.Command{
		Use:   "keygen --origin NAME [--out PREFIX] [--witness] | --site NAME",
		Short: "Create an Ed25519 signing key pair for a log",
		Long: `keygen creates PREFIX.key (the private key, mode 0600, never overwritten)
and PREFIX.pub (the verifier key to give to auditors and witnesses), in the
signed-note key format of golang.org/x/mod/sumdb/note. The origin is the key
name and the log's identity: a scheme-less URL such as example.com/custody.
With --witness the key is a witness's: NAME is the witness name and
PREFIX.pub holds its cosignature/v1 verifier key (type 0x04). With --site
NAME the key is a data centre's site key (default PREFIX: NAME): list
PREFIX.pub in the routing policy's sites section; the site signs what it
sends with PREFIX.key (custody append --site-key, custody sign).`,
		Example: `  custody keygen --origin transparency.example.com/custody --out log
  cat log.pub   # transparency.example.com/custody+1a2b3c4d+AT…`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if siteName != "" {
				return e.siteKeygen(siteName, out)
			}
			if origin == "" {
				return usageError("pass --origin, e.g. --origin example.com/custody", "missing --origin")
			}
			if out == "" {
				out = "custody"
			}
			write := keyfile.WriteLog
			if witnessKey {
				write = keyfile.WriteWitness
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
	c.Flags().StringVar(&siteName, "site", "", "create a site key for the data centre NAME (writes NAME.key and NAME.pub unless --out)")
	c.Flags().BoolVar(&witnessKey, "witness", false, "create a witness key: PREFIX.pub is the cosignature/v1 verifier key (type 0x04)")
	return c
}
