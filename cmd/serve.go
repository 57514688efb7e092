package cmd

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/dashboard"
	"github.com/custodylog/custody/httpapi"
	"github.com/custodylog/custody/lease"
	"github.com/custodylog/custody/log"
	"github.com/custodylog/custody/stats"
	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/verify"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"
)

// Server timeouts: a slow client cannot hold a connection for long.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 60 * time.Second
	idleTimeout       = 120 * time.Second
	shutdownTimeout   = 30 * time.Second
)

type serveOptions struct {
	dir, listen, tokenFile, dsn, logLevel, pprof string
	maxBatch                                     int
	maxWait                                      time.Duration
	witnesses                                    []string // URL=VKEY
	quorum                                       int
	trust                                        string
	witnessTimeout                               time.Duration
	maxConcurrentWrites                          int
	maxWritesPerToken                            int
	bodyTimeout                                  time.Duration
	tokenRate                                    float64
	tokenBurst                                   int
	policy                                       string
	noDashboard                                  bool
	advertise                                    string
	leaseTTL                                     time.Duration
	peers                                        []string
}

func (e *env) serveCmd() *cobra.Command {
	var o serveOptions
	c := &cobra.Command{
		Use:   "serve --dir DIR [--listen ADDR] [--token-file F]",
		Short: "Run the log: accept events, publish checkpoints and tiles",
		Long: `serve runs the log in DIR (created by 'custody init') over HTTP:

  GET  /checkpoint, /tile/<L>/<N>[.p/<W>], /tile/entries/<N>[.p/<W>]   (C2SP tlog-tiles)
  GET  /v1/proof/inclusion, /v1/proof/consistency, /v1/entries/<i>,
       /v1/samples/<id>, /v1/stats, /healthz, /metrics
  POST /v1/events   (Authorization: Bearer <token from --token-file>)
  GET  /            the dashboard: checkpoint, witnesses, region × data
                    centre chart, newest events, sample lookup with
                    verified proofs; with --policy, audit findings

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

Limits: request bodies are bounded on every route, and slow clients are cut
off by header, read, write and idle timeouts. At most
--max-concurrent-writes POST /v1/events requests are served at once; beyond
that a request gets 429 with Retry-After: 1. --token-rate R limits each
token to R events per second on average (bursts of --token-burst events);
over it a request gets 429 with Retry-After (a batch larger than the burst,
413).`,
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
			if o.dir == "" {
				return usageError("pass the directory made by 'custody init', e.g. --dir ./mylog", "missing --dir")
			}
			return e.serve(c.Context(), o, nil)
		},
	}
	c.Flags().StringVar(&o.dir, "dir", "", "log directory made by 'custody init'")
	c.Flags().StringVar(&o.listen, "listen", "127.0.0.1:8080", "address to listen on")
	c.Flags().StringVar(&o.tokenFile, "token-file", "", "file of bearer tokens allowed to append (one per line); without it appends are refused")
	c.Flags().StringVar(&o.dsn, "store", "", "database: empty for DIR/custody.db (SQLite)")
	c.Flags().IntVar(&o.maxBatch, "max-batch", log.DefaultMaxBatch, "most events per batch (one commit and checkpoint each)")
	c.Flags().DurationVar(&o.maxWait, "max-wait", log.DefaultMaxWait, "longest wait for more events before committing a batch")
	c.Flags().StringArrayVar(&o.witnesses, "witness", nil, "a witness as URL=VKEY (VKEY: cosignature verifier key or key file); repeatable")
	c.Flags().IntVar(&o.quorum, "quorum", 0, "publish a checkpoint only once this many --witness witnesses cosigned it (0: do not wait)")
	c.Flags().StringVar(&o.trust, "trust", "", "c2sp.org/tlog-policy file: witnesses (with URLs) and quorum, instead of --witness/--quorum")
	c.Flags().DurationVar(&o.witnessTimeout, "witness-timeout", log.DefaultWitnessTimeout, "longest wait for the witnesses on one checkpoint")
	c.Flags().IntVar(&o.maxConcurrentWrites, "max-concurrent-writes", httpapi.DefaultMaxConcurrentWrites, "most POST /v1/events requests served at once; beyond it 429 with Retry-After")
	c.Flags().IntVar(&o.maxWritesPerToken, "max-concurrent-writes-per-token", 0, "most POST /v1/events requests of one token served at once (0: a quarter of --max-concurrent-writes, 16 of 64, when the token file has several tokens; all with one); beyond it 429")
	c.Flags().DurationVar(&o.bodyTimeout, "body-timeout", httpapi.DefaultBodyTimeout, "longest time a POST /v1/events may take to send its body; beyond it 408 and the slot is freed")
	c.Flags().Float64Var(&o.tokenRate, "token-rate", 0, "events per second allowed per token on average (0: unlimited); beyond it 429 with Retry-After")
	c.Flags().IntVar(&o.tokenBurst, "token-burst", 0, "events a token may send at once under --token-rate (0: one second's worth)")
	c.Flags().StringVar(&o.advertise, "advertise", "", "with a shared PostgreSQL store: this server's base URL as the others reach it (default http://<listen address>)")
	c.Flags().StringArrayVar(&o.peers, "peer", nil, "with a shared PostgreSQL store: a server's --advertise URL that writes may be forwarded to (repeatable; default: any the lease names)")
	c.Flags().DurationVar(&o.leaseTTL, "lease-ttl", lease.DefaultTTL, "with a shared PostgreSQL store: sequencer lease duration; a dead holder is replaced within about 4/3 of it")
	c.Flags().StringVar(&o.policy, "policy", "", "routing policy (YAML): the dashboard marks allowed cells and audits events as they arrive")
	c.Flags().BoolVar(&o.noDashboard, "no-dashboard", false, "do not serve the dashboard at GET /")
	c.Flags().StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	c.Flags().StringVar(&o.pprof, "pprof", "", "serve Go profiling (net/http/pprof) on this separate address, e.g. 127.0.0.1:6060; off by default")
	return c
}

