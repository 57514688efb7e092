package loadgen

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/log"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/sampleindex"
	"github.com/custodylog/custody/stats"
	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/store/sqlite"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// storeTiles serves a store's tiles to x/mod's tlog.TileHashReader.
type storeTiles struct {
	ctx context.Context
	st  store.Store
}

func (s storeTiles) Height() int { return 8 }
func (s storeTiles) ReadTiles(ts []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(ts))
	for i, t := range ts {
		d, err := s.st.Tile(s.ctx, uint8(t.L), uint64(t.N))
		if err != nil {
			return nil, fmt.Errorf("tile %s: %w", t.Path(), err)
		}
		if len(d) < t.W*32 {
			return nil, fmt.Errorf("tile %s: %d bytes", t.Path(), len(d))
		}
		out[i] = d[:t.W*32]
	}
	return out, nil
}
func (s storeTiles) SaveTiles([]tlog.Tile, [][]byte) {}

func newLog(t *testing.T) (store.Store, note.Signer, note.Verifier) {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "custody.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sk, vk, _ := note.GenerateKey(rand.Reader, "loadgen.test/log")
	s, _ := note.NewSigner(sk)
	v, _ := note.NewVerifier(vk)
	if err := log.Create(context.Background(), st, s); err != nil {
		t.Fatal(err)
	}
	return st, s, v
}

// TestPrefillIsWhatTheSequencerWrites grows a log across tile boundaries in
// uneven batches, then checks it with x/mod's tlog (every stored tile is
// read through TileHashReader and the root recomputed), opens it with the
// real sequencer (which rebuilds the tree from the stored tiles and checks
// the signed checkpoint), and appends through it.
func TestPrefillIsWhatTheSequencerWrites(t *testing.T) {
	ctx := context.Background()
	st, s, v := newLog(t)
	var seen []uint64
	cp, err := Prefill(ctx, st, s, v, 70000, PrefillOptions{Batch: 9999, Progress: func(n uint64) { seen = append(seen, n) }})
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size != 70000 || len(seen) != 8 || seen[0] != 9999 || seen[7] != 70000 {
		t.Fatalf("size %d, progress %v", cp.Size, seen)
	}
	// Resuming on top of a prefilled log continues the same tree.
	if cp, err = Prefill(ctx, st, s, v, 1234, PrefillOptions{Batch: 1000}); err != nil || cp.Size != 71234 {
		t.Fatalf("second prefill: size %d, %v", cp.Size, err)
	}
	tree := tlog.Tree{N: int64(cp.Size), Hash: tlog.Hash(cp.Root)}
	hr := tlog.TileHashReader(tree, storeTiles{ctx, st})
	if h, err := tlog.TreeHash(tree.N, hr); err != nil || h != tree.Hash {
		t.Fatalf("x/mod recomputes %x from the stored tiles (%v), checkpoint says %x", h, err, cp.Root)
	}
	es, err := st.Entries(ctx, 70000, 70002)
	if err != nil || len(es) != 2 {
		t.Fatal(err)
	}
	for _, e := range es {
		p, err := tlog.ProveRecord(tree.N, int64(e.Index), hr)
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.CheckRecord(p, tree.N, tree.Hash, int64(e.Index), tlog.RecordHash(e.Data)); err != nil {
			t.Fatalf("entry %d: x/mod inclusion check: %v", e.Index, err)
		}
		ev, err := record.DecodeEntry(e.Data)
		if err != nil || ev.Identity() != e.Identity || ev.Sample != e.Sample {
			t.Fatalf("entry %d is not a well-formed event with its identity: %v", e.Index, err)
		}
	}
	l, err := log.Open(ctx, log.Config{Store: st, Signer: s, Verifier: v})
	if err != nil {
		t.Fatalf("the sequencer refuses a prefilled log: %v", err)
	}
	defer l.Close()
	ev := Event("after", 0, time.Now().UTC().Add(-time.Minute).Truncate(time.Second))
	r, err := l.Add(ctx, ev)
	if err != nil || r.Index != 71234 {
		t.Fatalf("append after prefill: index %d, %v", r.Index, err)
	}
	// Prefill's checkpoints commit the sample index as the sequencer's
	// do: the prefilled one and the sequencer's next one carry the root
	// of a map recomputed here from the entries, and prefill stored the
	// map's tiles at its last size.
	if size, err := st.(store.SampleMap).SampleMapSize(ctx); err != nil || size < 71234 {
		t.Errorf("stored sample map size %d, %v; want at least 71234", size, err)
	}
	checkIndexLine(t, st, cp.Note, 71234)
	checkIndexLine(t, st, []byte(r.Checkpoint), 71235)
}

