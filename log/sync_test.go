package log

import (
	"context"
	"errors"
	"testing"

	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/store/sqlite"
)

// openPeer opens a second server's Log on tl's database file, through its
// own Store handle, as another process sharing the store would.
func openPeer(t *testing.T, tl *testLog) (*Log, store.Store) {
	t.Helper()
	st, err := sqlite.Open(tl.path)
	if err != nil {
		t.Fatal(err)
	}
	l, err := Open(context.Background(), Config{Store: st, Signer: tl.signer, Verifier: tl.verifier, Shared: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(); st.Close() })
	return l, st
}

// TestSharedStoreSync checks a follower publishes what the sequencer
// appended, only after Sync, with proofs that check against it; and that two
// servers appending to one store keep one linear log.
func TestSharedStoreSync(t *testing.T) {
	ctx := context.Background()
	a := newTestLog(t, Config{Shared: true})
	b, _ := openPeer(t, a)

	if _, err := a.AddMany(ctx, testEvents(0, 10)); err != nil {
		t.Fatal(err)
	}
	if got := b.Checkpoint().Size; got != 0 {
		t.Fatalf("follower published size %d before Sync", got)
	}
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := b.Checkpoint(), a.Checkpoint(); got.Size != 10 || got.Root != want.Root {
		t.Fatalf("after Sync the follower publishes size %d, want the sequencer's 10", got.Size)
	}
	// The follower serves proofs against what it published.
	r, err := b.InclusionProof(ctx, 7, 10)
	if err != nil || len(r) == 0 {
		t.Fatalf("follower inclusion proof: %v", err)
	}
	if err := b.Sync(ctx); err != nil {
		t.Fatalf("Sync with nothing new: %v", err)
	}

	// The lease moves to b: it reloads, appends; a (not told) tries to
	// append on its stale state: its commit conflicts, nothing forks, and
	// its retry lands after b's entries.
	b.Invalidate()
	if _, err := b.AddMany(ctx, testEvents(10, 5)); err != nil {
		t.Fatal(err)
	}
	_, err = a.AddMany(ctx, testEvents(15, 3))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("stale sequencer's append: %v, want ErrUnavailable (conflict)", err)
	}
	rs, err := a.AddMany(ctx, testEvents(15, 3))
	if err != nil {
		t.Fatalf("retry after the conflict: %v", err)
	}
	if rs[0].Index != 15 {
		t.Errorf("retried event landed at %d, want 15 (after b's)", rs[0].Index)
	}
	checkReceipt(t, a.vkey, rs[2])
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if b.Checkpoint().Size != 18 || b.Checkpoint().Root != a.Checkpoint().Root {
		t.Fatalf("b at %d, a at %d: not the same tree", b.Checkpoint().Size, a.Checkpoint().Size)
	}
}

// forkStore is a store whose Latest and Tile come from another log, once
// other is set.
type forkStore struct {
	store.Store
	other store.Store
}

func (f *forkStore) Latest(ctx context.Context) (store.Checkpoint, error) {
	if f.other == nil {
		return f.Store.Latest(ctx)
	}
	return f.other.Latest(ctx)
}

func (f *forkStore) Tile(ctx context.Context, l uint8, i uint64) ([]byte, error) {
	if f.other == nil {
		return f.Store.Tile(ctx, l, i)
	}
	return f.other.Tile(ctx, l, i)
}

// TestSyncRefusesForkAndRollback checks a follower never publishes a
// checkpoint that does not extend the one it published, even one signed
// with the log's key.
func TestSyncRefusesForkAndRollback(t *testing.T) {
	ctx := context.Background()
	a := newTestLog(t, Config{})
	if _, err := a.AddMany(ctx, testEvents(0, 10)); err != nil {
		t.Fatal(err)
	}
	// Another history under the same key: different events, larger tree.
	other, err := sqlite.Open(t.TempDir() + "/other.db")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := Create(ctx, other, a.signer); err != nil {
		t.Fatal(err)
	}
	ol, err := Open(ctx, Config{Store: other, Signer: a.signer, Verifier: a.verifier})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ol.AddMany(ctx, testEvents(100, 30)); err != nil {
		t.Fatal(err)
	}
	ol.Close()

	st, err := sqlite.Open(a.path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	f := forkStore{Store: st}
	b, err := Open(ctx, Config{Store: &f, Signer: a.signer, Verifier: a.verifier})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	published := b.Checkpoint()
	f.other = other
	if err := b.Sync(ctx); !errors.Is(err, ErrFork) {
		t.Fatalf("Sync onto another history: %v, want ErrFork", err)
	}
	if b.Checkpoint().Root != published.Root {
		t.Fatal("the forked checkpoint was published")
	}

	// A store that went back in time.
	small, err := sqlite.Open(t.TempDir() + "/small.db")
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	if err := Create(ctx, small, a.signer); err != nil {
		t.Fatal(err)
	}
	f.other = small
	if err := b.Sync(ctx); !errors.Is(err, ErrRollback) {
		t.Fatalf("Sync onto an older checkpoint: %v, want ErrRollback", err)
	}
	if b.Checkpoint().Size != published.Size {
		t.Fatal("the rolled-back checkpoint was published")
	}
}

// TestSharedStoreCosigned checks that with a witness quorum, the sequencer
// stores each cosigned note, and a follower publishes a checkpoint only
// with the quorum's cosignatures.
func TestSharedStoreCosigned(t *testing.T) {
	ctx := context.Background()
	a := newBareLog(t)
	w := newTestWitness(t, "witness.example", a.verifier)
	a.open(t, Config{Shared: true, Witnesses: []Witness{w.config()}, Quorum: 1})
	st, err := sqlite.Open(a.path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	b, err := Open(ctx, Config{Store: st, Signer: a.signer, Verifier: a.verifier, Shared: true, Witnesses: []Witness{w.config()}, Quorum: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	if _, err := a.AddMany(ctx, testEvents(0, 7)); err != nil {
		t.Fatal(err)
	}
	stored, err := st.Latest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checkCosigned(t, a, stored.Note, w)
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	got := b.Checkpoint()
	if got.Size != 7 {
		t.Fatalf("follower publishes size %d, want 7", got.Size)
	}
	checkCosigned(t, a, got.Note, w)

	// A checkpoint stored without the quorum (here by a server with no
	// witnesses) is not published by a follower that requires it.
	c, _ := openPeer(t, a)
	if _, err := c.AddMany(ctx, testEvents(7, 3)); err != nil {
		t.Fatal(err)
	}
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := b.Checkpoint().Size; got != 7 {
		t.Fatalf("follower published size %d without the witness quorum", got)
	}
}