// serve runs until ctx is done. ready, if non-nil, receives the bound address.
func (e *env) serve(ctx context.Context, o serveOptions, ready chan<- string) error {
	if o.maxConcurrentWrites < 0 {
		return usageError("pass a positive number, e.g. --max-concurrent-writes 64", "bad --max-concurrent-writes %d", o.maxConcurrentWrites)
	}
	if o.maxWritesPerToken < 0 {
		return usageError("pass a positive number, e.g. --max-concurrent-writes-per-token 16, or 0 for a quarter of --max-concurrent-writes", "bad --max-concurrent-writes-per-token %d", o.maxWritesPerToken)
	}
	if o.bodyTimeout < 0 {
		return usageError("pass a positive duration, e.g. --body-timeout 10s", "bad --body-timeout %s", o.bodyTimeout)
	}
	if o.tokenRate < 0 || o.tokenRate != o.tokenRate || o.tokenBurst < 0 {
		return usageError("pass --token-rate >= 0 events per second and --token-burst >= 0 events", "bad --token-rate %g / --token-burst %d", o.tokenRate, o.tokenBurst)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return usageError("use one of debug, info, warn, error", "bad --log-level %q", o.logLevel)
	}
	logger := slog.New(slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	f := logFiles{o.dir}
	if !exists(f.key()) {
		return withHint(fmt.Errorf("%s has no log (no %s)", o.dir, f.key()), "create one with 'custody init --dir %s --origin NAME'", o.dir)
	}
	signer, err := loadSigner(f.key())
	if err != nil {
		return err
	}
	verifier, err := loadVerifier(f.pub())
	if err != nil {
		return fmt.Errorf("%s: %w", f.pub(), err)
	}
	wcfg, err := witnessConfig(o, logger)
	if err != nil {
		return err
	}
	var policy *audit.Policy
	if o.policy != "" {
		if policy, err = audit.LoadPolicy(o.policy); err != nil {
			return withHint(err, "see testdata/policy.yaml for the format")
		}
	}
	var tokens []string
	if o.tokenFile != "" {
		if tokens, err = loadTokens(o.tokenFile); err != nil {
			return err
		}
	} else {
		logger.Warn("no --token-file: POST /v1/events will refuse every request")
	}
	if !isPostgres(o.dsn) {
		// One server per SQLite file; PostgreSQL servers share by lease.
		lockPath := f.db() + ".lock"
		if o.dsn != "" {
			lockPath = strings.TrimPrefix(o.dsn, "sqlite:") + ".lock"
		}
		release, err := lockFile(lockPath)
		if err != nil {
			return err
		}
		defer release()
	}
	if isPostgres(o.dsn) {
		if err := pgHoldsLog(ctx, o.dsn); err != nil {
			return err
		}
	}
	st, err := openStore(o.dsn, f)
	if err != nil {
		return err
	}
	defer st.Close()
	leaser, shared := st.(store.Leaser)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := log.NewMetrics(reg)
	counter := stats.New(st, logger)
	l, err := log.Open(ctx, log.Config{
		Store: st, Signer: signer, Verifier: verifier,
		MaxBatch: o.maxBatch, MaxWait: o.maxWait,
		Logger: logger, Metrics: metrics,
		Witnesses: wcfg.Witnesses, Quorum: wcfg.Quorum, QuorumFunc: wcfg.QuorumFunc,
		WitnessTimeout: o.witnessTimeout,
		Shared:         shared,
		OnCommit:       counter.Committed,
	})
	if err != nil {
		return err
	}
	cctx, stopCounter := context.WithCancel(ctx)
	counted := make(chan struct{})
	go func() { defer close(counted); counter.Run(cctx) }()
	defer func() { stopCounter(); <-counted }()
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		l.Close()
		return withHint(err, "is another server on %s? pick another --listen address", o.listen)
	}
	var leader func() (string, bool)
	if shared {
		addr := o.advertise
		if addr == "" {
			addr = "http://" + ln.Addr().String()
		}
		holder := holderID()
		leaderGauge := prometheus.NewGauge(prometheus.GaugeOpts{Name: "custody_sequencer_lease_held", Help: "1 while this server holds the shared store's sequencer lease."})
		reg.MustRegister(leaderGauge)
		k, err := lease.New(lease.Config{
			Leaser: leaser, Log: l, Holder: holder, Addr: addr, TTL: o.leaseTTL, Logger: logger, Peers: o.peers,
			OnChange: func(held bool) { leaderGauge.Set(map[bool]float64{true: 1}[held]) },
		})
		if err != nil {
			ln.Close()
			l.Close()
			return err
		}
		// Held until serve returns (after the log has drained), not cut at ctx.
		lctx, stopLease := context.WithCancel(context.WithoutCancel(ctx))
		leased := make(chan struct{})
		go func() { defer close(leased); k.Run(lctx) }()
		defer func() { stopLease(); <-leased }() // releases the lease
		<-k.Ready()
		leader = k.Leader
		_, self := k.Leader()
		logger.Info("shared store: sequencer lease", "holder", holder, "advertise", addr, "held", self, "ttl", o.leaseTTL)
	}
	var dash *dashboard.Dashboard
	if !o.noDashboard {
		var wv []note.Verifier
		for _, w := range wcfg.Witnesses {
			wv = append(wv, w.Verifier)
		}
		dash, err = dashboard.New(dashboard.Config{Log: l, Stats: counter, Verifier: verifier, Witnesses: wv, Policy: policy, Logger: logger})
		if err != nil {
			l.Close()
			return err
		}
		dctx, stopDash := context.WithCancel(ctx)
		audited := make(chan struct{})
		go func() { defer close(audited); dash.Run(dctx) }()
		defer func() { stopDash(); <-audited }()
	}
	h := httpapi.New(l, httpapi.Config{
		Tokens: tokens, Metrics: httpapi.NewMetrics(reg), Gatherer: reg, Logger: logger, Extra: handlerOrNil(dash),
		MaxConcurrentWrites:         o.maxConcurrentWrites,
		MaxConcurrentWritesPerToken: o.maxWritesPerToken,
		BodyTimeout:                 o.bodyTimeout,
		TokenRate:                   o.tokenRate, TokenBurst: o.tokenBurst,
		Leader: leader, Stats: counter,
	})
	srv := newHTTPServer(h, logger)
	cp := l.Checkpoint()
	logger.Info("serving", "origin", l.Origin(), "addr", ln.Addr().String(), "size", cp.Size)
	if ready != nil {
		ready <- ln.Addr().String()
	}
	if o.pprof != "" {
		go servePprof(o.pprof, logger)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		l.Close()
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down: finishing requests in flight")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	serr := srv.Shutdown(sctx)
	l.Close()
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	logger.Info("stopped", "size", l.Checkpoint().Size)
	return serr
}

// isPostgres reports whether dsn names a PostgreSQL database.
func isPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// holderID is a lease holder ID unique to this process: host, PID and 8
// random bytes.
func holderID() string {
	host, _ := os.Hostname()
	b := make([]byte, 8)
	crand.Read(b)
	return fmt.Sprintf("%s/%d/%x", host, os.Getpid(), b)
}

// handlerOrNil keeps a nil *Dashboard from becoming a non-nil http.Handler.
func handlerOrNil(d *dashboard.Dashboard) http.Handler {
	if d == nil {
		return nil
	}
	return d
}

// servePprof serves the Go profiler on its own address, never on the public one.
func servePprof(addr string, logger *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	logger.Info("profiling", "addr", addr)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: readHeaderTimeout}
	if err := srv.ListenAndServe(); err != nil {
		logger.Error("pprof server", "err", err)
	}
}

