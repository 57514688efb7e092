// Package storetest is the conformance suite of store.Store: every backend's
// tests call Run, and a backend is correct when Run passes.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"

	"github.com/custodylog/custody/store"
	"github.com/google/go-cmp/cmp"
)

// Run runs the conformance suite against a backend, as subtests of t.
//
// open must return a new, empty store, and arrange (with t.Cleanup) for it
// to be closed at the end of the test. reopen must close old and return a
// store on the same underlying database, also closed at the end of the
// test; Close may therefore be called twice on old.
func Run(t *testing.T, open func(t *testing.T) store.Store, reopen func(t *testing.T, old store.Store) store.Store) {
	tests := []struct {
		name string
		f    func(t *testing.T, open func(t *testing.T) store.Store)
	}{
		{"Empty", testEmpty},
		{"Genesis", testGenesis},
		{"AppendExtends", testAppendExtends},
		{"StalePrev", testStalePrev},
		{"PrevNoteIgnored", testPrevNoteIgnored},
		{"Resign", testResign},
		{"CosignedNote", testCosignedNote},
		{"Atomicity", testAtomicity},
		{"CanceledContext", testCanceledContext},
		{"Tiles", testTiles},
		{"EachTile", testEachTile},
		{"NotFound", testNotFound},
		{"Entries", testEntries},
		{"ByIdentity", testByIdentity},
		{"ByLeafHash", testByLeafHash},
		{"Sample", testSample},
		{"Checkpoint", testCheckpoint},
		{"ConcurrentAppend", testConcurrentAppend},
		{"ReadsSeeWholeBatches", testReadsSeeWholeBatches},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.f(t, open) })
	}
	t.Run("Reopen", func(t *testing.T) { testReopen(t, open, reopen) })
}

// genesis returns a store holding the size-0 checkpoint, and its model.
func genesis(t *testing.T, open func(t *testing.T) store.Store) (store.Store, *model) {
	t.Helper()
	s := open(t)
	m := newModel()
	m.mustAppend(t, s, m.batch(0, "genesis"))
	return s, m
}

// wantErr fails t unless err wraps want.
func wantErr(t *testing.T, call string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s = %v, want an error wrapping %q", call, err, want)
	}
}

func testEmpty(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := context.Background()
	_, err := s.Latest(ctx)
	wantErr(t, "Latest() error", err, store.ErrNotFound)
	_, err = s.Checkpoint(ctx, 0)
	wantErr(t, "Checkpoint(0) error", err, store.ErrNotFound)
	_, err = s.Tile(ctx, 0, 0)
	wantErr(t, "Tile(0, 0) error", err, store.ErrNotFound)
	_, err = s.ByLeafHash(ctx, store.Hash{})
	wantErr(t, "ByLeafHash(zero hash) error", err, store.ErrNotFound)
	if es, err := s.Entries(ctx, 0, 10); err != nil || len(es) != 0 {
		t.Errorf("Entries(0, 10) = %v, %v, want none", es, err)
	}
	if ids, err := s.ByIdentity(ctx, []store.Hash{{1}}); err != nil || len(ids) != 0 {
		t.Errorf("ByIdentity([1]) = %v, %v, want empty", ids, err)
	}
	if idx, err := s.Sample(ctx, samples[0]); err != nil || len(idx) != 0 {
		t.Errorf("Sample(%q) = %v, %v, want empty", samples[0], idx, err)
	}
	newModel().check(t, s)
}

func testGenesis(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	m := newModel()
	ctx := context.Background()

	// A batch extending a checkpoint the empty store does not have.
	b := m.batch(0, "genesis")
	b.Prev = &store.Checkpoint{Size: 0, Root: b.Checkpoint.Root, Note: b.Checkpoint.Note}
	wantErr(t, "Append(Prev non-nil on an empty store)", s.Append(ctx, b), store.ErrConflict)
	m.checkNotWritten(t, s, b)

	m.mustAppend(t, s, m.batch(0, "genesis"))
	m.check(t, s)

	// A second genesis, even an identical one, must not replace the first.
	for _, tag := range []string{"genesis", "other genesis"} {
		b := newModel().batch(0, tag)
		wantErr(t, fmt.Sprintf("second genesis Append(%q)", tag), s.Append(ctx, b), store.ErrConflict)
		m.check(t, s)
	}
	// Nor one with entries.
	b = newModel().batch(3, "other genesis")
	wantErr(t, "second genesis Append(3 entries)", s.Append(ctx, b), store.ErrConflict)
	m.checkNotWritten(t, s, b)
}

