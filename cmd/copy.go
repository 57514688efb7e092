package cmd

import (
	"github.com/custodylog/custody/internal/termprogress"
	logserver "github.com/custodylog/custody/server"
	"github.com/spf13/cobra"
)

func (e *env) copyCmd() *cobra.Command {
	var from, to string
	var asJSON bool
	c := &cobra.Command{
		Use:   "copy --from DSN --to DSN [--json]",
		Short: "Copy a log from one store to another (SQLite, PostgreSQL) and prove the copy",
		Long: `copy moves a log between storage backends: from any store 'custody serve
--store' accepts to any other (sqlite:PATH or a path, a PostgreSQL URL).
The destination must be empty.

Every stored checkpoint is copied in order, each in one transaction with
the entries it added and the hash tiles as of its size (recomputed from
the entries' leaf hashes), and with its signed note byte for byte. Before
anything is written, each source entry's leaf hash, identity and sample
are checked against its data, and the root recomputed from the entries is
compared with each checkpoint's.

Then the copy is proved from the destination alone: the root is
recomputed from its entries at every checkpoint, its tiles are compared
with the recomputed ones, every checkpoint note is compared byte for byte
with the source's, and the latest checkpoints must be the same.

The summary counts the entries, the checkpoints and the hash tiles the
destination holds (each tile once, however often it grew during the copy:
the way 'custody fsck' counts them, so the two agree on a healthy log).

Stop the log's writer (custody serve) first, or copy from a snapshot:
checkpoints the source gains during the copy are not copied.

Exit codes: 0 copied and proved, 2 a mismatch (the source is damaged or
the copy differs), 3 usage or I/O error.`,
		Example: `  custody copy --from sqlite:mylog/custody.db --to postgres://custody@db.example.com/custody
  custody copy --from postgres://custody@db.example.com/custody --to sqlite:restore/custody.db --json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			bar := termprogress.NewPhases(e.stderr)
			sum, err := logserver.CopyLog(c.Context(), from, to, bar.Set)
			bar.Finish()
			if err != nil {
				return err
			}
			return e.emit(asJSON, sum, "copied %d entries, %d checkpoints and %d tiles from %s to %s\n"+
				"verified: the destination's entries give every checkpoint's root, its tiles and %d checkpoint notes match; latest size %d, root %s\n",
				sum.Entries, sum.Checkpoints, sum.Tiles, sum.From, sum.To, sum.Checkpoints, sum.Size, sum.Root)
		},
	}
	c.Flags().StringVar(&from, "from", "", "the source store: sqlite:PATH, a path, or a PostgreSQL URL")
	c.Flags().StringVar(&to, "to", "", "the destination store, which must be empty")
	c.Flags().BoolVar(&asJSON, "json", false, "print the summary as JSON")
	return c
}
