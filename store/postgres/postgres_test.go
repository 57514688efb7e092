package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/store/postgres/pgtest"
	"github.com/custodylog/custody/store/storetest"
)

// openDSN opens a Store on dsn, closed when t ends.
func openDSN(t *testing.T, dsn string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("Open() error: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// openTemp opens a Store in a new schema, dropped when t ends.
func openTemp(t *testing.T) *Store {
	t.Helper()
	return openDSN(t, pgtest.DSN(t))
}

func TestConformance(t *testing.T) {
	storetest.Run(t,
		func(t *testing.T) store.Store { return openTemp(t) },
		func(t *testing.T, old store.Store) store.Store {
			dsn := old.(*Store).dsn
			if err := old.Close(); err != nil {
				t.Fatalf("Close() error: %v", err)
			}
			return openDSN(t, dsn)
		})
}

func TestSchemaVersion(t *testing.T) {
	dsn := pgtest.DSN(t)
	s := openDSN(t, dsn)
	ctx := context.Background()
	var version int
	if err := s.pool.QueryRow(ctx, "SELECT version FROM schema_version").Scan(&version); err != nil || version != schemaVersion {
		t.Errorf("schema_version = %d, %v, want %d", version, err, schemaVersion)
	}
	// Opening again finds the schema.
	openDSN(t, dsn).Close()

	if _, err := s.pool.Exec(ctx, "UPDATE schema_version SET version = 99"); err != nil {
		t.Fatal(err)
	}
	_, err := Open(ctx, dsn)
	if err == nil {
		t.Fatal("Open(database of schema version 99) = nil error")
	}
	for _, want := range []string{"postgres: opening postgres://", fmt.Sprintf("schema version is 99, want %d", schemaVersion), "run that version, or give a new database or schema"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Open(database of schema version 99) = %v, want it to contain %q", err, want)
		}
	}
}

func TestOpenRefuses(t *testing.T) {
	ctx := context.Background()

	// A schema holding another application's table called entries.
	other := pgtest.DSN(t)
	s := openDSN(t, other)
	for _, q := range []string{"DROP TABLE schema_version", "DROP TABLE lease"} {
		if _, err := s.pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	noRow := pgtest.DSN(t)
	s = openDSN(t, noRow)
	if _, err := s.pool.Exec(ctx, "DELETE FROM schema_version"); err != nil {
		t.Fatal(err)
	}
	s.Close()

	missing, err := pgtest.WithSearchPath(pgtest.Server(), "custody_test_no_such_schema")
	if err != nil {
		t.Fatal(err)
	}
	unsync, err := pgtest.WithSearchPath(pgtest.DSN(t), "x")
	if err != nil {
		t.Fatal(err)
	}
	unsync = strings.Replace(unsync, "search_path=x", "synchronous_commit=off", 1)

	for _, tt := range []struct{ dsn, want string }{
		{other, "has tables aggregates, checkpoints, entries, head, sample_map, sample_tiles, tiles but no schema_version: it is not a custody log"},
		{noRow, "schema_version table has no row"},
		{missing, "no schema of the search_path exists"},
		{unsync, "synchronous_commit is off"},
		{"postgres://nobody@127.0.0.1:1/test?sslmode=disable&connect_timeout=2", "postgres: opening postgres://nobody@127.0.0.1:1/test: connecting:"},
		{"postgres://x@[::1", "postgres: parsing DSN:"},
	} {
		s, err := Open(ctx, tt.dsn)
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) = nil error, want one containing %q", tt.dsn, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Open(%q) = %v, want an error containing %q", tt.dsn, err, tt.want)
		}
	}
}

// TestConcurrentOpen opens several Stores on a new schema at once: one
// creates the tables, the others find them.
func TestConcurrentOpen(t *testing.T) {
	dsn := pgtest.DSN(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			s, err := Open(context.Background(), dsn)
			if err == nil {
				s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
		}
	}
}