// witnessConfig turns --witness, --quorum and --trust into the log's
// witness settings (only the witness fields of the result are set).
func witnessConfig(o serveOptions, logger *slog.Logger) (log.Config, error) {
	var cfg log.Config
	if o.quorum < 0 {
		return cfg, usageError("pass how many witnesses must cosign, e.g. --quorum 2", "bad --quorum %d", o.quorum)
	}
	if o.trust != "" {
		if len(o.witnesses) > 0 || o.quorum != 0 {
			return cfg, usageError("the policy file names the witnesses and the quorum", "--trust cannot be combined with --witness or --quorum")
		}
		b, err := os.ReadFile(o.trust)
		if err != nil {
			return cfg, err
		}
		p, err := verify.ParseTrustPolicy(b)
		if err != nil {
			if errors.Is(err, verify.ErrPrivateKey) {
				return cfg, withHint(fmt.Errorf("%s: %w", o.trust, err), "%s", keyHint("a trust policy", err, ""))
			}
			return cfg, fmt.Errorf("%s: %w", o.trust, err)
		}
		for _, w := range p.Witnesses() {
			if w.URL == "" {
				logger.Warn("trust policy witness has no URL: not asked to cosign", "witness", w.Name)
				continue
			}
			v, err := verify.NewCosignatureVerifier(w.VKey)
			if err != nil {
				return cfg, fmt.Errorf("%s: witness %s: %w", o.trust, w.Name, err)
			}
			cfg.Witnesses = append(cfg.Witnesses, log.Witness{URL: w.URL, Verifier: v})
		}
		if p.Quorum() != "none" {
			cfg.QuorumFunc = func(signed []byte, cp verify.Checkpoint) bool {
				_, err := p.Evaluate(signed, cp, time.Now())
				return err == nil
			}
		}
		return cfg, nil
	}
	for _, arg := range o.witnesses {
		i := strings.LastIndex(arg, "=")
		if i <= 0 {
			return cfg, usageError("use --witness URL=VKEY, e.g. --witness https://witness.example/=./wit.pub", "bad --witness %q", arg)
		}
		u, key := arg[:i], arg[i+1:]
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return cfg, usageError("the witness URL must be an absolute http(s) URL", "bad --witness URL %q", u)
		}
		v, err := loadCosignatureVerifier(key)
		if err != nil {
			return cfg, usageErr(fmt.Errorf("--witness %s: %w", u, err), keyHint("--witness URL=KEY", err, "KEY is the witness's cosignature verifier key (type 0x04) or a file holding it, e.g. wit.pub"))
		}
		cfg.Witnesses = append(cfg.Witnesses, log.Witness{URL: u, Verifier: v})
	}
	if o.quorum > len(cfg.Witnesses) {
		return cfg, usageError("pass at most as many as there are --witness flags", "--quorum %d with %d witnesses", o.quorum, len(cfg.Witnesses))
	}
	cfg.Quorum = o.quorum
	return cfg, nil
}

