package cmd

import (
	"fmt"
	"os"
	"strings"

	"github.com/custodylog/custody/log"
	"github.com/spf13/cobra"
)

func (e *env) initCmd() *cobra.Command {
	var dir, origin, dsn string
	c := &cobra.Command{
		Use:   "init --dir DIR --origin NAME",
		Short: "Create a new, empty log",
		Long: `init creates a log in DIR: DIR/log.key (private signing key, 0600),
DIR/log.pub (verifier key), and the SQLite database DIR/custody.db holding
the signed size-0 checkpoint. It refuses to touch a directory that already
holds a log.`,
		Example: `  custody init --dir ./mylog --origin transparency.example.com/custody
  custody serve --dir ./mylog --token-file tokens.txt`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if dir == "" || origin == "" {
				return usageError("pass --dir and --origin, e.g. --dir ./mylog --origin example.com/custody", "missing --dir or --origin")
			}
			f := logFiles{dir}
			for _, p := range []string{f.key(), f.pub(), f.db()} {
				if exists(p) {
					return withHint(fmt.Errorf("%s already exists: refusing to overwrite an existing log", p), "pick a new --dir; to serve the existing log run 'custody serve --dir %s'", dir)
				}
			}
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return fmt.Errorf("creating %s: %w", dir, err)
			}
			vkey, err := writeKeyPair(strings.TrimSuffix(f.key(), ".key"), origin)
			if err != nil {
				return err
			}
			signer, err := loadSigner(f.key())
			if err != nil {
				return err
			}
			st, err := openStore(dsn, f)
			if err != nil {
				return err
			}
			defer st.Close()
			if err := log.Create(c.Context(), st, signer); err != nil {
				return fmt.Errorf("writing the first checkpoint: %w", err)
			}
			fmt.Fprintf(e.stdout, "%s\n", vkey)
			fmt.Fprintf(e.stderr, "custody: created log %s in %s (verifier key in %s)\n", origin, dir, f.pub())
			return nil
		},
	}
	c.Flags().StringVar(&dir, "dir", "", "directory for the log's key and database (created, mode 0700)")
	c.Flags().StringVar(&origin, "origin", "", "the log's origin and key name, e.g. example.com/custody")
	c.Flags().StringVar(&dsn, "store", "", "database: empty for DIR/custody.db (SQLite)")
	return c
}