// TestTwoStoresRace races two Stores (two pools, as two processes would
// have) appending to the same checkpoint: each round exactly one wins, the
// other gets ErrConflict, and a reopened Store sees a consistent log.
func TestTwoStoresRace(t *testing.T) {
	dsn := pgtest.DSN(t)
	stores := [2]*Store{openDSN(t, dsn), openDSN(t, dsn)}
	ctx := context.Background()
	g := new(storetest.BenchLog)
	g.MustAppend(t, stores[0], 0, "genesis")
	var all []store.Entry
	for round := range 20 {
		batches := [2]store.Batch{g.Batch(50+round, fmt.Sprintf("a%d", round)), g.Batch(60+round, fmt.Sprintf("b%d", round))}
		var errs [2]error
		var start, done sync.WaitGroup
		start.Add(1)
		for i := range stores {
			done.Go(func() {
				start.Wait()
				errs[i] = stores[i].Append(ctx, batches[i])
			})
		}
		start.Done()
		done.Wait()
		var won store.Batch
		switch {
		case errs[0] == nil && errs[1] == nil:
			t.Fatalf("round %d: both stores appended", round)
		case errs[0] == nil && errors.Is(errs[1], store.ErrConflict):
			won = batches[0]
		case errs[1] == nil && errors.Is(errs[0], store.ErrConflict):
			won = batches[1]
		default:
			t.Fatalf("round %d: Append() = %v, %v; want nil and ErrConflict", round, errs[0], errs[1])
		}
		g.Apply(won)
		all = append(all, won.Entries...)
		for i, s := range stores {
			c, err := s.Latest(ctx)
			if err != nil || c.Size != g.Size || c.Root != won.Checkpoint.Root {
				t.Fatalf("round %d: store %d: Latest() = size %d, %v, want size %d", round, i, c.Size, err, g.Size)
			}
		}
	}

	for _, s := range stores {
		s.Close()
	}
	s := openDSN(t, dsn)
	c, err := s.Latest(ctx)
	if err != nil || c.Size != g.Size || c.Root != g.Prev.Root {
		t.Fatalf("reopened: Latest() = size %d, %v, want size %d", c.Size, err, g.Size)
	}
	got, err := s.Entries(ctx, 0, g.Size+10)
	if err != nil || len(got) != len(all) {
		t.Fatalf("reopened: Entries(0, %d) = %d entries, %v, want %d", g.Size+10, len(got), err, len(all))
	}
	for i := range all {
		if got[i].Index != all[i].Index || got[i].Identity != all[i].Identity || string(got[i].Data) != string(all[i].Data) {
			t.Fatalf("reopened: entry %d is not the one appended", i)
		}
	}
	cps, err := s.Checkpoints(ctx, 0, 100)
	if err != nil || len(cps) != 21 {
		t.Fatalf("reopened: Checkpoints(0, 100) = %d checkpoints, %v, want 21", len(cps), err)
	}
	ids := make([]store.Hash, len(all))
	want := make(map[store.Hash]uint64, len(all))
	for i, e := range all {
		ids[i] = e.Identity
		want[e.Identity] = e.Index
	}
	if found, err := s.ByIdentity(ctx, ids); err != nil || !maps.Equal(found, want) {
		t.Errorf("reopened: ByIdentity(all) = %d found, %v, want %d", len(found), err, len(want))
	}
	// The other store's identity is refused, in this store too.
	d := g.Batch(10, "dup")
	d.Entries[5].Identity = all[3].Identity
	err = s.Append(ctx, d)
	if !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), fmt.Sprintf("entry %d has identity %x, already the identity of entry %d", d.Entries[5].Index, all[3].Identity, all[3].Index)) {
		t.Errorf("Append(duplicate identity) = %v, want ErrConflict naming the entries", err)
	}
}

// TestErrorMessages checks that errors say what failed on what input.
func TestErrorMessages(t *testing.T) {
	storetest.CheckErrorMessages(t, openTemp(t), "postgres")
}

// TestCanceledContext checks that Append with a canceled context returns
// the context's error.
func TestCanceledContext(t *testing.T) {
	s := openTemp(t)
	g := new(storetest.BenchLog)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Append(ctx, g.Genesis()); !errors.Is(err, context.Canceled) {
		t.Errorf("Append(canceled context) = %v, want context.Canceled", err)
	}
	if _, err := s.Latest(context.Background()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Latest() after a canceled Append = %v, want ErrNotFound", err)
	}
}

