package cmd

import (
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/custodylog/custody/httpapi"
	"github.com/custodylog/custody/lease"
	"github.com/custodylog/custody/log"
	logserver "github.com/custodylog/custody/server"
	"github.com/spf13/cobra"
)

func (e *env) serveCmd() *cobra.Command {
	// The flags the server takes as they are go straight into cfg, the
	// files it reads into opts.
	var cfg logserver.Config
	var opts logserver.Options
	var logLevel string
	c := &cobra.Command{
		Use:   "serve --dir DIR [--listen ADDR] [--token-file F]",
		Short: "Run the log: accept events, publish checkpoints and tiles",
		Long: `serve runs the log in DIR (created by 'custody init') over HTTP: the C2SP
tlog-tiles read API (GET /checkpoint, /tile/…), POST /v1/events
(Authorization: Bearer <token from --token-file>), proofs, entries,
samples and stats under /v1/, /healthz, /metrics (every endpoint:
docs/api.md section 2), and the dashboard at GET / (with --policy, audit
findings).

Events are batched (group commit): each batch is one durable SQLite
transaction and one new signed checkpoint, and every submitter gets its
receipt only after the commit. SIGINT or SIGTERM stops accepting requests,
finishes the batch in flight and closes the database. See docs/api.md.

Witnesses (c2sp.org/tlog-witness): --witness URL=VKEY (repeatable; VKEY is
a witness's cosignature/v1 verifier key or a file holding one, URL its
submission prefix) sends every new checkpoint to that witness, with a
consistency proof from the size it last cosigned. With --quorum K (K >= 1) a
checkpoint is published, and receipts issued, only once K witnesses
cosigned it; /checkpoint serves it with the cosignatures appended. If the
quorum fails, the batch's events stay stored but its submitters get 503 and
should retry (a retry returns the original indexes once a checkpoint is
cosigned). --quorum 0 (the default) does not wait for witnesses: their
cosignatures are added to the published checkpoint when they arrive.
Cosigned checkpoints are stored with the log, so after a restart the first
/checkpoint carries its cosignatures, and mirrors and copies keep them.
--trust POLICY takes the witnesses (those with a URL) and the quorum from a
c2sp.org/tlog-policy file instead; a policy with 'quorum none' asks the
witnesses without waiting for them.

Several servers on one PostgreSQL database (--store postgres://…): all serve
reads; the one holding the sequencer lease (a row the database expires
after --lease-ttl unless renewed) appends, and the others forward writes to
its --advertise URL and publish each new stored checkpoint only after
verifying it extends theirs. When the holder dies another takes over within
about 4/3 of --lease-ttl; SIGTERM releases the lease at once. Every append
is a compare-and-swap on the previous checkpoint, so the log cannot fork
even if two servers think they hold the lease. See docs/operations.md.

Limits (docs/api.md section 3): request bodies are bounded on every route,
slow clients are cut off by header, read, write and idle timeouts, and a
POST /v1/events beyond --max-concurrent-writes or its token's --token-rate
gets 429 with Retry-After (a batch larger than --token-burst, 413).`,
		Example: `  custody serve --dir ./mylog --listen 127.0.0.1:8080 --token-file tokens.txt --policy testdata/policy.yaml
  curl -s localhost:8080/checkpoint       # and open http://127.0.0.1:8080/ for the dashboard

  # two front ends on one PostgreSQL database (same --dir keys and tokens on both):
  custody serve --dir ./mylog --store 'postgres://custody@db:5432/custody' --token-file tokens.txt \
      --listen :8080 --advertise http://fe-1.internal:8080

  # require both witnesses to cosign before publishing:
  custody serve --dir ./mylog --token-file tokens.txt \
      --witness http://127.0.0.1:8090=./wit-a.pub \
      --witness http://127.0.0.1:8091=./wit-b.pub --quorum 2
  # or with a policy file (witness <name> <vkey> <url> lines, quorum line):
  custody serve --dir ./mylog --token-file tokens.txt --trust ./policy.txt`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if opts.Dir == "" {
				return usageError("pass the directory made by 'custody init', e.g. --dir ./mylog", "missing --dir")
			}
			var err error
			if cfg.Logger, err = e.logger(logLevel); err != nil {
				return err
			}
			srv, err := logserver.Open(c.Context(), opts, cfg)
			if err != nil {
				return err
			}
			return srv.Run(c.Context())
		},
	}
	c.Flags().StringVar(&opts.Dir, "dir", "", "log directory made by 'custody init'")
	c.Flags().StringVar(&cfg.Listen, "listen", "127.0.0.1:8080", "address to listen on")
	c.Flags().StringVar(&opts.TokenFile, "token-file", "", "file of bearer tokens allowed to append (one per line); without it appends are refused")
	c.Flags().StringVar(&opts.DSN, "store", "", "database: empty for DIR/custody.db (SQLite)")
	c.Flags().IntVar(&cfg.Log.MaxBatch, "max-batch", log.DefaultMaxBatch, "most events per batch (one commit and checkpoint each)")
	c.Flags().DurationVar(&cfg.Log.MaxWait, "max-wait", log.DefaultMaxWait, "longest wait for more events before committing a batch")
	c.Flags().StringArrayVar(&opts.Witnesses, "witness", nil, "a witness as URL=VKEY (VKEY: cosignature verifier key or key file); repeatable")
	c.Flags().IntVar(&opts.Quorum, "quorum", 0, "publish a checkpoint only once this many --witness witnesses cosigned it (0: do not wait)")
	c.Flags().StringVar(&opts.Trust, "trust", "", "c2sp.org/tlog-policy file: witnesses (with URLs) and quorum, instead of --witness/--quorum")
	c.Flags().DurationVar(&cfg.Log.WitnessTimeout, "witness-timeout", log.DefaultWitnessTimeout, "longest wait for the witnesses on one checkpoint")
	c.Flags().IntVar(&cfg.API.MaxConcurrentWrites, "max-concurrent-writes", httpapi.DefaultMaxConcurrentWrites, "most POST /v1/events requests served at once; beyond it 429 with Retry-After")
	c.Flags().IntVar(&cfg.API.MaxConcurrentWritesPerToken, "max-concurrent-writes-per-token", 0, "most POST /v1/events requests of one token served at once (0: a quarter of --max-concurrent-writes, 16 of 64, when the token file has several tokens; all with one); beyond it 429")
	c.Flags().DurationVar(&cfg.API.BodyTimeout, "body-timeout", httpapi.DefaultBodyTimeout, "longest time a POST /v1/events may take to send its body; beyond it 408 and the slot is freed")
	c.Flags().Float64Var(&cfg.API.TokenRate, "token-rate", 0, "events per second allowed per token on average (0: unlimited); beyond it 429 with Retry-After")
	c.Flags().IntVar(&cfg.API.TokenBurst, "token-burst", 0, "events a token may send at once under --token-rate (0: one second's worth)")
	c.Flags().StringVar(&cfg.Advertise, "advertise", "", "with a shared PostgreSQL store: this server's base URL as the others reach it (default http://<listen address>)")
	c.Flags().StringArrayVar(&cfg.Peers, "peer", nil, "with a shared PostgreSQL store: a server's --advertise URL that writes may be forwarded to (repeatable; default: any the lease names)")
	c.Flags().DurationVar(&cfg.LeaseTTL, "lease-ttl", lease.DefaultTTL, "with a shared PostgreSQL store: sequencer lease duration; a dead holder is replaced within about 4/3 of it")
	c.Flags().StringVar(&opts.Policy, "policy", "", "routing policy (YAML): the dashboard marks allowed cells and audits events as they arrive; its sites section (if any) holds the site keys signed submissions are verified with")
	c.Flags().BoolVar(&cfg.Log.RequireSignatures, "require-site-signatures", false, "refuse events their site did not sign (needs --policy with a sites section); /v1/stats says site_signatures: required")
	c.Flags().BoolVar(&cfg.Log.SampleIndex.Enabled, "sample-index", false, "build and keep the verifiable sample index on a log whose checkpoints do not commit one yet (reads every entry once; docs/sample-index.md); a log that commits one always keeps it")
	c.Flags().BoolVar(&cfg.NoDashboard, "no-dashboard", false, "do not serve the dashboard at GET /")
	c.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	c.Flags().StringVar(&cfg.Pprof, "pprof", "", "serve Go profiling (net/http/pprof) on this separate address, e.g. 127.0.0.1:6060; off by default")
	return c
}