func testAppendExtends(t *testing.T, open func(t *testing.T) store.Store) {
	s, m := genesis(t, open)
	// Sizes that cross level-0 and level-1 tile boundaries (256, 65536)
	// and fill tiles exactly.
	for _, n := range []int{1, 254, 1, 1, 511, 1000, 256, 63512, 1, 5} {
		m.mustAppend(t, s, m.batch(n, "extend"))
		if m.size() < 2000 {
			m.check(t, s)
		}
	}
	if got, want := m.size(), uint64(65542); got != want {
		t.Fatalf("test bug: model size %d, want %d", got, want)
	}
	m.check(t, s)
}

func testStalePrev(t *testing.T, open func(t *testing.T) store.Store) {
	s, m := genesis(t, open)
	m.grow(t, s, "stale", 10, 20)
	ctx := context.Background()
	older := m.checkpoints[1] // size 10

	tests := []struct {
		name string
		prev store.Checkpoint
	}{
		{"older checkpoint", older},
		{"genesis", m.checkpoints[0]},
		{"right size, wrong root", store.Checkpoint{Size: m.size(), Root: older.Root, Note: m.latest().Note}},
		{"right size, root of another log", newCheckpoint(m.size(), "a fork")},
		{"checkpoint ahead of the store", newCheckpoint(m.size()+5, "stale")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The batch is well formed for its Prev: the entries start at
			// Prev.Size and the checkpoint counts them.
			other := newModel()
			other.entries = make([]store.Entry, tt.prev.Size)
			other.checkpoints = []store.Checkpoint{tt.prev}
			b := other.batch(7, "stale writer")
			wantErr(t, fmt.Sprintf("Append(Prev size %d)", tt.prev.Size), s.Append(ctx, b), store.ErrConflict)
			m.checkNotWritten(t, s, b)
		})
	}
	t.Run("nil", func(t *testing.T) {
		b := newModel().batch(4, "stale writer")
		wantErr(t, "Append(Prev nil)", s.Append(ctx, b), store.ErrConflict)
		m.checkNotWritten(t, s, b)
	})

	// The store still takes the right batch.
	m.grow(t, s, "stale", 3)
	m.check(t, s)
}

// testPrevNoteIgnored checks that the compare-and-swap is on size and root
// only: Prev may carry another note (for example more cosignatures).
func testPrevNoteIgnored(t *testing.T, open func(t *testing.T) store.Store) {
	s, m := genesis(t, open)
	m.grow(t, s, "note", 5)
	b := m.batch(5, "note")
	b.Prev.Note = append(b.Prev.Note, "— witness.example AAAA\n"...)
	m.mustAppend(t, s, b)
	m.check(t, s)
}

// testResign checks a batch without entries whose checkpoint has the size
// and root of Prev: it replaces the note (the log re-signed the same tree).
// A different root for the same size is a fork and is refused.
func testResign(t *testing.T, open func(t *testing.T) store.Store) {
	s, m := genesis(t, open)
	m.grow(t, s, "resign", 5)
	ctx := context.Background()

	b := m.batch(0, "resign")
	b.Checkpoint.Root = b.Prev.Root
	b.Checkpoint.Note = append(slices.Clone(b.Prev.Note), "— witness.example BBBB\n"...)
	m.mustAppend(t, s, b)
	m.check(t, s)

	b = m.batch(0, "fork")
	if b.Checkpoint.Root == b.Prev.Root {
		t.Fatal("test bug: the fork has the same root")
	}
	wantErr(t, "Append(same size, other root)", s.Append(ctx, b), store.ErrConflict)
	m.checkNotWritten(t, s, b)

	m.grow(t, s, "resign", 3)
	m.check(t, s)
}

// cosign returns the batch that stores the note of c with line appended
// (c's size and root, no entries), extending prev.
func cosign(prev, c store.Checkpoint, line string) store.Batch {
	c.Note = append(slices.Clone(c.Note), line...)
	return store.Batch{Prev: &prev, Checkpoint: c}
}

