package cmd

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/custodylog/custody/loadgen"
	logserver "github.com/custodylog/custody/server"
	"github.com/spf13/cobra"
)

func (e *env) benchCmd() *cobra.Command {
	var logURL, tokenFile string
	var clients, readers, batch int
	var duration time.Duration
	var asJSON bool
	c := &cobra.Command{
		Use:   "bench --log URL --token-file F [--clients N] [--readers R] [--batch B] [--duration D]",
		Short: "Load a running server with appends (and reads) and report throughput and latency",
		Long: `bench runs N concurrent clients, each sending batches of B fresh synthetic
events to POST /v1/events for the given duration, and reports the events per
second that came back with receipts and the latency from submitting a batch
to holding its receipts (p50, p99, max). Every event is new (a random run
id is in each sample), so the log grows by the events reported. The
receipts are counted (one line per event), neither decoded nor verified:
what is measured is the server, not the client's checking.

With --readers R, R more clients loop over random reads of the current tree
at the same time: GET /checkpoint, a full or partial hash tile or entry
bundle that the latest checkpoint implies, an inclusion proof and a
consistency proof, each counted per kind with its latency.

Writes answered 429 or 503 are deliberate refusals (load shedding) and are
counted apart; any other non-2xx answer or transport error is an error, and
bench then exits 1 after printing its report. The server's resident memory
is sampled from /metrics every second and reported as min/max.`,
		Example: `  custody bench --log http://127.0.0.1:8080 --token-file tokens.txt --clients 16 --batch 256 --duration 20s
  custody bench --log http://127.0.0.1:8080 --token-file tokens.txt --clients 40 --readers 160 --batch 64 --duration 60s`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if logURL == "" {
				return usageError("pass the server's base URL, e.g. --log http://127.0.0.1:8080", "missing --log")
			}
			if clients < 0 || readers < 0 || clients+readers == 0 || batch <= 0 || duration <= 0 {
				return usageError("use --clients >= 0, --readers >= 0 (not both 0), --batch >= 1 and a positive --duration", "bad bench parameters")
			}
			token, err := readToken(tokenFile)
			if err != nil {
				return err
			}
			cfg, err := loadgen.NewBenchConfig(logURL, token, clients, readers, batch, duration)
			if err != nil {
				return usageError("pass the server's base URL, e.g. --log http://127.0.0.1:8080", "%v", err)
			}
			res, err := loadgen.Bench(c.Context(), cfg)
			if err != nil {
				return err
			}
			if asJSON {
				b, _ := json.Marshal(res)
				fmt.Fprintf(e.stdout, "%s\n", b)
			} else {
				res.WriteText(e.stdout)
			}
			if res.TotalErrors > 0 {
				return withHint(fmt.Errorf("bench: %d errors (%d writes, %d reads); first: %s", res.TotalErrors, res.Errors, res.ReadErrors, res.FirstError),
					"429/503 answers to writes are refusals, not errors; anything else non-2xx or a transport failure is one")
			}
			return nil
		},
	}
	c.Flags().StringVar(&logURL, "log", "", "base URL of the custody server")
	c.Flags().StringVar(&tokenFile, "token-file", "", "file whose first token authenticates (default $CUSTODY_TOKEN)")
	c.Flags().IntVar(&clients, "clients", 16, "concurrent writing clients")
	c.Flags().IntVar(&readers, "readers", 0, "additional concurrent clients making random read requests")
	c.Flags().IntVar(&batch, "batch", 256, "events per request")
	c.Flags().DurationVar(&duration, "duration", 10*time.Second, "how long to run")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

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
			res, err := logserver.Prefill(c.Context(), dir, dsn, n, loadgen.PrefillOptions{Batch: batch, Progress: func(done uint64) { bar.set(done, n) }})
			bar.finish()
			var se *logserver.Error
			switch errors.As(err, &se); {
			case se != nil && se.Kind == logserver.KindVerifier:
				return usageError("the log directory needs its log.pub", "%v", se.Err)
			case se != nil && (se.Kind == logserver.KindSigner || se.Kind == logserver.KindHold):
				return err // says what to do
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
