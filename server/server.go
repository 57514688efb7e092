// Package server assembles a custody log server from its parts: the log
// (the sequencer, package log), its counts (stats), the sequencer lease of
// a shared store (lease), the HTTP API (httpapi) with the dashboard
// (dashboard) mounted under it, Prometheus metrics, and an http.Server with
// timeouts. It runs them until its context ends and shuts them down in
// order. `custody serve` is its flags, output and exit codes around Run.
package server

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"sync"
	"time"

	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/dashboard"
	"github.com/custodylog/custody/httpapi"
	"github.com/custodylog/custody/internal/httpserve"
	"github.com/custodylog/custody/lease"
	"github.com/custodylog/custody/log"
	"github.com/custodylog/custody/stats"
	"github.com/custodylog/custody/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/mod/sumdb/note"
)

// Server timeouts: a slow client cannot hold a connection for long (the
// settings of every custody server, internal/httpserve).
const (
	ReadHeaderTimeout = httpserve.ReadHeaderTimeout
	ReadTimeout       = httpserve.ReadTimeout
	WriteTimeout      = httpserve.WriteTimeout
	IdleTimeout       = httpserve.IdleTimeout
	// ShutdownTimeout bounds each step of shutting down: finishing the
	// requests in flight, then committing the batches in flight.
	ShutdownTimeout = httpserve.ShutdownTimeout
)

// Config is what Run assembles.
type Config struct {
	// Log configures the log: Store, Signer and Verifier are required;
	// batching and witnesses as wanted. Run sets its Logger, Metrics,
	// OnCommit and Shared (true when the store is a store.Leaser).
	Log log.Config
	// API configures the HTTP API: tokens and limits. Run sets its
	// Metrics, Gatherer, Logger, Extra (the dashboard), Stats and Leader.
	API httpapi.Config
	// Listen is the TCP address to serve on.
	Listen string
	// Policy, if set, is the dashboard's routing policy; PolicyFile the
	// file it was read from (named, with its SHA-256, in the dashboard's
	// report). Open sets both from Options.Policy.
	Policy     *audit.Policy
	PolicyFile string
	// LogKey is the log's verifier key string, as its log.pub holds it,
	// which the dashboard's report names (Open sets it; "" serves no
	// report).
	LogKey string
	// NoDashboard leaves GET / to the API's 404.
	NoDashboard bool
	// Advertise is this server's base URL as the others sharing the store
	// reach it (default http://<listen address>); Peers, if set, are the
	// only addresses writes are forwarded to; LeaseTTL is the sequencer
	// lease's duration (0: lease.DefaultTTL). Used only with a store that
	// is a store.Leaser.
	Advertise string
	Peers     []string
	LeaseTTL  time.Duration
	// Pprof, if set, is a separate address to serve net/http/pprof on.
	Pprof string
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
	// Ready, if set, is called with the bound address once serving.
	Ready func(addr string)
	// ShutdownTimeout bounds each step of shutting down (0:
	// ShutdownTimeout).
	ShutdownTimeout time.Duration
}

// ListenError is Run's error when it cannot listen on Config.Listen.
type ListenError = httpserve.ListenError

// ErrNotDrained marks Run's error when the log did not finish the batches
// in flight within ShutdownTimeout (a hung store): the store may still be
// inside a call, so closing it could wait as long.
var ErrNotDrained = errors.New("the log did not stop in time")

