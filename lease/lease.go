// Package lease runs the sequencer lease of a log whose store several
// custody servers share (PostgreSQL): exactly one of them appends, the
// others serve reads, follow the store and forward writes to it.
//
// The lease is a row in the store with a holder and an expiry judged by
// the database's clock (store.Leaser). The holder renews it every TTL/3; a
// server that fails to renew stops acting as the sequencer before the
// lease can have lapsed. When the holder dies, the lease expires after at
// most TTL and the next server to ask takes it, syncs to the store and
// reloads its sequencer state.
//
// The lease is an optimisation, not the safety mechanism: the store's
// compare-and-swap on the previous checkpoint is. Two servers that both
// believe they hold the lease cannot fork the log; one of them has its
// commit refused and its callers retry.
package lease

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/custodylog/custody/log"
	"github.com/custodylog/custody/store"
)

// Defaults of Config.
const (
	DefaultTTL       = 3 * time.Second
	DefaultSyncEvery = 250 * time.Millisecond
)

// Config configures a Keeper.
type Config struct {
	// Leaser is the shared store's lease. Required.
	Leaser store.Leaser
	// Log is this server's log. Required.
	Log *log.Log
	// Holder identifies this server; it must be unique among the servers
	// sharing the store (a random ID per process is right).
	Holder string
	// Addr is this server's base URL, where the others forward writes
	// while it holds the lease.
	Addr string
	// TTL is how long a lease lasts unless renewed; 0: DefaultTTL. A dead
	// holder is replaced within about TTL + TTL/3.
	TTL time.Duration
	// SyncEvery is how often a server that does not hold the lease syncs
	// its published checkpoint with the store; 0: DefaultSyncEvery.
	SyncEvery time.Duration
	// Logger receives lease changes and failures; nil discards them.
	Logger *slog.Logger
	// OnChange, if set, is called with the new state each time this
	// server takes or loses the lease (for metrics).
	OnChange func(held bool)
	// Peers, if not empty, are the only addresses writes are forwarded
	// to: a lease naming any other address (a tampered lease row, a
	// misconfigured server) is treated as no leader, so bearer tokens are
	// never sent to a server the operator did not list.
	Peers []string
}

// Keeper keeps trying to hold the lease and follows the store while it
// does not. Create it with New; run it with Run, which releases the lease
// when its context ends.
type Keeper struct {
	cfg    Config
	logger *slog.Logger
	ready  chan struct{} // closed after Run's first attempt

	mu     sync.RWMutex
	held   bool
	until  time.Time // this server acts as the sequencer until then
	leader string    // the holder's Addr, "" if unknown
	epoch  uint64
}

// New checks cfg and returns a Keeper. It starts nothing: Run does the
// work.
func New(cfg Config) (*Keeper, error) {
	if cfg.Leaser == nil || cfg.Log == nil || cfg.Holder == "" {
		return nil, errors.New("lease: Leaser, Log and Holder are required")
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.SyncEvery <= 0 {
		cfg.SyncEvery = DefaultSyncEvery
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Keeper{cfg: cfg, logger: logger, ready: make(chan struct{})}, nil
}

// Ready returns a channel closed once Run's first attempt to take the lease
// has finished: a server that waits for it before serving is the sequencer
// from the start when it is alone.
func (k *Keeper) Ready() <-chan struct{} { return k.ready }

// Run takes or renews the lease every TTL/3 and, while another server
// holds it, syncs the log with the store every SyncEvery, until ctx is
// done. Then, if this server holds the lease, it releases it (within 5 s)
// so that another server can take over at once, and returns; afterwards
// Leader reports no leader. Run must be called once.
func (k *Keeper) Run(ctx context.Context) {
	k.attempt(ctx)
	close(k.ready)
	k.loop(ctx)
	k.release(context.WithoutCancel(ctx))
}

// Leader reports where writes go: self is true while this server holds
// the lease; otherwise addr is the holder's base URL ("" when no live
// holder is known). It is httpapi.Config.Leader.
func (k *Keeper) Leader() (addr string, self bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.held && time.Now().Before(k.until) {
		return k.cfg.Addr, true
	}
	if k.held {
		return "", false // renewals are failing: not safe to append, nor to name another
	}
	return k.leader, false
}

// release gives up the lease if this server holds it; afterwards Leader
// reports no leader.
func (k *Keeper) release(ctx context.Context) {
	k.mu.Lock()
	held := k.held
	k.held, k.leader = false, ""
	k.mu.Unlock()
	if held {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := k.cfg.Leaser.ReleaseLease(ctx, k.cfg.Holder); err != nil {
			k.logger.Warn("releasing the sequencer lease", "err", err)
		} else {
			k.logger.Info("released the sequencer lease")
		}
	}
}

func (k *Keeper) loop(ctx context.Context) {
	renew := time.NewTicker(k.cfg.TTL / 3)
	defer renew.Stop()
	sync := time.NewTicker(k.cfg.SyncEvery)
	defer sync.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-renew.C:
			k.attempt(ctx)
		case <-sync.C:
			if _, self := k.Leader(); !self {
				k.follow(ctx)
			}
		}
	}
}

// attempt takes or renews the lease, and records who holds it.
func (k *Keeper) attempt(ctx context.Context) {
	start := time.Now()
	actx, cancel := context.WithTimeout(ctx, k.cfg.TTL/3)
	defer cancel()
	l, held, err := k.cfg.Leaser.TryLease(actx, k.cfg.Holder, k.cfg.Addr, k.cfg.TTL)
	if err != nil {
		if ctx.Err() == nil {
			k.logger.Warn("sequencer lease: the store did not answer", "err", err)
		}
		return // k.until runs out by itself if this keeps failing
	}
	k.mu.Lock()
	was := k.held
	k.held = held
	k.epoch = l.Epoch
	if held {
		// The database set the expiry at most TTL after start; stop
		// acting as the sequencer a renewal period before that.
		k.until = start.Add(k.cfg.TTL - k.cfg.TTL/3)
		k.leader = k.cfg.Addr
	} else {
		k.leader = l.Addr
		if l.Holder == "" {
			k.leader = ""
		}
		if k.leader != "" && len(k.cfg.Peers) > 0 && !slices.Contains(k.cfg.Peers, k.leader) {
			k.logger.Error("the sequencer lease names an address that is not a --peer: not forwarding writes there", "addr", k.leader, "holder", l.Holder)
			k.leader = ""
		}
	}
	k.mu.Unlock()
	switch {
	case held && !was:
		k.logger.Info("took the sequencer lease", "epoch", l.Epoch, "addr", k.cfg.Addr)
		// Another server may have appended: publish the store's newest
		// checkpoint and start the next batch from the store.
		if err := k.cfg.Log.Sync(ctx); err != nil {
			k.logger.Error("syncing with the store on taking the lease", "err", err)
		}
		k.cfg.Log.Invalidate()
	case !held && was:
		k.logger.Warn("lost the sequencer lease", "holder", l.Holder, "addr", l.Addr, "epoch", l.Epoch)
	}
	if held != was && k.cfg.OnChange != nil {
		k.cfg.OnChange(held)
	}
}

// follow publishes what the sequencer appended since the last sync.
func (k *Keeper) follow(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := k.cfg.Log.Sync(sctx); err != nil && ctx.Err() == nil {
		if errors.Is(err, log.ErrFork) || errors.Is(err, log.ErrRollback) {
			k.logger.Error("the shared store does not extend the published log: not following it", "err", err)
			return
		}
		k.logger.Warn("syncing with the store", "err", err)
	}
}