// logger is a JSON logger on stderr at the level named by a --log-level.
func (e *env) logger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError("use one of debug, info, warn, error", "bad --log-level %q", level)
	}
	return slog.New(slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: l})), nil
}

func (e *env) initCmd() *cobra.Command {
	var dir, origin, dsn string
	var o logserver.InitOptions
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
'custody serve' and 'custody fsck'.

With --sample-index the log keeps the verifiable sample index from its
first checkpoint: every checkpoint commits each sample's list of events,
and 'custody verify sample' proves a sample's chain complete
(docs/sample-index.md). It is off by default while it costs about half
the append rate and several hundred MB of memory (docs/performance.md).`,
		Example: `  custody init --dir ./mylog --origin transparency.example.com/custody
  custody serve --dir ./mylog --token-file tokens.txt
  custody init --dir ./mylog --origin transparency.example.com/custody --store 'postgres://custody@db.example.com/custody?sslmode=verify-full&search_path=mylog'`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if dir == "" || origin == "" {
				return usageError("pass --dir and --origin, e.g. --dir ./mylog --origin example.com/custody", "missing --dir or --origin")
			}
			vkey, err := logserver.InitWith(c.Context(), dir, origin, dsn, o)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s\n", vkey)
			fmt.Fprintf(e.stderr, "custody: created log %s in %s (verifier key in %s)\n", origin, dir, filepath.Join(dir, logserver.PubFile))
			return nil
		},
	}
	c.Flags().StringVar(&dir, "dir", "", "directory for the log's key and database (created, mode 0700)")
	c.Flags().StringVar(&origin, "origin", "", "the log's origin and key name, e.g. example.com/custody")
	c.Flags().StringVar(&dsn, "store", "", "database: empty for DIR/custody.db (SQLite), sqlite:PATH, or a PostgreSQL URL")
	c.Flags().BoolVar(&o.SampleIndex, "sample-index", false, "keep the verifiable sample index from the first checkpoint (docs/sample-index.md)")
	return c
}