// checkIndexLine checks that the signed checkpoint note carries the root
// of the sample index of the first size entries of st, recomputed with
// sampleindex from the entries.
func checkIndexLine(t *testing.T, st store.Store, signed []byte, size uint64) {
	t.Helper()
	ctx := context.Background()
	text, _, _ := strings.Cut(string(signed), "\n\n")
	lines := strings.Split(text, "\n")
	got, err := sampleindex.FindExtension(lines[3:])
	if err != nil {
		t.Fatalf("checkpoint of size %d: %v", size, err)
	}
	m := sampleindex.Open(sampleindex.NewMemTiles(), 0, nil)
	for from := uint64(0); from < size; from += 10000 {
		es, err := st.Entries(ctx, from, min(from+10000, size))
		if err != nil {
			t.Fatal(err)
		}
		var cs []sampleindex.Change
		for _, e := range es {
			ev, err := record.DecodeEntry(e.Data)
			if err != nil {
				t.Fatalf("entry %d: %v", e.Index, err)
			}
			cs = append(cs, sampleindex.Change{Key: sampleindex.KeyOf(ev.Sample), Index: e.Index, LeafHash: sampleindex.EntryLeafHash(e.Data)})
		}
		if _, err := m.Update(ctx, cs); err != nil {
			t.Fatal(err)
		}
	}
	if want, err := m.Root(ctx); err != nil || got != want {
		t.Errorf("checkpoint of size %d commits map root %x, the entries give %x (%v)", size, got, want, err)
	}
}

func TestPrefillRefusesAnotherKey(t *testing.T) {
	st, _, _ := newLog(t)
	sk, vk, _ := note.GenerateKey(rand.Reader, "loadgen.test/log")
	s2, _ := note.NewSigner(sk)
	v2, _ := note.NewVerifier(vk)
	if _, err := Prefill(context.Background(), st, s2, v2, 10, PrefillOptions{}); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("prefill with another key: %v", err)
	}
	if cp, _ := st.Latest(context.Background()); cp.Size != 0 {
		t.Fatal("a refused prefill wrote entries")
	}
}

// TestPrefillSavesCounts: the region × location counts are saved as a
// server saves them, covering the whole prefilled log (a second prefill
// adds to the first's), so serving the log does not recount it.
func TestPrefillSavesCounts(t *testing.T) {
	ctx := context.Background()
	st, cp, snap := prefillTwice(t, 3000, 1000, 500, 300)
	// The same counts, recounted from the entries.
	want := map[string]map[string]uint64{}
	es, err := st.Entries(ctx, 0, cp.Size)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		ev, err := record.DecodeEntry(e.Data)
		if err != nil {
			t.Fatal(err)
		}
		if want[ev.Region] == nil {
			want[ev.Region] = map[string]uint64{}
		}
		want[ev.Region][ev.Location]++
	}
	if !reflect.DeepEqual(snap.Counts, want) || len(want) != 2 {
		t.Fatalf("saved counts %v, recounted %v", snap.Counts, want)
	}
}

// TestPrefillAuditsClean: the generated events are all allowed by
// testdata/bench-policy.yaml and logged in time, so auditing a prefilled
// log with it gives no finding (benchmarks of the audit measure the
// audit, not the report of millions of findings).
func TestPrefillAuditsClean(t *testing.T) {
	ctx := context.Background()
	st, s, v := newLog(t)
	cp, err := Prefill(ctx, st, s, v, 3000, PrefillOptions{Batch: 1000})
	if err != nil {
		t.Fatal(err)
	}
	p, err := audit.LoadPolicy("../testdata/bench-policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	e := audit.NewEngine(p)
	es, err := st.Entries(ctx, 0, cp.Size)
	if err != nil || uint64(len(es)) != cp.Size {
		t.Fatalf("%d entries, %v", len(es), err)
	}
	for _, en := range es {
		ev, err := record.DecodeEntry(en.Data)
		if err != nil {
			t.Fatal(err)
		}
		if f := e.Add(en.Index, ev); len(f) != 0 {
			t.Fatalf("entry %d: findings %v", en.Index, f)
		}
	}
	if c := e.Counts(); len(c["EU"]) != 3 || len(c["US"]) != 2 {
		t.Fatalf("the workload does not use all five data centres: %v", c)
	}
}

// prefillTwice prefills a new log with n1 then n2 events (batches of b1
// and b2) and returns it, its checkpoint and the counts it saved, which
// must cover the whole log.
func prefillTwice(t *testing.T, n1 uint64, b1 int, n2 uint64, b2 int) (store.Store, store.Checkpoint, stats.Snapshot) {
	t.Helper()
	ctx := context.Background()
	st, s, v := newLog(t)
	if _, err := Prefill(ctx, st, s, v, n1, PrefillOptions{Batch: b1}); err != nil {
		t.Fatal(err)
	}
	cp, err := Prefill(ctx, st, s, v, n2, PrefillOptions{Batch: b2})
	if err != nil {
		t.Fatal(err)
	}
	size, data, err := st.(store.Aggregator).LoadAggregate(ctx, stats.AggregateName)
	if err != nil || size != cp.Size {
		t.Fatalf("saved counts cover %d entries (%v), want %d", size, err, cp.Size)
	}
	var snap stats.Snapshot
	if err := snap.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	return st, cp, snap
}
