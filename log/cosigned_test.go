package log

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/store/sqlite"
)

// storedNote returns the note of the store's newest checkpoint, read
// through a fresh handle on tl's database file (as a mirror or a copy
// would read it).
func storedNote(t *testing.T, tl *testLog) store.Checkpoint {
	t.Helper()
	st, err := sqlite.Open(tl.path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cp, err := st.Latest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

// restart closes the log and its store and opens both again with cfg.
func (tl *testLog) restart(t *testing.T, cfg Config) {
	t.Helper()
	tl.Close()
	tl.Log = nil
	if err := tl.st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(tl.path)
	if err != nil {
		t.Fatal(err)
	}
	tl.st = st
	tl.open(t, cfg)
}

// TestCosignedCheckpointSurvivesRestart: with a required quorum, the
// cosigned note is stored before it is published (the store holds exactly
// what /checkpoint serves), and after a restart with every witness down the
// first checkpoint served is that stored cosigned note, not the log-signed
// one: the witnesses are not needed to serve what they already cosigned.
func TestCosignedCheckpointSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	tl := newBareLog(t)
	a := newTestWitness(t, "witness-a.example", tl.verifier)
	b := newTestWitness(t, "witness-b.example", tl.verifier)
	cfg := Config{Witnesses: []Witness{a.config(), b.config()}, Quorum: 2, WitnessTimeout: 2 * time.Second}
	tl.open(t, cfg)
	if _, err := tl.AddMany(ctx, testEvents(0, 7)); err != nil {
		t.Fatal(err)
	}
	served := getCheckpoint(t, tl)
	checkCosigned(t, tl, served, a, b)
	if got := storedNote(t, tl); got.Size != 7 || !bytes.Equal(got.Note, served) {
		t.Fatalf("the store holds\n%s\nwhile /checkpoint serves\n%s", got.Note, served)
	}

	a.down.Store(true)
	b.down.Store(true)
	tl.restart(t, cfg)
	first := getCheckpoint(t, tl)
	if !bytes.Equal(first, served) {
		t.Fatalf("after a restart with the witnesses down /checkpoint serves\n%s\nwant the stored cosigned note\n%s", first, served)
	}
	checkCosigned(t, tl, first, a, b)
	// Receipts built now carry it too (an event already logged).
	r, err := tl.Add(ctx, testEvent(3))
	if err != nil {
		t.Fatalf("duplicate after the restart: %v", err)
	}
	if r.Index != 3 || r.Checkpoint != string(served) {
		t.Fatalf("duplicate's receipt: index %d, checkpoint\n%s", r.Index, r.Checkpoint)
	}

	// Witnesses back: the log goes on, and the store follows what is served.
	a.down.Store(false)
	b.down.Store(false)
	if _, err := tl.AddMany(ctx, testEvents(7, 4)); err != nil {
		t.Fatal(err)
	}
	served = getCheckpoint(t, tl)
	checkCosigned(t, tl, served, a, b)
	if got := storedNote(t, tl); got.Size != 11 || !bytes.Equal(got.Note, served) {
		t.Fatalf("the store holds\n%s\nwhile /checkpoint serves\n%s", got.Note, served)
	}
}

// TestCosignedCheckpointStoredOptional: without a required quorum, the
// cosignatures collected in the background are stored too, before they are
// served, and survive a restart.
func TestCosignedCheckpointStoredOptional(t *testing.T) {
	ctx := context.Background()
	tl := newBareLog(t)
	a := newTestWitness(t, "witness-a.example", tl.verifier)
	cfg := Config{Witnesses: []Witness{a.config()}, WitnessTimeout: 2 * time.Second}
	tl.open(t, cfg)
	if _, err := tl.AddMany(ctx, testEvents(0, 3)); err != nil {
		t.Fatal(err)
	}
	var served []byte
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if cp := tl.Checkpoint(); cp.Size == 3 && bytes.Contains(cp.Note, []byte("— "+a.name+" ")) {
			served = getCheckpoint(t, tl)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the published checkpoint never got the cosignature:\n%s", tl.Checkpoint().Note)
		}
	}
	checkCosigned(t, tl, served, a)
	if got := storedNote(t, tl); !bytes.Equal(got.Note, served) {
		t.Fatalf("the store holds\n%s\nwhile /checkpoint serves\n%s", got.Note, served)
	}
	a.down.Store(true)
	tl.restart(t, cfg)
	if first := getCheckpoint(t, tl); !bytes.Equal(first, served) {
		t.Fatalf("after a restart /checkpoint serves\n%s\nwant\n%s", first, served)
	}
}