// loadCosignatureVerifier reads a cosignature/v1 verifier key, given as the
// key itself or as a file holding it. Its errors never quote key material:
// s is named only when it is an existing file, and a private key (given or
// in the file) wraps verify.ErrPrivateKey.
func loadCosignatureVerifier(s string) (note.Verifier, error) {
	v, err := verify.NewCosignatureVerifier(s)
	if err == nil {
		return v, nil
	}
	if errors.Is(err, verify.ErrPrivateKey) {
		return nil, fmt.Errorf("the key given: %w", err)
	}
	fi, ferr := os.Stat(s)
	if ferr != nil {
		if strings.Contains(s, "+") {
			return nil, err // looks like a key, not a path: the key error is the useful one
		}
		return nil, errors.New("neither a cosignature verifier key (name+keyid+base64) nor the name of an existing file")
	}
	if !fi.Mode().IsRegular() || fi.Size() > 64<<10 {
		return nil, fmt.Errorf("key file %s is not a regular file of at most 64 KiB", s)
	}
	b, ferr := os.ReadFile(s)
	if ferr != nil {
		return nil, fmt.Errorf("reading key file %s: %v", s, errors.Unwrap(ferr))
	}
	v, err = verify.NewCosignatureVerifier(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", s, err)
	}
	return v, nil
}

// newHTTPServer returns the http.Server every custody server uses: header,
// read, write and idle timeouts (a slow client cannot hold a connection),
// a header size limit, and the server's own errors in the structured log.
func newHTTPServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}