// testCosignedNote checks the write-back of a cosigned note (what the log
// does once witnesses cosigned its newest checkpoint): a note that extends
// the stored one replaces it, with nothing else changed; a note that would
// drop or change a stored signature line, and a note for a checkpoint that
// is no longer the newest, are refused with ErrConflict and change nothing.
// Storing a cosigned note can therefore never roll anything back.
func testCosignedNote(t *testing.T, open func(t *testing.T) store.Store) {
	s, m := genesis(t, open)
	m.grow(t, s, "cosign", 5)
	ctx := context.Background()
	plain := *m.latest()

	a := cosign(plain, plain, "— witness-a.example AAAA\n")
	m.mustAppend(t, s, a)
	m.check(t, s)

	// Storing the same note again changes nothing.
	m.mustAppend(t, s, cosign(plain, a.Checkpoint, ""))
	m.check(t, s)

	for _, tc := range []struct {
		name string
		b    store.Batch
	}{
		{"the log-signed note again (drops the cosignature)", cosign(plain, plain, "")},
		{"another cosignature instead of the stored one", cosign(plain, plain, "— witness-a.example ZZZZ\n")},
		{"a changed log signature", func() store.Batch {
			b := cosign(plain, a.Checkpoint, "— witness-b.example BBBB\n")
			b.Checkpoint.Note[len(b.Checkpoint.Note)-len("— witness-b.example BBBB\n")-2] ^= 1
			return b
		}()},
	} {
		wantErr(t, "Append("+tc.name+")", s.Append(ctx, tc.b), store.ErrConflict)
		m.check(t, s)
	}

	// A second witness's cosignature is added after the first.
	ab := cosign(plain, a.Checkpoint, "— witness-b.example BBBB\n")
	m.mustAppend(t, s, ab)
	m.check(t, s)

	// The log moves on (Prev carries the cosigned note; the swap is on size
	// and root): the older checkpoint's note can no longer change.
	older := *m.latest()
	m.grow(t, s, "cosign", 3)
	late := cosign(older, older, "— witness-c.example CCCC\n")
	wantErr(t, "Append(cosigned note of an older checkpoint)", s.Append(ctx, late), store.ErrConflict)
	m.check(t, s)

	// The newest checkpoint's note can.
	m.mustAppend(t, s, cosign(*m.latest(), *m.latest(), "— witness-a.example DDDD\n"))
	m.check(t, s)
}

func testAtomicity(t *testing.T, open func(t *testing.T) store.Store) {
	s, m := genesis(t, open)
	m.grow(t, s, "atomic", 300, 10)
	ctx := context.Background()

	// Each case spoils one part of a good batch of 600 entries (more than
	// one INSERT in a backend that chunks them), late in the batch, so a
	// backend that writes as it goes has written most of it.
	tests := []struct {
		name  string
		spoil func(b *store.Batch)
		want  error
	}{
		{"identity of an entry in the log", func(b *store.Batch) {
			b.Entries[550].Identity = m.entries[7].Identity
		}, store.ErrConflict},
		{"identity of the latest entry in the log", func(b *store.Batch) {
			b.Entries[599].Identity = m.entries[len(m.entries)-1].Identity
		}, store.ErrConflict},
		{"identity twice in the batch", func(b *store.Batch) {
			b.Entries[590].Identity = b.Entries[3].Identity
		}, store.ErrConflict},
		{"index gap", func(b *store.Batch) {
			for i := 500; i < len(b.Entries); i++ {
				b.Entries[i].Index++
			}
			b.Checkpoint = newCheckpoint(b.Checkpoint.Size+1, "atomic")
		}, store.ErrConflict},
		{"index repeated", func(b *store.Batch) {
			b.Entries[500].Index = b.Entries[499].Index
		}, store.ErrConflict},
		{"index of an entry in the log", func(b *store.Batch) {
			b.Entries[599].Index = 5
		}, store.ErrConflict},
		{"checkpoint size too large", func(b *store.Batch) {
			b.Checkpoint = newCheckpoint(b.Checkpoint.Size+1, "atomic")
		}, store.ErrConflict},
		{"checkpoint size too small", func(b *store.Batch) {
			b.Checkpoint = newCheckpoint(b.Checkpoint.Size-1, "atomic")
		}, store.ErrConflict},
		{"last tile changes a stored hash", func(b *store.Batch) {
			b.Tiles = append(b.Tiles, store.Tile{Level: 0, Index: 0, Data: spoilByte(m.tiles[tileKey{0, 0}], 100)})
		}, store.ErrTileMismatch},
		{"first tile shorter than stored", func(b *store.Batch) {
			stored := m.tiles[tileKey{0, 1}]
			b.Tiles[0] = store.Tile{Level: 0, Index: 1, Data: stored[:len(stored)-store.HashSize]}
		}, store.ErrTileMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := m.batch(600, "atomic")
			tt.spoil(&b)
			wantErr(t, "Append(spoilt batch)", s.Append(ctx, b), tt.want)
			m.checkNotWritten(t, s, b)
		})
	}

	// The good batch still goes in.
	m.grow(t, s, "atomic", 600)
	m.check(t, s)
}

