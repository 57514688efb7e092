package lease

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custodylog/custody/log"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/store/postgres"
	"github.com/custodylog/custody/store/postgres/pgtest"
	"golang.org/x/mod/sumdb/note"
)

const ttl = 600 * time.Millisecond

// server is one custody server on the shared PostgreSQL store.
type server struct {
	st     *postgres.Store
	log    *log.Log
	k      *Keeper
	leaser *mortalLeaser
	cancel context.CancelFunc // ends the keeper's Run
	done   chan struct{}      // closed when Run has returned
}

// mortalLeaser is a store's lease that a killed process can no longer
// release.
type mortalLeaser struct {
	store.Leaser
	dead atomic.Bool
}

func (m *mortalLeaser) ReleaseLease(ctx context.Context, holder string) error {
	if m.dead.Load() {
		return errors.New("the process is dead")
	}
	return m.Leaser.ReleaseLease(ctx, holder)
}

func startServer(t *testing.T, dsn string, signer note.Signer, verifier note.Verifier, name string, leaser func(*postgres.Store) store.Leaser, peers ...string) *server {
	t.Helper()
	ctx := context.Background()
	st, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	l, err := log.Open(ctx, log.Config{Store: st, Signer: signer, Verifier: verifier, Shared: true})
	if err != nil {
		t.Fatal(err)
	}
	var ls store.Leaser = st
	if leaser != nil {
		ls = leaser(st)
	}
	ml := &mortalLeaser{Leaser: ls}
	k, err := New(Config{Leaser: ml, Log: l, Holder: name, Addr: "http://" + name, TTL: ttl, SyncEvery: 20 * time.Millisecond, Peers: peers})
	if err != nil {
		t.Fatal(err)
	}
	kctx, cancel := context.WithCancel(ctx)
	s := &server{st: st, log: l, k: k, leaser: ml, cancel: cancel, done: make(chan struct{})}
	go func() { defer close(s.done); k.Run(kctx) }()
	<-k.Ready()
	t.Cleanup(func() { s.stop(); s.log.Close(); s.st.Close() })
	return s
}

// stop ends the keeper's Run and waits for it (it releases the lease).
func (s *server) stop() {
	s.cancel()
	<-s.done
}

// die stops the keeper without releasing the lease, as a killed process
// would.
func (s *server) die() {
	s.leaser.dead.Store(true)
	s.stop()
}

func newLog(t *testing.T) (string, note.Signer, note.Verifier) {
	t.Helper()
	dsn := pgtest.DSN(t)
	skey, vkey, _ := note.GenerateKey(rand.Reader, "lease.test/log")
	signer, _ := note.NewSigner(skey)
	verifier, _ := note.NewVerifier(vkey)
	st, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	if err := log.Create(context.Background(), st, signer); err != nil {
		t.Fatal(err)
	}
	st.Close()
	return dsn, signer, verifier
}

func events(from, n int) []record.Event {
	out := make([]record.Event, n)
	for i := range out {
		out[i] = record.Event{Sample: fmt.Sprintf("s-%d", from+i), Action: record.Collected, Location: "ch-zrh-1",
			Region: "EU", Actor: "t", Time: time.Now().UTC().Truncate(time.Second).Add(-time.Minute)}
	}
	return out
}

