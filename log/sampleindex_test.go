package log

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custodylog/custody/internal/logtest"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/sampleindex"
	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/store/postgres"
	"github.com/custodylog/custody/store/postgres/pgtest"
	"github.com/custodylog/custody/store/sqlite"
)

// sampleEvents returns n events of sample, distinct by their time.
func sampleEvents(sample string, n int) []record.Event {
	evs := make([]record.Event, n)
	for i := range evs {
		evs[i] = record.Event{Sample: sample, Action: record.Stored, Location: "de-fra-1", Region: "EU",
			Time: logtest.Time.Add(time.Duration(i) * time.Second), Actor: "test-index"}
	}
	return evs
}

// proveAndVerify asks the log for the sample's proof since since, checks
// it with sampleindex.Verify against the checkpoint it comes with, and
// returns the chain.
func proveAndVerify(t *testing.T, tl *testLog, sample string, since uint64) *sampleindex.Chain {
	t.Helper()
	p, cp, err := tl.SampleProof(context.Background(), sample, since)
	if err != nil {
		t.Fatalf("SampleProof(%q, since %d): %v", sample, since, err)
	}
	tr := logtest.SampleTrusted(t, tl.vkey, cp.Note)
	ch, err := sampleindex.Verify(p.Marshal(), sampleindex.Request{Sample: sample, Since: since, EntrySample: logtest.EntrySample}, tr)
	if err != nil {
		t.Fatalf("sampleindex.Verify(proof of %q since %d at size %d): %v", sample, since, tr.Size, err)
	}
	return ch
}