// spoilByte returns a copy of data with byte i changed.
func spoilByte(data []byte, i int) []byte {
	data = slices.Clone(data)
	data[i] ^= 0x01
	return data
}

func testCanceledContext(t *testing.T, open func(t *testing.T) store.Store) {
	s, m := genesis(t, open)
	m.grow(t, s, "ctx", 10)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := m.batch(10, "ctx")
	if err := s.Append(ctx, b); err == nil {
		t.Fatalf("Append(canceled context) = nil, want an error")
	}
	m.checkNotWritten(t, s, b)
	m.grow(t, s, "ctx", 10)
	m.check(t, s)
}

func testTiles(t *testing.T, open func(t *testing.T) store.Store) {
	s, m := genesis(t, open)
	ctx := context.Background()

	// Tile 0/0 grows from 5 to 10 hashes, tile 0/1 appears.
	m.grow(t, s, "tiles", 5, 5, 290)
	m.check(t, s)

	tests := []struct {
		name  string
		tiles func(b store.Batch) []store.Tile
		want  error // nil: accepted
	}{
		{"identical full tile again", func(b store.Batch) []store.Tile {
			return append(b.Tiles, store.Tile{Level: 0, Index: 0, Data: m.tiles[tileKey{0, 0}]})
		}, nil},
		{"identical partial tile, then its extension", func(b store.Batch) []store.Tile {
			return append([]store.Tile{{Level: 0, Index: 1, Data: m.tiles[tileKey{0, 1}]}}, b.Tiles...)
		}, nil},
		{"changed first byte", func(b store.Batch) []store.Tile {
			return append(b.Tiles, store.Tile{Level: 0, Index: 0, Data: spoilByte(m.tiles[tileKey{0, 0}], 0)})
		}, store.ErrTileMismatch},
		{"changed last byte of the partial tile", func(b store.Batch) []store.Tile {
			old := m.tiles[tileKey{0, 1}]
			b.Tiles[0].Data = spoilByte(b.Tiles[0].Data, len(old)-1)
			return b.Tiles
		}, store.ErrTileMismatch},
		{"shorter partial tile", func(b store.Batch) []store.Tile {
			old := m.tiles[tileKey{0, 1}]
			return append(b.Tiles, store.Tile{Level: 0, Index: 1, Data: old[:len(old)-store.HashSize]})
		}, store.ErrTileMismatch},
		{"shorter full tile", func(b store.Batch) []store.Tile {
			return append(b.Tiles, store.Tile{Level: 0, Index: 0, Data: m.tiles[tileKey{0, 0}][:store.HashSize]})
		}, store.ErrTileMismatch},
		{"partial tile extended by other hashes", func(b store.Batch) []store.Tile {
			old := m.tiles[tileKey{0, 1}]
			data := slices.Concat(old[:len(old)-store.HashSize], bytes.Repeat([]byte{0xaa}, 2*store.HashSize))
			return append(b.Tiles, store.Tile{Level: 0, Index: 1, Data: data})
		}, store.ErrTileMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := m.batch(3, "tiles")
			b.Tiles = tt.tiles(b)
			err := s.Append(ctx, b)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Append() error: %v", err)
				}
				m.apply(b)
				m.check(t, s)
				return
			}
			wantErr(t, "Append()", err, tt.want)
			m.checkNotWritten(t, s, b)
		})
	}

	// At size 65536 level 1 fills its first tile and level 2 appears.
	m.grow(t, s, "tiles", 65536-int(m.size()))
	m.check(t, s)
	if got, err := s.Tile(ctx, 1, 0); err != nil || len(got) != 256*store.HashSize {
		t.Errorf("Tile(1, 0) at size 65536 = %d bytes, %v, want 256 hashes", len(got), err)
	}
	if got, err := s.Tile(ctx, 2, 0); err != nil || len(got) != store.HashSize {
		t.Errorf("Tile(2, 0) at size 65536 = %d bytes, %v, want 1 hash", len(got), err)
	}
	if _, err := s.Tile(ctx, 3, 0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Tile(3, 0) at size 65536 error = %v, want ErrNotFound", err)
	}
}