// eventually polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// TestTakeoverAfterDeath: the first server holds the lease, the second
// follows what it appends; the holder dies without releasing; the second
// takes over, with the store's newest state, and appends.
func TestTakeoverAfterDeath(t *testing.T) {
	dsn, signer, verifier := newLog(t)
	a := startServer(t, dsn, signer, verifier, "a", nil)
	b := startServer(t, dsn, signer, verifier, "b", nil)
	if addr, self := a.k.Leader(); !self || addr != "http://a" {
		t.Fatalf("a: Leader() = %q, %v; want itself", addr, self)
	}
	if addr, self := b.k.Leader(); self || addr != "http://a" {
		t.Fatalf("b: Leader() = %q, %v; want a", addr, self)
	}
	ctx := context.Background()
	if _, err := a.log.AddMany(ctx, events(0, 50)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b follows a's appends", func() bool { return b.log.Checkpoint().Size == 50 })
	if b.log.Checkpoint().Root != a.log.Checkpoint().Root {
		t.Fatal("b published another root for size 50")
	}

	a.die()
	took := eventually(t, "b takes the lease", func() bool { _, self := b.k.Leader(); return self })
	t.Logf("b took the lease %s after a died (ttl %s)", took.Round(time.Millisecond), ttl)
	rs, err := b.log.AddMany(ctx, events(50, 10))
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].Index != 50 {
		t.Errorf("b's first new event is at %d, want 50: it did not start from the store's state", rs[0].Index)
	}
}

// TestReleaseOnStop: a holder whose Run ends releases the lease, so the
// other takes it on its next attempt.
func TestReleaseOnStop(t *testing.T) {
	dsn, signer, verifier := newLog(t)
	a := startServer(t, dsn, signer, verifier, "a", nil)
	b := startServer(t, dsn, signer, verifier, "b", nil)
	a.stop()
	if addr, self := a.k.Leader(); self || addr != "" {
		t.Errorf("after Run returned, a: Leader() = %q, %v; want no leader", addr, self)
	}
	eventually(t, "b takes the released lease", func() bool { _, self := b.k.Leader(); return self })
}

// failingLeaser fails every TryLease once told to, and remembers when the
// last call that reached the database started.
type failingLeaser struct {
	store.Leaser
	fail      atomic.Bool
	lastStart atomic.Int64 // unix nanoseconds
}

func (f *failingLeaser) TryLease(ctx context.Context, holder, addr string, ttl time.Duration) (store.Lease, bool, error) {
	if f.fail.Load() {
		return store.Lease{}, false, errors.New("injected: the database is unreachable")
	}
	f.lastStart.Store(time.Now().UnixNano())
	return f.Leaser.TryLease(ctx, holder, addr, ttl)
}

// TestStopsSequencingWhenRenewalsFail: a holder that cannot renew stops
// saying it is the sequencer before its lease can have lapsed, and names
// no other server.
func TestStopsSequencingWhenRenewalsFail(t *testing.T) {
	dsn, signer, verifier := newLog(t)
	var fl *failingLeaser
	a := startServer(t, dsn, signer, verifier, "a", func(st *postgres.Store) store.Leaser {
		fl = &failingLeaser{Leaser: st}
		return fl
	})
	if _, self := a.k.Leader(); !self {
		t.Fatal("a does not hold the lease")
	}
	fl.fail.Store(true)
	eventually(t, "a stops acting as the sequencer", func() bool {
		addr, self := a.k.Leader()
		return !self && addr == ""
	})
	// The database expires the lease at most ttl after the last renewal
	// began; a must have stopped before that moment.
	a.k.mu.RLock()
	until := a.k.until
	a.k.mu.RUnlock()
	if lapse := time.Unix(0, fl.lastStart.Load()).Add(ttl); !until.Before(lapse) {
		t.Errorf("a acts as the sequencer until %s, after the lease can lapse (%s)", until.Format(time.RFC3339Nano), lapse.Format(time.RFC3339Nano))
	}
}

// TestPeersAllowlist: a follower with --peer addresses does not forward
// writes to a lease holder it was not told about.
func TestPeersAllowlist(t *testing.T) {
	dsn, signer, verifier := newLog(t)
	startServer(t, dsn, signer, verifier, "a", nil)
	b := startServer(t, dsn, signer, verifier, "b", nil, "http://b", "http://c")
	if addr, self := b.k.Leader(); self || addr != "" {
		t.Errorf("b forwards to %q (self %v); a is not a listed peer", addr, self)
	}
	c := startServer(t, dsn, signer, verifier, "c", nil, "http://a")
	if addr, _ := c.k.Leader(); addr != "http://a" {
		t.Errorf("c forwards to %q, want the listed peer http://a", addr)
	}
}
