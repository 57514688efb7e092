package cmd

import (
	"errors"
	"fmt"
	"time"

	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/client"
	"github.com/custodylog/custody/internal/keyfile"
	"github.com/custodylog/custody/site"
	"github.com/spf13/cobra"
)

// siteKeygen writes a site key pair (keyfile.WriteSite).
func (e *env) siteKeygen(name, out string) error {
	if out == "" {
		out = name
	}
	vkey, err := keyfile.WriteSite(out, name)
	if err = keyErr(err, "", "a site name is 2 to 32 characters of a-z 0-9 -, e.g. --site zrh"); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s\n", vkey)
	fmt.Fprintf(e.stderr, "custody: wrote %s.key (private, 0600) and %s.pub: list %s.pub under the policy's sites\n", out, out, out)
	return nil
}

// siteOption adds the signer of the site key file path to opts ("" adds
// nothing).
func siteOption(opts []client.Option, path string) ([]client.Option, error) {
	if path == "" {
		return opts, nil
	}
	s, err := keyfile.LoadSite(path)
	if err != nil {
		return nil, keyErr(err, path, "create one with 'custody keygen --site NAME'")
	}
	return append(opts, client.WithSiteSigner(s, nil, "")), nil
}

func (e *env) signCmd() *cobra.Command {
	var key, origin string
	c := &cobra.Command{
		Use:   "sign --key SITE.key --log-origin ORIGIN",
		Short: "Sign events (JSON lines on stdin) as a site, for scripts",
		Long: `sign reads events as JSON lines on standard input and writes them, in
canonical form, followed after every 1024 of them (and at the end) by the
attestation line {"attestation": "..."} by which the site of SITE.key
vouches for them in the log ORIGIN, now. POST the output to /v1/events as
it is, soon (the log accepts an attestation for 15 minutes). See
docs/site-signing.md.`,
		Example: `  custody sign --key zrh.key --log-origin transparency.example.com/custody < events.jsonl > signed.jsonl`,
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if key == "" || origin == "" {
				return usageError("pass --key SITE.key and --log-origin (the first line of the log's checkpoint)", "missing --key or --log-origin")
			}
			s, err := keyfile.LoadSite(key)
			if err != nil {
				return keyErr(err, key, "create one with 'custody keygen --site NAME'")
			}
			err = client.SignStream(e.stdin, e.stdout, "standard input", s, nil, origin, time.Now())
			if errors.As(err, new(*client.InputError)) {
				return usageError("fix the input; nothing was signed", "%v", err)
			}
			return err
		},
	}
	c.Flags().StringVar(&key, "key", "", "the site's private key file (custody keygen --site)")
	c.Flags().StringVar(&origin, "log-origin", "", "the log's origin: the first line of its checkpoint")
	return c
}

// siteSet returns the site keys of the policy file's sites section (""
// gives nil: no check).
func siteSet(policy string) (*site.Set, error) {
	if policy == "" {
		return nil, nil
	}
	set, err := audit.LoadSiteSet(policy)
	if err != nil {
		return nil, usageErr(err, "fix the policy's sites section; see docs/site-signing.md")
	}
	return set, nil
}