// testEachTile checks store.TileLister, which every backend implements:
// the listing is every stored tile with its data length, in level then
// index order, and an error of the callback stops it and comes back as is.
func testEachTile(t *testing.T, open func(t *testing.T) store.Store) {
	s, m := genesis(t, open)
	ctx := context.Background()
	tl, ok := s.(store.TileLister)
	if !ok {
		t.Fatalf("%T does not implement store.TileLister", s)
	}
	list := func() []store.TileInfo {
		t.Helper()
		var got []store.TileInfo
		if err := tl.EachTile(ctx, func(ti store.TileInfo) error {
			got = append(got, ti)
			return nil
		}); err != nil {
			t.Fatalf("EachTile() error: %v", err)
		}
		return got
	}
	if got := list(); len(got) != 0 {
		t.Errorf("EachTile() of a log of size 0 = %v, want nothing", got)
	}
	for _, n := range []int{5, 295, 300} {
		m.grow(t, s, "eachtile", n)
		var want []store.TileInfo
		for k, d := range m.tiles {
			want = append(want, store.TileInfo{Level: int64(k.level), Index: int64(k.index), Length: int64(len(d))})
		}
		slices.SortFunc(want, func(a, b store.TileInfo) int {
			if a.Level != b.Level {
				return int(a.Level - b.Level)
			}
			return int(a.Index - b.Index)
		})
		if diff := cmp.Diff(want, list()); diff != "" {
			t.Errorf("EachTile() at size %d (-want +got):\n%s", m.size(), diff)
		}
	}
	stop := errors.New("stop here")
	calls := 0
	err := tl.EachTile(ctx, func(store.TileInfo) error {
		calls++
		return stop
	})
	if err != stop || calls != 1 {
		t.Errorf("EachTile() with a callback failing at once = %v after %d calls, want the callback's error as is after 1", err, calls)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := tl.EachTile(cctx, func(store.TileInfo) error { return nil }); err == nil {
		t.Error("EachTile() with a canceled context succeeded")
	}
}

func testNotFound(t *testing.T, open func(t *testing.T) store.Store) {
	s, m := genesis(t, open)
	m.grow(t, s, "notfound", 300)
	ctx := context.Background()
	for _, c := range []struct{ level, index uint64 }{{0, 2}, {1, 1}, {2, 0}, {0, math.MaxUint64}, {0, math.MaxInt64 + 1}, {255, 0}} {
		_, err := s.Tile(ctx, uint8(c.level), c.index)
		wantErr(t, fmt.Sprintf("Tile(%d, %d) error", c.level, c.index), err, store.ErrNotFound)
	}
	for _, size := range []uint64{1, 299, 301, math.MaxInt64 + 1, math.MaxUint64} {
		_, err := s.Checkpoint(ctx, size)
		wantErr(t, fmt.Sprintf("Checkpoint(%d) error", size), err, store.ErrNotFound)
	}
	for _, h := range []store.Hash{{}, m.entries[3].Identity, newEntry(300, "notfound").LeafHash} {
		_, err := s.ByLeafHash(ctx, h)
		wantErr(t, fmt.Sprintf("ByLeafHash(%x) error", h), err, store.ErrNotFound)
	}
}

func testEntries(t *testing.T, open func(t *testing.T) store.Store) {
	s, m := genesis(t, open)
	m.grow(t, s, "entries", 100, 200)
	ctx := context.Background()
	const n = 300
	tests := []struct {
		start, end uint64
		want       []store.Entry
	}{
		{0, 0, nil},
		{5, 5, nil},
		{10, 5, nil},
		{0, 1, m.entries[:1]},
		{0, n, m.entries},
		{99, 101, m.entries[99:101]},
		{n - 3, n + 10, m.entries[n-3:]},
		{n - 1, n, m.entries[n-1:]},
		{n, n + 5, nil},
		{n + 5, n + 10, nil},
		{0, math.MaxUint64, m.entries},
		{150, math.MaxInt64 + 1, m.entries[150:]},
		{math.MaxInt64, math.MaxUint64, nil},
		{math.MaxUint64 - 1, math.MaxUint64, nil},
	}
	for _, tt := range tests {
		got, err := s.Entries(ctx, tt.start, tt.end)
		if err != nil {
			t.Errorf("Entries(%d, %d) error: %v", tt.start, tt.end, err)
			continue
		}
		if diff := diffEntries(tt.want, got); diff != "" {
			t.Errorf("Entries(%d, %d) mismatch: %s", tt.start, tt.end, diff)
		}
	}

	// What comes out is a copy: changing it does not change the store.
	got, err := s.Entries(ctx, 0, 1)
	if err != nil || len(got) != 1 {
		t.Fatalf("Entries(0, 1) = %v, %v", got, err)
	}
	got[0].Data[0] ^= 0xff
	m.check(t, s)

	// Awkward data goes in and comes out byte for byte.
	awkward := [][]byte{
		{},
		{0x00},
		bytes.Repeat([]byte{0x00}, 100),
		{0xff, 0xfe, 0xfd},
		[]byte("line\r\nline\n\x00tail"),
		bytes.Repeat([]byte("0123456789abcdef"), 4096), // 64 KiB
	}
	b := m.batch(len(awkward), "entries")
	for i, data := range awkward {
		b.Entries[i] = makeEntry(b.Entries[i].Index, "awkward", data)
	}
	m.mustAppend(t, s, b)
	m.check(t, s)
}

func testByIdentity(t *testing.T, open func(t *testing.T) store.Store) {
	s, m := genesis(t, open)
	m.grow(t, s, "byid", 1500, 1100)
	ctx := context.Background()

	// More identities than one query of a chunking backend, present and
	// absent, with repeats.
	var ids []store.Hash
	want := make(map[store.Hash]uint64)
	for i, e := range m.entries {
		if i%3 == 0 {
			continue
		}
		ids = append(ids, e.Identity, newEntry(e.Index, "absent").Identity)
		want[e.Identity] = e.Index
		if i%100 == 1 {
			ids = append(ids, e.Identity)
		}
	}
	got, err := s.ByIdentity(ctx, ids)
	if err != nil {
		t.Fatalf("ByIdentity(%d identities) error: %v", len(ids), err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ByIdentity(%d identities) mismatch (-want +got):\n%s", len(ids), diff)
	}

	for _, ids := range [][]store.Hash{nil, {}, {{}}, {newEntry(0, "absent").Identity}} {
		if got, err := s.ByIdentity(ctx, ids); err != nil || len(got) != 0 {
			t.Errorf("ByIdentity(%x) = %v, %v, want empty", ids, got, err)
		}
	}
	e := m.entries[len(m.entries)-1]
	if got, err := s.ByIdentity(ctx, []store.Hash{e.Identity}); err != nil || !cmp.Equal(got, map[store.Hash]uint64{e.Identity: e.Index}) {
		t.Errorf("ByIdentity(identity of the last entry) = %v, %v, want {%x: %d}", got, err, e.Identity, e.Index)
	}
	// The leaf hash is not an identity.
	if got, err := s.ByIdentity(ctx, []store.Hash{e.LeafHash}); err != nil || len(got) != 0 {
		t.Errorf("ByIdentity(leaf hash of the last entry) = %v, %v, want empty", got, err)
	}
}

func testByLeafHash(t *testing.T, open func(t *testing.T) store.Store) {
	s, m := genesis(t, open)
	m.grow(t, s, "byleaf", 10)
	ctx := context.Background()

	// Entries 12, 13 and 21 repeat the data of entry 4 (with other
	// identities): ByLeafHash returns the first, 4.
	b := m.batch(20, "byleaf")
	dup := func(i uint64, of store.Entry) store.Entry {
		e := makeEntry(i, of.Sample, of.Data)
		e.Identity = newEntry(i, "another identity").Identity
		return e
	}
	b.Entries[2] = dup(12, m.entries[4])
	b.Entries[3] = dup(13, m.entries[4])
	b.Entries[11] = dup(21, m.entries[4])
	m.mustAppend(t, s, b)
	m.check(t, s)
	for _, i := range []int{4, 12, 13, 21} {
		if got, err := s.ByLeafHash(ctx, m.entries[i].LeafHash); err != nil || got != 4 {
			t.Errorf("ByLeafHash(leaf hash of entry %d) = %d, %v, want 4", i, got, err)
		}
	}
	// The identity is not a leaf hash.
	_, err := s.ByLeafHash(ctx, m.entries[5].Identity)
	wantErr(t, "ByLeafHash(identity of entry 5) error", err, store.ErrNotFound)
}

func testSample(t *testing.T, open func(t *testing.T) store.Store) {
	s, m := genesis(t, open)
	m.grow(t, s, "sample", 7, 300, 1, 50)
	ctx := context.Background()
	for _, sample := range samples {
		got, err := s.Sample(ctx, sample)
		if err != nil {
			t.Fatalf("Sample(%q) error: %v", sample, err)
		}
		var want []uint64
		for _, e := range m.entries {
			if e.Sample == sample {
				want = append(want, e.Index)
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Sample(%q) mismatch (-want +got):\n%s", sample, diff)
		}
		if !slices.IsSorted(got) {
			t.Errorf("Sample(%q) = %v, not in increasing order", sample, got)
		}
	}
	for _, sample := range []string{"", "S-000", "s-0001", "S-0001 ", "unknown"} {
		if got, err := s.Sample(ctx, sample); err != nil || len(got) != 0 {
			t.Errorf("Sample(%q) = %v, %v, want empty", sample, got, err)
		}
	}
}

func testCheckpoint(t *testing.T, open func(t *testing.T) store.Store) {
	s, m := genesis(t, open)
	m.grow(t, s, "checkpoint", 1, 2, 3, 256, 1)
	ctx := context.Background()
	for _, want := range m.checkpoints {
		got, err := s.Checkpoint(ctx, want.Size)
		if err != nil {
			t.Errorf("Checkpoint(%d) error: %v", want.Size, err)
			continue
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Checkpoint(%d) mismatch (-want +got):\n%s", want.Size, diff)
		}
	}
	got, err := s.Latest(ctx)
	if err != nil || got.Size != 263 {
		t.Errorf("Latest() = size %d, %v, want size 263", got.Size, err)
	}
	// What comes out is a copy.
	got.Note[0] ^= 0xff
	m.check(t, s)

	// Checkpoints lists them all, in order, in pages.
	var listed []store.Checkpoint
	for from := uint64(0); ; {
		page, err := s.Checkpoints(ctx, from, 2)
		if err != nil {
			t.Fatalf("Checkpoints(%d, 2) error: %v", from, err)
		}
		if len(page) > 2 {
			t.Fatalf("Checkpoints(%d, 2) returned %d checkpoints", from, len(page))
		}
		if len(page) == 0 {
			break
		}
		listed = append(listed, page...)
		from = page[len(page)-1].Size + 1
	}
	if diff := cmp.Diff(m.checkpoints, listed); diff != "" {
		t.Errorf("Checkpoints listing mismatch (-want +got):\n%s", diff)
	}
	if page, err := s.Checkpoints(ctx, 264, 10); err != nil || len(page) != 0 {
		t.Errorf("Checkpoints(264, 10) = %d checkpoints, %v; want none", len(page), err)
	}
	if page, err := s.Checkpoints(ctx, 4, 1); err != nil || len(page) != 1 || page[0].Size != 6 {
		t.Errorf("Checkpoints(4, 1) = %v, %v; want the size-6 checkpoint", page, err)
	}
}

// testConcurrentAppend races writers that all extend the same checkpoint:
// exactly one wins each round, the others get ErrConflict and leave no trace.
func testConcurrentAppend(t *testing.T, open func(t *testing.T) store.Store) {
	s, m := genesis(t, open)
	ctx := context.Background()
	const writers = 8
	for round := range 5 {
		batches := make([]store.Batch, writers)
		for w := range batches {
			batches[w] = m.batch(100+w, fmt.Sprintf("round %d writer %d", round, w))
		}
		errs := make([]error, writers)
		var start, done sync.WaitGroup
		start.Add(1)
		for w := range batches {
			done.Go(func() {
				start.Wait()
				errs[w] = s.Append(ctx, batches[w])
			})
		}
		start.Done()
		done.Wait()

		winner := -1
		for w, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("round %d: writers %d and %d both appended to size %d", round, winner, w, m.size())
			case err == nil:
				winner = w
			case !errors.Is(err, store.ErrConflict):
				t.Errorf("round %d: writer %d: Append() = %v, want nil or ErrConflict", round, w, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no writer appended: %v", round, errs)
		}
		m.apply(batches[winner])
		for w := range batches {
			if w != winner {
				m.checkNotWritten(t, s, batches[w])
			}
		}
	}
}

// testReadsSeeWholeBatches reads while a writer appends: every checkpoint a
// reader sees has all its entries and tiles.
func testReadsSeeWholeBatches(t *testing.T, open func(t *testing.T) store.Store) {
	s, m := genesis(t, open)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var readers sync.WaitGroup
	for r := range 3 {
		readers.Go(func() {
			for ctx.Err() == nil {
				c, err := s.Latest(ctx)
				if err != nil {
					if ctx.Err() == nil {
						t.Errorf("reader %d: Latest() error: %v", r, err)
					}
					return
				}
				es, err := s.Entries(ctx, 0, c.Size+300)
				if err != nil {
					if ctx.Err() == nil {
						t.Errorf("reader %d: Entries(0, %d) error: %v", r, c.Size+300, err)
					}
					return
				}
				if uint64(len(es)) < c.Size {
					t.Errorf("reader %d: Entries(0, %d) after Latest() = size %d: %d entries, want at least %d", r, c.Size+300, c.Size, len(es), c.Size)
					return
				}
				if c.Size > 0 {
					if _, err := s.Tile(ctx, 0, (c.Size-1)/256); err != nil && ctx.Err() == nil {
						t.Errorf("reader %d: Tile(0, %d) at size %d error: %v", r, (c.Size-1)/256, c.Size, err)
						return
					}
				}
			}
		})
	}
	for range 30 {
		m.mustAppend(t, s, m.batch(97, "reads"))
	}
	cancel()
	readers.Wait()
	m.check(t, s)
}

// testReopen checks that closing and reopening keeps everything, and that
// the reopened store goes on appending.
func testReopen(t *testing.T, open func(t *testing.T) store.Store, reopen func(t *testing.T, old store.Store) store.Store) {
	s, m := genesis(t, open)
	m.grow(t, s, "reopen", 300, 10)
	b := m.batch(0, "reopen")
	b.Checkpoint.Root = b.Prev.Root
	m.mustAppend(t, s, b) // a re-signed checkpoint
	// and a cosigned note, which must survive reopening.
	m.mustAppend(t, s, cosign(*m.latest(), *m.latest(), "— witness.example EEEE\n"))

	s = reopen(t, s)
	m.check(t, s)
	m.grow(t, s, "reopen", 5)

	s = reopen(t, s)
	m.check(t, s)
	// The reopened store still refuses a stale batch.
	stale := m.batch(1, "stale")
	stale.Prev = &m.checkpoints[1]
	stale.Entries[0].Index = m.checkpoints[1].Size
	stale.Checkpoint.Size = m.checkpoints[1].Size + 1
	wantErr(t, "Append(stale Prev) after reopening", s.Append(context.Background(), stale), store.ErrConflict)
	m.check(t, s)

	if err := s.Close(); err != nil {
		t.Errorf("Close() error: %v", err)
	}
}
