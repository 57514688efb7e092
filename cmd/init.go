package cmd

import (
	"fmt"
	"path/filepath"

	logserver "github.com/custodylog/custody/server"
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
			vkey, err := logserver.Init(c.Context(), dir, origin, dsn)
			switch kind, cause := serverErr(err); {
			case kind == logserver.KindLink:
				return withHint(err, "remove the link, or pick a new --dir")
			case kind == logserver.KindExists:
				return withHint(err, "pick a new --dir; to serve the existing log run 'custody serve --dir %s'", dir)
			case kind == logserver.KindStoreUsed:
				return withHint(err, "give a new schema (search_path) or database; to serve the existing log run 'custody serve --dir DIR --store DSN' with its key")
			case kind == logserver.KindOpenStore:
				return storeOpenErr(cause, "--store", dsn)
			case kind == logserver.KindSigner:
				return keyErr(cause, filepath.Join(dir, logserver.KeyFile), "create one with 'custody keygen' or 'custody init'")
			case err != nil:
				return keyErr(err, "", "the origin must be a non-empty name without spaces or '+', e.g. example.com/custody")
			}
			fmt.Fprintf(e.stdout, "%s\n", vkey)
			fmt.Fprintf(e.stderr, "custody: created log %s in %s (verifier key in %s)\n", origin, dir, filepath.Join(dir, logserver.PubFile))
			return nil
		},
	}
	c.Flags().StringVar(&dir, "dir", "", "directory for the log's key and database (created, mode 0700)")
	c.Flags().StringVar(&origin, "origin", "", "the log's origin and key name, e.g. example.com/custody")
	c.Flags().StringVar(&dsn, "store", "", "database: empty for DIR/custody.db (SQLite), sqlite:PATH, or a PostgreSQL URL")
	return c
}
