package cmd

import (
	"fmt"

	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/fsck"
	logserver "github.com/custodylog/custody/server"
	"github.com/spf13/cobra"
)

func (e *env) fsckCmd() *cobra.Command {
	var dir, dsn, policy string
	var asJSON, require bool
	var known []string
	c := &cobra.Command{
		Use:   "fsck --dir DIR [--store DSN] [--checkpoint FILE]... [--json]",
		Short: "Check a log's database against its own entries",
		Long: `fsck recomputes everything in a log's store from the stored entries and
reports every disagreement (it does not stop at the first):

  entries      leaf_hash = SHA-256(0x00 || data), data is a canonical event,
               identity and sample columns match the event, indexes contiguous
               from 0 up to the latest checkpoint;
  hash tiles   level 0 from the leaf hashes, higher levels from the full tiles
               below; each stored tile must equal the recomputed one;
  checkpoints  every stored note verifies with DIR/log.pub, matches its row,
               and its root is the root of the first SIZE entries;
  samples      the per-sample index lists every entry of the sample;
  --checkpoint signed checkpoints of this log kept elsewhere (by an auditor,
               a witness, a receipt): the stored entries must still give
               their roots. A database restored from an older copy, or
               rewritten, fails here (rollback, fork) even when it is
               consistent with itself;
  --policy     site signatures (docs/site-signing.md): every attestation
               against the policy's sites section and every event's tie to
               one (unsigned, bad-site-signature, site-not-allowed,
               site-key-not-valid); with --require-site-signatures every
               unsigned event is a problem.

--store names the log's database as 'custody serve --store' does: empty
for DIR/custody.db, sqlite:PATH (or a path), or a PostgreSQL URL with the
log's search_path. DIR is still needed, for DIR/log.pub.

It only reads, so it may run next to 'custody serve' on the same log (on
PostgreSQL, next to every server sharing it); it never creates a database
or schema. Each problem is printed as 'KIND LOCATION: detail'. The summary
line counts the entries, the stored hash tiles (each tile once, as 'custody
copy' counts them) and the stored checkpoints.
Exit status: 0 clean, 2 problems found, 3 usage or I/O error.`,
		Example: `  custody fsck --dir ./mylog
  custody fsck --dir ./mylog --json | jq '.problems[]'
  custody fsck --dir ./mylog --checkpoint last-audited-checkpoint.txt
  custody fsck --dir ./mylog --store 'postgres://custody@db.example.com/custody?sslmode=verify-full&search_path=mylog'`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if dir == "" {
				return usageError("pass the directory made by 'custody init', e.g. --dir ./mylog", "missing --dir")
			}
			sites, err := audit.LoadSiteSetFile(policy)
			if err != nil {
				return err
			}
			rep, err := logserver.Fsck(c.Context(), logserver.FsckOptions{Dir: dir, DSN: dsn, Checkpoints: known,
				Options: fsck.Options{Sites: sites, RequireSignatures: require}})
			if err != nil {
				return err
			}
			e.print(asJSON, rep, rep.WriteText)
			if len(rep.Problems) > 0 {
				return &cliError{err: fmt.Errorf("fsck found %d problems", len(rep.Problems)), code: exitInvalid}
			}
			return nil
		},
	}
	c.Flags().StringArrayVar(&known, "checkpoint", nil, "a signed checkpoint of this log seen before (repeatable)")
	c.Flags().StringVar(&dir, "dir", "", "log directory made by 'custody init'")
	c.Flags().StringVar(&dsn, "store", "", "database: empty for DIR/custody.db (SQLite), sqlite:PATH, or a PostgreSQL URL")
	c.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	c.Flags().StringVar(&policy, "policy", "", "routing policy whose sites section every site attestation is checked against")
	c.Flags().BoolVar(&require, "require-site-signatures", false, "with --policy: every event must be signed")
	return c
}