// Run opens the log on cfg.Log.Store, serves it on cfg.Listen until ctx is
// done, and then shuts down: it stops accepting requests and finishes those
// in flight (at most Config.ShutdownTimeout), commits the batches in
// flight (at most Config.ShutdownTimeout again; past it, the error wraps
// ErrNotDrained), stops the background work and, last, releases the
// sequencer lease. It does not close the store.
func Run(ctx context.Context, cfg Config) error {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	st := cfg.Log.Store
	leaser, shared := st.(store.Leaser)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	counter := stats.New(st, logger)
	// The counts are restored from their last save (only the entries
	// after it are read) and saved again as they grow.
	agg, persisted := st.(store.Aggregator)
	if persisted {
		if _, err := stats.Load(ctx, counter, agg); err != nil {
			logger.Warn("the region counts will be recounted", "err", err)
		}
	}
	lc := cfg.Log
	if err := siteKeys(&lc, cfg.Policy); err != nil {
		return err
	}
	lc.Logger, lc.Metrics, lc.OnCommit, lc.Shared = logger, log.NewMetrics(reg), counter.Committed, shared
	l, err := log.Open(ctx, lc)
	if err != nil {
		return err
	}
	// The background work runs until Run returns, whatever ctx does: the
	// lease in particular is held until the log has drained.
	bctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	var background sync.WaitGroup
	defer background.Wait()
	defer stop()
	goRun := func(run func(context.Context)) {
		background.Add(1)
		go func() { defer background.Done(); run(bctx) }()
	}
	goRun(counter.Run)
	if persisted {
		goRun(func(ctx context.Context) { stats.Persist(ctx, counter, agg, stats.PersistOptions{}) })
	}
	ln, err := httpserve.Listen(cfg.Listen)
	if err != nil {
		l.Close()
		return err
	}
	api := cfg.API
	api.Metrics, api.Gatherer, api.Logger, api.Stats = httpapi.NewMetrics(reg), reg, logger, counter
	if shared {
		if api.Leader, err = runLease(cfg, l, leaser, ln.Addr().String(), reg, logger, goRun); err != nil {
			ln.Close()
			l.Close()
			return err
		}
	}
	if !cfg.NoDashboard {
		d, err := newDashboard(cfg, l, counter, logger)
		if err != nil {
			ln.Close()
			l.Close()
			return err
		}
		goRun(d.Run)
		api.Extra = d
	}
	srv := httpserve.New(httpapi.New(l, api), logger)
	logger.Info("serving", "origin", l.Origin(), "addr", ln.Addr().String(), "size", l.Checkpoint().Size)
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr().String())
	}
	if cfg.Pprof != "" {
		go servePprof(cfg.Pprof, logger)
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
	timeout := cfg.ShutdownTimeout
	if timeout <= 0 {
		timeout = ShutdownTimeout
	}
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	serr := srv.Shutdown(sctx)
	lctx, lcancel := context.WithTimeout(context.Background(), timeout)
	defer lcancel()
	if err := l.Shutdown(lctx); err != nil {
		logger.Error("the log did not stop in time: the store did not finish the batches in flight", "err", err)
		return fmt.Errorf("%w: %w", ErrNotDrained, err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	logger.Info("stopped", "size", l.Checkpoint().Size)
	return serr
}

// runLease runs the sequencer lease of a shared store (with its metric)
// and returns, after its first attempt, where writes go.
func runLease(cfg Config, l *log.Log, leaser store.Leaser, bound string, reg *prometheus.Registry, logger *slog.Logger, goRun func(func(context.Context))) (func() (string, bool), error) {
	addr := cfg.Advertise
	if addr == "" {
		addr = "http://" + bound
	}
	held := prometheus.NewGauge(prometheus.GaugeOpts{Name: "custody_sequencer_lease_held", Help: "1 while this server holds the shared store's sequencer lease."})
	reg.MustRegister(held)
	holder := holderID()
	k, err := lease.New(lease.Config{
		Leaser: leaser, Log: l, Holder: holder, Addr: addr, TTL: cfg.LeaseTTL, Logger: logger, Peers: cfg.Peers,
		OnChange: func(h bool) { held.Set(map[bool]float64{true: 1}[h]) },
	})
	if err != nil {
		return nil, err
	}
	goRun(k.Run)
	<-k.Ready()
	_, self := k.Leader()
	logger.Info("shared store: sequencer lease", "holder", holder, "advertise", addr, "held", self, "ttl", cfg.LeaseTTL)
	return k.Leader, nil
}

// newDashboard is the dashboard of l, knowing the configured witnesses'
// keys.
func newDashboard(cfg Config, l *log.Log, counter *stats.Counter, logger *slog.Logger) (*dashboard.Dashboard, error) {
	var wv []note.Verifier
	for _, w := range cfg.Log.Witnesses {
		wv = append(wv, w.Verifier)
	}
	return dashboard.New(dashboard.Config{Log: l, Stats: counter, Activity: counter, Checkpoints: cfg.Log.Store, Verifier: cfg.Log.Verifier, Witnesses: wv, Policy: cfg.Policy, Logger: logger,
		LogKey: cfg.LogKey, PolicyFile: cfg.PolicyFile})
}

// holderID is a lease holder ID unique to this process: host, PID and 8
// random bytes.
func holderID() string {
	host, _ := os.Hostname()
	b := make([]byte, 8)
	crand.Read(b)
	return fmt.Sprintf("%s/%d/%x", host, os.Getpid(), b)
}

// servePprof serves the Go profiler on its own address, never on the public one.
func servePprof(addr string, logger *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	logger.Info("profiling", "addr", addr)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: ReadHeaderTimeout}
	if err := srv.ListenAndServe(); err != nil {
		logger.Error("pprof server", "err", err)
	}
}
