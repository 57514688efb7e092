package cmd

import (
	"path/filepath"

	"github.com/custodylog/custody/loadgen"
	logserver "github.com/custodylog/custody/server"
	"github.com/spf13/cobra"
)

func (e *env) prefillCmd() *cobra.Command {
	var dir, dsn string
	var n uint64
	var batch int
	var asJSON bool
	c := &cobra.Command{
		Use:   "prefill --dir DIR --events N",
		Short: "Grow a log by N generated events through the store, for benchmarks",
		Long: `prefill appends N generated events (the bench workload: one 'collected'
event per sample, five data centres in the EU and US regions) straight into
the log's store, with the hash tiles and a signed checkpoint per batch
exactly as the sequencer writes them. It exists to build large logs for
measurement: 100 M entries in minutes, not the hours the HTTP path takes.

It signs with DIR/log.key and refuses a SQLite log that a server is
serving (the lock file). Do not use it on a log that holds real events:
the events it writes are synthetic and stay in the log forever.`,
		Example: `  custody init --dir /tmp/big --origin bench.example/custody
  custody prefill --dir /tmp/big --events 100000000
  custody serve --dir /tmp/big --token-file tokens.txt &
  custody bench --log http://127.0.0.1:8080 --token-file tokens.txt --clients 8 --batch 256`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if dir == "" {
				return usageError("pass the directory made by 'custody init', e.g. --dir ./biglog", "missing --dir")
			}
			if n == 0 {
				return usageError("pass how many events to add, e.g. --events 1000000", "missing --events")
			}
			bar := e.progress("prefill")
			res, err := loadgen.PrefillDir(c.Context(), dir, dsn, n, loadgen.PrefillOptions{Batch: batch, Progress: func(done uint64) { bar.set(done, n) }})
			bar.finish()
			switch kind, cause := serverErr(err); {
			case kind == logserver.KindSigner:
				return keyErr(cause, filepath.Join(dir, logserver.KeyFile), "create one with 'custody keygen' or 'custody init'")
			case kind == logserver.KindVerifier:
				return usageError("the log directory needs its log.pub", "%v", cause)
			case kind == logserver.KindHold:
				return storeErr(cause, dsn)
			case err != nil:
				return ioError(err)
			}
			secs := res.Seconds
			return e.emit(asJSON, map[string]any{"from": res.From, "size": res.Size, "seconds": secs, "events_per_second": float64(n) / secs},
				"prefilled %d events: size %d → %d in %.1f s (%.0f events/s)\n", n, res.From, res.Size, secs, float64(n)/secs)
		},
	}
	c.Flags().StringVar(&dir, "dir", "", "log directory made by 'custody init' (its log.key signs the checkpoints)")
	c.Flags().StringVar(&dsn, "store", "", "database: empty for DIR/custody.db (SQLite)")
	c.Flags().Uint64Var(&n, "events", 0, "how many events to add")
	c.Flags().IntVar(&batch, "batch", 16384, "events per store transaction (one checkpoint each)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return c
}