// noteFailStore fails the write-back of cosigned notes (Append without
// entries of the newest checkpoint) while fail is set.
type noteFailStore struct {
	store.Store
	mu   sync.Mutex
	fail bool
}

func (f *noteFailStore) Append(ctx context.Context, b store.Batch) error {
	f.mu.Lock()
	fail := f.fail
	f.mu.Unlock()
	if fail && len(b.Entries) == 0 && b.Prev != nil {
		return errors.New("injected: disk full")
	}
	return f.Store.Append(ctx, b)
}

// TestCosignedNoteNotStoredNotPublished: with a required quorum, a
// cosigned checkpoint whose note cannot be stored is not published (the
// callers get ErrUnavailable, the previous checkpoint stays served, and
// nothing already stored changes); once the store works again, the retry
// gets its original indexes against a stored cosigned checkpoint.
func TestCosignedNoteNotStoredNotPublished(t *testing.T) {
	ctx := context.Background()
	tl := newBareLog(t)
	a := newTestWitness(t, "witness-a.example", tl.verifier)
	fs := &noteFailStore{Store: tl.st}
	tl.open(t, Config{Store: fs, Witnesses: []Witness{a.config()}, Quorum: 1, WitnessTimeout: 2 * time.Second})
	if _, err := tl.AddMany(ctx, testEvents(0, 2)); err != nil {
		t.Fatal(err)
	}
	before := getCheckpoint(t, tl)

	fs.mu.Lock()
	fs.fail = true
	fs.mu.Unlock()
	evs := testEvents(2, 3)
	if _, err := tl.AddMany(ctx, evs); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("cosigned note not stored: err %v, want ErrUnavailable", err)
	}
	if got := getCheckpoint(t, tl); !bytes.Equal(got, before) {
		t.Fatalf("/checkpoint changed although its cosigned note was not stored:\n%s", got)
	}
	// The batch is committed (log-signed only); nothing was rolled back.
	if got := storedNote(t, tl); got.Size != 5 || bytes.Contains(got.Note, []byte("— "+a.name+" ")) {
		t.Fatalf("stored checkpoint: size %d\n%s", got.Size, got.Note)
	}

	fs.mu.Lock()
	fs.fail = false
	fs.mu.Unlock()
	rs, err := tl.AddMany(ctx, evs)
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].Index != 2 {
		t.Fatalf("retry landed at %d, want the original index 2", rs[0].Index)
	}
	served := getCheckpoint(t, tl)
	checkCosigned(t, tl, served, a)
	if got := storedNote(t, tl); got.Size != 5 || !bytes.Equal(got.Note, served) {
		t.Fatalf("the store holds\n%s\nwhile /checkpoint serves\n%s", got.Note, served)
	}
}