// TestSampleProofs: samples with 1, 2, 255, 256 and 257 events, spread
// over many batches among other samples' events, get proofs that verify
// against the signed checkpoint with every event in log order; an unknown
// sample gets a verified absence; since=M proves only the new events and
// extends the chain verified at M.
func TestSampleProofs(t *testing.T) {
	ctx := context.Background()
	tl := newTestLog(t, Config{MaxBatch: 100})
	counts := map[string]int{"one": 1, "two": 2, "n255": 255, "n256": 256, "n257": 257}
	var all []record.Event
	for s, n := range counts {
		all = append(all, sampleEvents(s, n)...)
	}
	slices.SortFunc(all, func(a, b record.Event) int { return a.Time.Compare(b.Time) }) // interleaved
	var atM map[string]*sampleindex.Chain
	var m uint64
	for i := 0; i < len(all); i += 97 {
		if _, err := tl.AddMany(ctx, slices.Concat(all[i:min(i+97, len(all))], testEvents(i, 3))); err != nil {
			t.Fatal(err)
		}
		if atM == nil && i >= len(all)/2 {
			m = tl.Checkpoint().Size
			atM = map[string]*sampleindex.Chain{}
			for s := range counts {
				atM[s] = proveAndVerify(t, tl, s, 0)
			}
		}
	}
	for s, n := range counts {
		ch := proveAndVerify(t, tl, s, 0)
		want, err := tl.SampleIndexes(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		var got []uint64
		for _, e := range ch.Entries {
			got = append(got, e.Index)
		}
		if len(got) != n || !slices.Equal(got, want) {
			t.Errorf("sample %s: chain of %d entries %v, want %d: %v", s, len(got), got, n, want)
		}
		since := proveAndVerify(t, tl, s, m)
		if err := since.Extends(atM[s].List); err != nil {
			t.Errorf("sample %s: the chain since %d does not extend the one verified at %d: %v", s, m, m, err)
		}
		var newer []uint64
		for _, x := range want {
			if x >= m {
				newer = append(newer, x)
			}
		}
		if len(since.Entries) != len(newer) || since.Old.Size != uint64(len(want)-len(newer)) {
			t.Errorf("sample %s since %d: %d new entries and an old list of %d, want %d and %d", s, m, len(since.Entries), since.Old.Size, len(newer), len(want)-len(newer))
		}
	}
	if ch := proveAndVerify(t, tl, "never-logged", 0); !ch.Absent() {
		t.Errorf("unknown sample: chain of %d entries, want a verified absence", len(ch.Entries))
	}
	if _, _, err := tl.SampleProof(ctx, "one", tl.Checkpoint().Size+1); !errors.Is(err, ErrBeyondTree) {
		t.Errorf("SampleProof(since beyond the tree) = %v, want ErrBeyondTree", err)
	}
	if _, _, err := tl.SampleProof(ctx, "bad id", 0); err == nil {
		t.Error("SampleProof(invalid sample ID) = nil error")
	}
}

// flakyMapStore is a store whose sample map writes fail while fail is
// set, as if the process died before writing the map.
type flakyMapStore struct {
	*sqlite.Store
	fail   atomic.Bool
	writes atomic.Int64
}

func (f *flakyMapStore) WriteSampleMap(ctx context.Context, prev, size uint64, tiles []sampleindex.Tile) error {
	if f.fail.Load() {
		return errors.New("injected: the process died before writing the map")
	}
	f.writes.Add(1)
	return f.Store.WriteSampleMap(ctx, prev, size, tiles)
}

// logBuffer collects a log's slog output.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// indexLine returns the index line of a signed checkpoint.
func indexLine(t *testing.T, signed []byte) string {
	t.Helper()
	text, _, _ := strings.Cut(string(signed), "\n\n")
	lines := strings.Split(text, "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[3], sampleindex.ExtensionKeyword+" ") {
		t.Fatalf("checkpoint %q has no index line", text)
	}
	return lines[3]
}

// TestSampleIndexCrashReplay: the map is written every 300 entries; the
// process "dies" (map writes fail) with entries indexed since the last
// write; a new log on the store opens the map at the stored size, replays
// the tail (no rebuild), and gives the same roots as the checkpoints the
// first log signed, then goes on.
func TestSampleIndexCrashReplay(t *testing.T) {
	ctx := context.Background()
	tl := newBareLog(t)
	st := &flakyMapStore{Store: tl.st.(*sqlite.Store)}
	tl.open(t, Config{Store: st, MaxBatch: 100, SampleIndex: SampleIndexOptions{FlushEntries: 300, FlushInterval: time.Hour}})
	var notes [][]byte
	for i := range 10 {
		if _, err := tl.AddMany(ctx, append(testEvents(i*90, 90), sampleEvents("chain", 10)[i:i+1]...)); err != nil {
			t.Fatal(err)
		}
		notes = append(notes, tl.Checkpoint().Note)
	}
	stored, err := st.SampleMapSize(ctx)
	if err != nil || stored < 300 || stored >= 910 {
		t.Fatalf("stored map size %d, %v: want a write every 300 entries, the last ones not written", stored, err)
	}
	st.fail.Store(true) // dies: the shutdown's write fails too
	if err := tl.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.SampleMapSize(ctx); got != stored {
		t.Fatalf("stored map size %d after the failed writes, want %d", got, stored)
	}
	st.fail.Store(false)
	var logs logBuffer
	tl.open(t, Config{Store: st, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if strings.Contains(logs.String(), "rebuilding") {
		t.Errorf("the reopened log rebuilt its index instead of replaying the tail:\n%s", logs.String())
	}
	if got, want := indexLine(t, tl.Checkpoint().Note), indexLine(t, notes[len(notes)-1]); got != want {
		t.Fatalf("reopened: latest checkpoint line %q, want %q", got, want)
	}
	root, err := tl.idx.m.Root(ctx)
	if err != nil || sampleindex.FormatExtension(root) != indexLine(t, notes[len(notes)-1]) {
		t.Fatalf("replayed map root %x (%v), the last checkpoint says %q", root, err, indexLine(t, notes[len(notes)-1]))
	}
	ch := proveAndVerify(t, tl, "chain", 0)
	if len(ch.Entries) != 10 {
		t.Errorf("chain after replay has %d entries, want 10", len(ch.Entries))
	}
	// It goes on from there: a new batch, then a clean shutdown writes
	// the map up to the end.
	if _, err := tl.AddMany(ctx, sampleEvents("after", 3)); err != nil {
		t.Fatal(err)
	}
	proveAndVerify(t, tl, "after", 0)
	size := tl.Checkpoint().Size
	if err := tl.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := st.SampleMapSize(ctx); err != nil || got != size {
		t.Errorf("after a clean shutdown the stored map size is %d (%v), want %d", got, err, size)
	}
}

// TestSampleIndexRebuildsDamagedMap: a stored map whose root tile was
// overwritten no longer gives the root the latest checkpoint commits; the
// next Open says so, resets it and rebuilds it from the entries, and the
// proofs verify again.
func TestSampleIndexRebuildsDamagedMap(t *testing.T) {
	ctx := context.Background()
	tl := newTestLog(t, Config{})
	if _, err := tl.AddMany(ctx, append(sampleEvents("x", 5), testEvents(0, 40)...)); err != nil {
		t.Fatal(err)
	}
	tl.Close() // writes the map
	sm := tl.st.(store.SampleMap)
	size, err := sm.SampleMapSize(ctx)
	if err != nil || size != 45 {
		t.Fatalf("stored map size %d, %v; want 45", size, err)
	}
	// Another valid map's root tile, in place of the log's.
	other := sampleindex.Open(sampleindex.NewMemTiles(), 0, nil)
	if _, err := other.Update(ctx, []sampleindex.Change{{Key: sampleindex.KeyOf("y"), Index: 3}, {Key: sampleindex.KeyOf("z"), Index: 7}}); err != nil {
		t.Fatal(err)
	}
	tiles := other.Dirty()
	if err := sm.WriteSampleMap(ctx, 45, 45, tiles[:1]); err != nil {
		t.Fatal(err)
	}
	var logs logBuffer
	tl.open(t, Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if !strings.Contains(logs.String(), "does not match the log: rebuilding it") {
		t.Errorf("the log did not report the damaged map:\n%s", logs.String())
	}
	if ch := proveAndVerify(t, tl, "x", 0); len(ch.Entries) != 5 {
		t.Errorf("chain of x after the rebuild has %d entries, want 5", len(ch.Entries))
	}
}

// TestSampleIndexBuiltForOldLog: a log grown without the index (its
// checkpoints have no index line) keeps none when reopened as it is (an
// upgrade does not start a build unasked), gets its map built from its
// entries at the first Open with SampleIndexOptions.Enabled, and from then
// on keeps it: its next checkpoints carry the line, also after an Open
// without Enabled, and proofs of samples logged before verify.
func TestSampleIndexBuiltForOldLog(t *testing.T) {
	ctx := context.Background()
	tl := newTestLog(t, Config{SampleIndex: SampleIndexOptions{Disabled: true}})
	if _, err := tl.AddMany(ctx, append(sampleEvents("old", 4), testEvents(0, 500)...)); err != nil {
		t.Fatal(err)
	}
	text, _, _ := strings.Cut(string(tl.Checkpoint().Note), "\n\n")
	if strings.Contains(text, sampleindex.ExtensionKeyword) {
		t.Fatalf("checkpoint of a log without the index has an index line: %q", text)
	}
	tl.Close()
	hasLine := func() bool {
		text, _, _ := strings.Cut(string(tl.Checkpoint().Note), "\n\n")
		return strings.Contains(text, sampleindex.ExtensionKeyword)
	}
	tl.open(t, Config{})
	if _, err := tl.AddMany(ctx, testEvents(500, 10)); err != nil {
		t.Fatal(err)
	}
	if hasLine() {
		t.Fatal("reopened without Enabled, a log without the index started committing one")
	}
	if _, _, err := tl.SampleProof(ctx, "old", 0); !errors.Is(err, ErrNoSampleIndex) {
		t.Fatalf("sample proof from a log keeping no index: %v, want ErrNoSampleIndex", err)
	}
	tl.Close()
	var logs logBuffer
	tl.open(t, Config{Logger: slog.New(slog.NewTextHandler(&logs, nil)), SampleIndex: SampleIndexOptions{Enabled: true}})
	if !strings.Contains(logs.String(), "indexing samples") {
		t.Errorf("building the index was not logged:\n%s", logs.String())
	}
	if _, err := tl.AddMany(ctx, sampleEvents("old", 6)[4:]); err != nil {
		t.Fatal(err)
	}
	if !hasLine() {
		t.Fatal("with Enabled, the checkpoints carry no index line")
	}
	tl.Close()
	tl.open(t, Config{})
	if _, err := tl.AddMany(ctx, testEvents(510, 3)); err != nil {
		t.Fatal(err)
	}
	if !hasLine() {
		t.Fatal("reopened without Enabled, a log that commits an index dropped it")
	}
	if ch := proveAndVerify(t, tl, "old", 0); len(ch.Entries) != 6 {
		t.Errorf("chain of old has %d entries, want 6", len(ch.Entries))
	}
}

// TestSampleIndexFollower: two servers share a store; the follower
// follows the leader's checkpoints with Sync and serves proofs that verify
// (also after the leader wrote a newer map), and after taking over it
// appends checkpoints with the right index line.
func TestSampleIndexFollower(t *testing.T) {
	ctx := context.Background()
	leader := newBareLog(t)
	leader.open(t, Config{Shared: true, MaxBatch: 50, SampleIndex: SampleIndexOptions{FlushEntries: 120, FlushInterval: time.Hour}})
	st2, err := sqlite.Open(leader.path)
	if err != nil {
		t.Fatal(err)
	}
	follower := &testLog{st: st2, path: leader.path, signer: leader.signer, verifier: leader.verifier, vkey: leader.vkey}
	follower.open(t, Config{Shared: true})
	t.Cleanup(func() { follower.Close(); st2.Close() })
	for round := range 4 {
		if _, err := leader.AddMany(ctx, append(sampleEvents("shared", 8)[2*round:2*round+2], testEvents(round*100, 100)...)); err != nil {
			t.Fatal(err)
		}
		if err := follower.Sync(ctx); err != nil {
			t.Fatalf("round %d: Sync: %v", round, err)
		}
		if ch := proveAndVerify(t, follower, "shared", 0); len(ch.Entries) != 2*round+2 {
			t.Errorf("round %d: the follower's chain has %d entries, want %d", round, len(ch.Entries), 2*round+2)
		}
	}
	if n, _ := st2.SampleMapSize(ctx); n == 0 {
		t.Fatal("the leader never wrote the map")
	}
	// Take-over: the leader stops; the follower appends.
	leader.Close()
	follower.Invalidate()
	if _, err := follower.AddMany(ctx, sampleEvents("shared", 10)[8:]); err != nil {
		t.Fatal(err)
	}
	if ch := proveAndVerify(t, follower, "shared", 0); len(ch.Entries) != 10 {
		t.Errorf("after the take-over the chain has %d entries, want 10", len(ch.Entries))
	}
}

// TestSampleIndexPostgres: the same as TestSampleIndexFollower with two
// servers on one PostgreSQL schema, the leader writing the map there.
func TestSampleIndexPostgres(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	open := func() store.Store {
		st, err := postgres.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	s, v, vkey := newKeys(t)
	st1, st2 := open(), open()
	if err := Create(ctx, st1, s); err != nil {
		t.Fatal(err)
	}
	leader := &testLog{st: st1, signer: s, verifier: v, vkey: vkey}
	leader.open(t, Config{Shared: true, MaxBatch: 50, SampleIndex: SampleIndexOptions{FlushEntries: 120, FlushInterval: time.Hour}})
	follower := &testLog{st: st2, signer: s, verifier: v, vkey: vkey}
	follower.open(t, Config{Shared: true})
	t.Cleanup(func() { follower.Close(); leader.Close() })
	for round := range 3 {
		if _, err := leader.AddMany(ctx, append(sampleEvents("pg", 6)[2*round:2*round+2], testEvents(round*100, 100)...)); err != nil {
			t.Fatal(err)
		}
		if err := follower.Sync(ctx); err != nil {
			t.Fatalf("round %d: Sync: %v", round, err)
		}
		proveAndVerify(t, leader, "pg", 0)
		if ch := proveAndVerify(t, follower, "pg", 0); len(ch.Entries) != 2*round+2 {
			t.Errorf("round %d: the follower's chain has %d entries, want %d", round, len(ch.Entries), 2*round+2)
		}
	}
	if n, err := st1.(store.SampleMap).SampleMapSize(ctx); err != nil || n == 0 {
		t.Fatalf("the leader wrote no map to PostgreSQL: size %d, %v", n, err)
	}
	leader.Close()
	follower.Invalidate()
	if _, err := follower.AddMany(ctx, sampleEvents("pg", 8)[6:]); err != nil {
		t.Fatal(err)
	}
	if ch := proveAndVerify(t, follower, "pg", 0); len(ch.Entries) != 8 {
		t.Errorf("after the take-over the chain has %d entries, want 8", len(ch.Entries))
	}
}

// TestCheckpointLineWithXMod: the checkpoints the log signs keep the three
// standard lines x/mod reads, and the index line is the fourth.
func TestCheckpointLineWithXMod(t *testing.T) {
	tl := newTestLog(t, Config{})
	r, err := tl.Add(context.Background(), testEvent(1))
	if err != nil {
		t.Fatal(err)
	}
	checkReceipt(t, tl.vkey, r) // x/mod note and tlog
	tr := logtest.SampleTrusted(t, tl.vkey, []byte(r.Checkpoint))
	if tr.Size != 1 {
		t.Errorf("size %d", tr.Size)
	}
	want := sampleindex.Open(sampleindex.NewMemTiles(), 0, nil)
	root, err := want.Update(context.Background(), []sampleindex.Change{{Key: sampleindex.KeyOf(testEvent(1).Sample), Index: 0, LeafHash: sampleindex.EntryLeafHash(r.Entry)}})
	if err != nil || root != tr.MapRoot {
		t.Errorf("checkpoint map root %s, want %s (%v)", base64.StdEncoding.EncodeToString(tr.MapRoot[:]), base64.StdEncoding.EncodeToString(root[:]), err)
	}
	// The size-0 checkpoint of a new log commits the empty map.
	tl0 := newBareLog(t)
	cp, err := tl0.st.Latest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := indexLine(t, cp.Note), sampleindex.FormatExtension(sampleindex.EmptyMapRoot); got != want {
		t.Errorf("size-0 checkpoint line %q, want %q", got, want)
	}
}

// TestRawTiles: the raw tile cache serves the newest version put, never a
// replaced one, stays within its budget (compacting replaced versions
// away), and refuses what does not fit.
func TestRawTiles(t *testing.T) {
	var c rawTiles
	c.reset(100)
	id := func(i byte) sampleindex.TileID { return sampleindex.TileID{Depth: 8, Prefix: sampleindex.Hash{i}} }
	get := func(i byte) string {
		got, miss := c.get([]sampleindex.TileID{id(i)})
		if len(miss) != 0 {
			return "<miss>"
		}
		return string(got[id(i)])
	}
	for i, tt := range []struct {
		id   byte
		data string
		ok   bool
	}{
		{1, strings.Repeat("a", 40), true},
		{2, strings.Repeat("b", 40), true},
		{1, strings.Repeat("c", 40), false}, // 120 > 100, nothing to compact: 1 is dropped
		{3, strings.Repeat("d", 50), true},  // fits after compacting 1's old version away
		{2, strings.Repeat("e", 10), true},
	} {
		if ok := c.put(id(tt.id), []byte(tt.data)); ok != tt.ok {
			t.Fatalf("put %d: %v, want %v", i, ok, tt.ok)
		}
		if len(c.arena) > 100 {
			t.Fatalf("put %d: arena of %d bytes, budget 100", i, len(c.arena))
		}
	}
	for _, tt := range []struct {
		id   byte
		want string
	}{{1, "<miss>"}, {2, strings.Repeat("e", 10)}, {3, strings.Repeat("d", 50)}} {
		if got := get(tt.id); got != tt.want {
			t.Errorf("tile %d: %q, want %q", tt.id, got, tt.want)
		}
	}
	c.reset(-1)
	if c.put(id(1), []byte("x")) || get(1) != "<miss>" {
		t.Error("a cache with a negative budget holds a tile")
	}
}

// failingAppendStore fails Appends while fail is set (before the commit,
// or after it reached the disk), and keeps the sample map.
type failingAppendStore struct {
	*sqlite.Store
	fail, after atomic.Bool
}

func (f *failingAppendStore) Append(ctx context.Context, b store.Batch) error {
	if f.fail.Load() && !f.after.Load() {
		return errors.New("injected: disk full")
	}
	err := f.Store.Append(ctx, b)
	if f.fail.Load() && err == nil {
		return errors.New("injected: commit reported failure after it reached the disk")
	}
	return err
}

// TestSampleIndexCommitFailure: after a failed commit the index (which
// covered the failed batch) serves no proof, saying why; the next batch reloads it, and the chain then holds each event
// once, whether or not the failed commit reached the disk.
func TestSampleIndexCommitFailure(t *testing.T) {
	for _, after := range []bool{false, true} {
		t.Run(fmt.Sprintf("afterCommit=%v", after), func(t *testing.T) {
			ctx := context.Background()
			tl := newBareLog(t)
			fs := &failingAppendStore{Store: tl.st.(*sqlite.Store)}
			fs.after.Store(after)
			tl.open(t, Config{Store: fs})
			if _, err := tl.AddMany(ctx, sampleEvents("f", 2)); err != nil {
				t.Fatal(err)
			}
			fs.fail.Store(true)
			if _, err := tl.AddMany(ctx, sampleEvents("f", 4)[2:]); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("AddMany with a failing store: %v", err)
			}
			if _, _, err := tl.SampleProof(ctx, "f", 0); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "commit failed") {
				t.Errorf("SampleProof after a failed commit: %v, want ErrUnavailable saying the commit failed", err)
			}
			fs.fail.Store(false)
			if _, err := tl.AddMany(ctx, sampleEvents("f", 5)[2:]); err != nil {
				t.Fatal(err)
			}
			if ch := proveAndVerify(t, tl, "f", 0); len(ch.Entries) != 5 {
				t.Errorf("chain of %d entries after the retry, want 5", len(ch.Entries))
			}
		})
	}
}

// TestRawTilesPreloadGeneration: a preload's tiles are not added once the
// map was written since it started (they may be older versions), nor in
// place of a cached tile.
func TestRawTilesPreloadGeneration(t *testing.T) {
	var c rawTiles
	c.reset(1000)
	id := sampleindex.TileID{Depth: 4, Prefix: sampleindex.Hash{0x10}}
	gen := c.generation()
	if err := c.preloaded(id, []byte("old"), gen); err != nil {
		t.Fatal(err)
	}
	c.newGeneration() // a write of the map
	c.put(id, []byte("new"))
	if err := c.preloaded(id, []byte("old"), gen); !errors.Is(err, errPreloadDone) {
		t.Errorf("preload after a write: %v, want errPreloadDone", err)
	}
	if err := c.preloaded(id, []byte("old"), c.generation()); err != nil {
		t.Fatal(err)
	}
	got, _ := c.get([]sampleindex.TileID{id})
	if string(got[id]) != "new" {
		t.Errorf("cached %q, want the written version", got[id])
	}
}