func TestLease(t *testing.T) {
	dsn := pgtest.DSN(t)
	a, b := openDSN(t, dsn), openDSN(t, dsn)
	ctx := context.Background()
	const ttl = 300 * time.Millisecond

	l, ok, err := a.TryLease(ctx, "A", "http://a", ttl)
	if err != nil || !ok || l.Holder != "A" || l.Addr != "http://a" || l.Epoch != 1 {
		t.Fatalf("A: TryLease() = %+v, %v, %v; want held by A at epoch 1", l, ok, err)
	}
	if l2, ok, err := b.TryLease(ctx, "B", "http://b", ttl); err != nil || ok || l2.Holder != "A" || l2.Addr != "http://a" || l2.Epoch != 1 {
		t.Fatalf("B: TryLease() while A holds it = %+v, %v, %v; want A's lease", l2, ok, err)
	}
	renewed, ok, err := a.TryLease(ctx, "A", "http://a2", ttl)
	if err != nil || !ok || renewed.Epoch != 1 || renewed.Addr != "http://a2" || renewed.Expires.Before(l.Expires) {
		t.Fatalf("A: renewing TryLease() = %+v, %v, %v; want A's lease, epoch 1, expiring no earlier than %v", renewed, ok, err, l.Expires)
	}

	// A stops renewing: B gets the lease once it has expired.
	deadline := time.Now().Add(10 * time.Second)
	for {
		l, ok, err = b.TryLease(ctx, "B", "http://b", ttl)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("B: TryLease() still refused 10 s after A's lease of %v: %+v", ttl, l)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if l.Holder != "B" || l.Addr != "http://b" || l.Epoch != 2 {
		t.Fatalf("B: TryLease() after expiry = %+v, want held by B at epoch 2", l)
	}

	// A non-holder's release does nothing.
	if err := a.ReleaseLease(ctx, "A"); err != nil {
		t.Fatal(err)
	}
	if l, ok, err := a.TryLease(ctx, "A", "http://a", time.Minute); err != nil || ok || l.Holder != "B" {
		t.Fatalf("A: TryLease() after A's release of B's lease = %+v, %v, %v; want B's lease", l, ok, err)
	}
	// B takes it for long, then gives it up: A gets it at once.
	if _, ok, err := b.TryLease(ctx, "B", "http://b", time.Hour); err != nil || !ok {
		t.Fatalf("B: renewing TryLease() = %v, %v", ok, err)
	}
	if err := b.ReleaseLease(ctx, "B"); err != nil {
		t.Fatal(err)
	}
	l, ok, err = a.TryLease(ctx, "A", "http://a", time.Minute)
	if err != nil || !ok || l.Holder != "A" || l.Epoch != 3 {
		t.Fatalf("A: TryLease() after B's release = %+v, %v, %v; want held by A at epoch 3", l, ok, err)
	}

	if _, _, err := a.TryLease(ctx, "", "http://a", time.Minute); err == nil {
		t.Errorf("TryLease(empty holder) = nil error")
	}
}

// TestLeaseRace has servers race for a free lease: exactly one gets it.
func TestLeaseRace(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	stores := make([]*Store, 4)
	for i := range stores {
		stores[i] = openDSN(t, dsn)
	}
	for round := range 5 {
		oks := make([]bool, len(stores))
		var wg sync.WaitGroup
		for i, s := range stores {
			wg.Go(func() {
				_, ok, err := s.TryLease(ctx, fmt.Sprint("server ", i), "", time.Hour)
				if err != nil {
					t.Errorf("round %d: server %d: TryLease() error: %v", round, i, err)
				}
				oks[i] = ok
			})
		}
		wg.Wait()
		winner := -1
		for i, ok := range oks {
			if ok && winner >= 0 {
				t.Fatalf("round %d: servers %d and %d both hold the lease", round, winner, i)
			}
			if ok {
				winner = i
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: nobody got the free lease", round)
		}
		if err := stores[winner].ReleaseLease(ctx, fmt.Sprint("server ", winner)); err != nil {
			t.Fatal(err)
		}
	}
}