// TestStoreCosignedKeepsStoredCosignatures: a cosigned note that does not
// extend the stored one (another server sharing the store stored a
// different witness's cosignature first) is not written over it; the
// stored note, which carries the quorum, is what gets published.
func TestStoreCosignedKeepsStoredCosignatures(t *testing.T) {
	ctx := context.Background()
	tl := newBareLog(t)
	a := newTestWitness(t, "witness-a.example", tl.verifier)
	b := newTestWitness(t, "witness-b.example", tl.verifier)
	b.down.Store(true)
	tl.open(t, Config{Witnesses: []Witness{a.config(), b.config()}, Quorum: 1, WitnessTimeout: 2 * time.Second})
	if _, err := tl.AddMany(ctx, testEvents(0, 4)); err != nil {
		t.Fatal(err)
	}
	stored := storedNote(t, tl)
	checkCosigned(t, tl, stored.Note, a)

	// The same tree head cosigned by b instead.
	plain, err := signCheckpoint(tl.signer, stored.Size, stored.Root)
	if err != nil {
		t.Fatal(err)
	}
	a.down.Store(true)
	b.down.Store(false)
	b.addDirect(t, plain)
	other := stored
	other.Note, _ = tl.witnessRound(ctx, tl.snap.Load().src, store.Checkpoint{Size: stored.Size, Root: stored.Root, Note: plain})
	if bytes.HasPrefix(other.Note, stored.Note) {
		t.Fatalf("test bug: the other note extends the stored one:\n%s", other.Note)
	}
	got, err := tl.storeCosigned(ctx, other)
	if err != nil {
		t.Fatalf("storeCosigned(a note the stored one does not prefix): %v", err)
	}
	if !bytes.Equal(got.Note, stored.Note) {
		t.Fatalf("storeCosigned returned\n%s\nwant the stored note\n%s", got.Note, stored.Note)
	}
	if now := storedNote(t, tl); !bytes.Equal(now.Note, stored.Note) {
		t.Fatalf("the stored note changed to\n%s", now.Note)
	}
}

// TestFollowerPublishesStoredCosignatures: without a required quorum, a
// server following a shared store publishes the cosigned note the
// sequencer stored, whether it arrives with a new checkpoint or after it.
func TestFollowerPublishesStoredCosignatures(t *testing.T) {
	ctx := context.Background()
	tl := newBareLog(t)
	a := newTestWitness(t, "witness-a.example", tl.verifier)
	a.down.Store(true)
	tl.open(t, Config{Shared: true, Witnesses: []Witness{a.config()}, WitnessTimeout: 2 * time.Second})
	st, err := sqlite.Open(tl.path)
	if err != nil {
		t.Fatal(err)
	}
	// The follower's witness is down throughout: it can only publish
	// cosignatures it reads from the store.
	down := newTestWitness(t, "witness-a.example", tl.verifier)
	down.down.Store(true)
	f, err := Open(ctx, Config{Store: st, Signer: tl.signer, Verifier: tl.verifier, Shared: true,
		Witnesses: []Witness{{URL: down.srv.URL, Verifier: a.v}}, WitnessTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close(); st.Close() })

	waitStored := func(size uint64) []byte {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if cp := storedNote(t, tl); cp.Size == size && bytes.Contains(cp.Note, []byte("— "+a.name+" ")) {
				return cp.Note
			}
		}
		t.Fatalf("no cosigned note of size %d stored", size)
		return nil
	}

	// The checkpoint first, its cosignature after the follower synced.
	if _, err := tl.AddMany(ctx, testEvents(0, 3)); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.Checkpoint(); got.Size != 3 || bytes.Contains(got.Note, []byte("— "+a.name+" ")) {
		t.Fatalf("follower published size %d:\n%s", got.Size, got.Note)
	}
	a.down.Store(false)
	tl.kickWitnesses()
	note := waitStored(3)
	if err := f.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.Checkpoint(); !bytes.Equal(got.Note, note) {
		t.Fatalf("follower publishes\n%s\nwant the stored cosigned note\n%s", got.Note, note)
	}

	// A new checkpoint already cosigned when the follower syncs.
	if _, err := tl.AddMany(ctx, testEvents(3, 2)); err != nil {
		t.Fatal(err)
	}
	note = waitStored(5)
	if err := f.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.Checkpoint(); !bytes.Equal(got.Note, note) {
		t.Fatalf("follower publishes\n%s\nwant the stored cosigned note\n%s", got.Note, note)
	}
}
