package cmd

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/custodylog/custody/log"
	logserver "github.com/custodylog/custody/server"
	"github.com/custodylog/custody/store"
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
holds a log.

With --store, the checkpoint goes to that database instead of
DIR/custody.db: sqlite:PATH, or a PostgreSQL URL whose search_path names
the log's schema (created if it has no tables). A store that already holds
a log is refused before anything is written. Pass the same --store to
'custody serve' and 'custody fsck'.`,
		Example: `  custody init --dir ./mylog --origin transparency.example.com/custody
  custody serve --dir ./mylog --token-file tokens.txt
  custody init --dir ./mylog --origin transparency.example.com/custody --store 'postgres://custody@db.example.com/custody?sslmode=verify-full&search_path=mylog'`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if dir == "" || origin == "" {
				return usageError("pass --dir and --origin, e.g. --dir ./mylog --origin example.com/custody", "missing --dir or --origin")
			}
			f := logFiles{dir}
			for _, p := range []string{f.key(), f.pub(), f.db()} {
				if fi, err := os.Lstat(p); err == nil && fi.Mode()&os.ModeSymlink != 0 {
					return withHint(fmt.Errorf("%s is a symbolic link: refusing to create the log's files through it", p), "remove the link, or pick a new --dir")
				}
				if exists(p) {
					return withHint(fmt.Errorf("%s already exists: refusing to overwrite an existing log", p), "pick a new --dir; to serve the existing log run 'custody serve --dir %s'", dir)
				}
			}
			var st store.Store
			if logserver.IsPostgres(dsn) {
				// A shared database may hold a log already: refuse it before
				// writing keys that would then block a retry.
				var err error
				if st, err = logserver.OpenStore(dsn, dir); err != nil {
					return storeOpenErr(err, "--store", dsn)
				}
				defer st.Close()
				if cp, err := st.Latest(c.Context()); err == nil {
					return withHint(fmt.Errorf("--store %s already holds a log of %d entries: refusing to overwrite it", redactDSN(dsn), cp.Size),
						"give a new schema (search_path) or database; to serve the existing log run 'custody serve --dir DIR --store DSN' with its key")
				} else if !errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("reading --store %s: %w", redactDSN(dsn), err)
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
			if st == nil {
				if st, err = logserver.OpenStore(dsn, dir); err != nil {
					return err
				}
				defer st.Close()
			}
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
	c.Flags().StringVar(&dsn, "store", "", "database: empty for DIR/custody.db (SQLite), sqlite:PATH, or a PostgreSQL URL")
	return c
}
