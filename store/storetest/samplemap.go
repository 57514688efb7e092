package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/custodylog/custody/sampleindex"
	"github.com/custodylog/custody/store"
)

// RunSampleMap tests a backend's store.SampleMap (open and reopen as for
// Run, which does not call it: a backend's tests call both). It checks
// that a new log has an empty map of size 0; that a map built with
// sampleindex and flushed through WriteSampleMap reopens, after the store
// is reopened, with the same root at the same size; that writes are a
// compare-and-swap on the map size, never beyond the log's latest
// checkpoint, and write nothing when refused; that reads at a map size
// older than a tile's fail with store.ErrConflict; that thousands of tiles
// go through in one write; that EachSampleTile lists exactly the stored
// tiles; that ResetSampleMap empties the map; and that of two writers
// flushing from the same size exactly one wins.
func RunSampleMap(t *testing.T, open func(t *testing.T) store.Store, reopen func(t *testing.T, old store.Store) store.Store) {
	ctx := context.Background()
	s, m := genesis(t, open)
	sm, ok := s.(store.SampleMap)
	if !ok {
		t.Fatalf("%T does not implement store.SampleMap", s)
	}
	wantSize := func(sm store.SampleMap, want uint64) {
		t.Helper()
		if got, err := sm.SampleMapSize(ctx); err != nil || got != want {
			t.Fatalf("SampleMapSize() = %d, %v; want %d", got, err, want)
		}
	}
	wantSize(sm, 0)
	if got, err := sm.ReadSampleTiles(ctx, []sampleindex.TileID{{}}, 0); err != nil || len(got) != 0 {
		t.Fatalf("ReadSampleTiles(root tile) of a new log = %v, %v; want none", got, err)
	}

	// A map of the log's entries, flushed through the store.
	m.grow(t, s, "map", 5, 7)
	changes := func(from, to uint64) []sampleindex.Change {
		var cs []sampleindex.Change
		for _, e := range m.entries[from:to] {
			cs = append(cs, sampleindex.Change{Key: sampleindex.KeyOf(e.Sample), Index: e.Index, LeafHash: e.LeafHash})
		}
		return cs
	}
	mp := sampleindex.Open(store.SampleTiles(sm, 0), 0, nil)
	root, err := mp.Update(ctx, changes(0, 12))
	if err != nil {
		t.Fatalf("Update() error: %v", err)
	}
	// Refused writes: beyond the log, wrong prev.
	if err := mp.Flush(ctx, func(ctx context.Context, size uint64, tiles []sampleindex.Tile) error {
		if err := sm.WriteSampleMap(ctx, 0, 13, tiles); !errors.Is(err, store.ErrConflict) {
			t.Errorf("WriteSampleMap(size 13 beyond the log of 12) = %v, want ErrConflict", err)
		}
		if err := sm.WriteSampleMap(ctx, 3, size, tiles); !errors.Is(err, store.ErrConflict) {
			t.Errorf("WriteSampleMap(prev 3, stored 0) = %v, want ErrConflict", err)
		}
		return errors.New("refused")
	}); err == nil {
		t.Fatal("Flush(refusing write) = nil error")
	}
	wantSize(sm, 0)
	countTiles := func(sm store.SampleMap) map[string]store.SampleTile {
		t.Helper()
		got := map[string]store.SampleTile{}
		var last []byte
		if err := sm.EachSampleTile(ctx, func(st store.SampleTile) error {
			if last != nil && bytes.Compare(last, st.Key) >= 0 {
				t.Errorf("EachSampleTile: key %x after %x, want increasing order", st.Key, last)
			}
			last = slices.Clone(st.Key)
			st.Key, st.Data = slices.Clone(st.Key), slices.Clone(st.Data)
			got[string(st.Key)] = st
			return nil
		}); err != nil {
			t.Fatalf("EachSampleTile() error: %v", err)
		}
		return got
	}
	if n := len(countTiles(sm)); n != 0 {
		t.Fatalf("a refused write stored %d tiles", n)
	}

	dirty := mp.Dirty()
	if err := mp.Flush(ctx, func(ctx context.Context, size uint64, tiles []sampleindex.Tile) error {
		return sm.WriteSampleMap(ctx, 0, size, tiles)
	}); err != nil {
		t.Fatalf("Flush() error: %v", err)
	}
	wantSize(sm, 12)
	listed := countTiles(sm)
	if len(listed) != len(dirty) {
		t.Errorf("EachSampleTile listed %d tiles, flushed %d", len(listed), len(dirty))
	}
	for _, d := range dirty {
		st, ok := listed[string(d.ID.Key())]
		if !ok || st.Size != 12 || !bytes.Equal(st.Data, d.Data) {
			t.Errorf("EachSampleTile: tile %s = %+v, want size 12 and the flushed data", d.ID, st)
		}
		if _, err := sampleindex.ParseTileKey(st.Key); err != nil {
			t.Errorf("EachSampleTile: key %x: %v", st.Key, err)
		}
	}

	// The stored map reopens (after the store does) with the same root.
	s = reopen(t, s)
	sm = s.(store.SampleMap)
	wantSize(sm, 12)
	mp = sampleindex.Open(store.SampleTiles(sm, 12), 12, nil)
	if got, err := mp.Root(ctx); err != nil || got != root {
		t.Fatalf("reopened map Root() = %x, %v; want %x", got, err, root)
	}

	// A second flush from 12 replaces the tiles it changed.
	m.grow(t, s, "more", 4)
	root, err = mp.Update(ctx, changes(12, 16))
	if err != nil {
		t.Fatalf("Update() error: %v", err)
	}
	if err := mp.Flush(ctx, func(ctx context.Context, size uint64, tiles []sampleindex.Tile) error {
		return sm.WriteSampleMap(ctx, 12, size, tiles)
	}); err != nil {
		t.Fatalf("Flush() from 12 error: %v", err)
	}
	wantSize(sm, 16)
	if got, err := sampleindex.Open(store.SampleTiles(sm, 16), 16, nil).Root(ctx); err != nil || got != root {
		t.Errorf("map reopened at 16: Root() = %x, %v; want %x", got, err, root)
	}
	// A reader of the map of size 12 cannot read the root tile of 16.
	if _, err := sm.ReadSampleTiles(ctx, []sampleindex.TileID{{}}, 12); !errors.Is(err, store.ErrConflict) {
		t.Errorf("ReadSampleTiles(root, at most 12) after a flush at 16 = %v, want ErrConflict", err)
	}
	if got, err := sm.ReadSampleTiles(ctx, []sampleindex.TileID{{}}, store.AnySampleMapSize); err != nil || len(got) != 1 {
		t.Errorf("ReadSampleTiles(root, any size) = %d tiles, %v; want 1", len(got), err)
	}
	// Going back is refused.
	if err := sm.WriteSampleMap(ctx, 16, 15, nil); !errors.Is(err, store.ErrConflict) {
		t.Errorf("WriteSampleMap(16 -> 15) = %v, want ErrConflict", err)
	}

	// Thousands of tiles in one write (the backends cut statements).
	big := sampleindex.Open(sampleindex.NewMemTiles(), 0, nil)
	var cs []sampleindex.Change
	for i := range uint64(20000) {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], i)
		cs = append(cs, sampleindex.Change{Key: sha256.Sum256(b[:]), Index: i, LeafHash: sha256.Sum256(b[1:])})
	}
	if _, err := big.Update(ctx, cs); err != nil {
		t.Fatal(err)
	}
	bigTiles := big.Dirty()
	if len(bigTiles) < 1200 {
		t.Fatalf("the big map has %d tiles, want more than 1200", len(bigTiles))
	}
	if err := sm.WriteSampleMap(ctx, 16, 16, bigTiles); err != nil {
		t.Fatalf("WriteSampleMap(%d tiles) error: %v", len(bigTiles), err)
	}
	ids := make([]sampleindex.TileID, len(bigTiles))
	for i, bt := range bigTiles {
		ids[i] = bt.ID
	}
	got, err := sm.ReadSampleTiles(ctx, ids, 16)
	if err != nil || len(got) != len(ids) {
		t.Fatalf("ReadSampleTiles(%d tiles) = %d, %v", len(ids), len(got), err)
	}
	for _, bt := range bigTiles {
		if !bytes.Equal(got[bt.ID], bt.Data) {
			t.Fatalf("ReadSampleTiles: tile %s differs from the one written", bt.ID)
		}
	}

	// Reset empties the map.
	if err := sm.ResetSampleMap(ctx); err != nil {
		t.Fatalf("ResetSampleMap() error: %v", err)
	}
	wantSize(sm, 0)
	if n := len(countTiles(sm)); n != 0 {
		t.Errorf("after ResetSampleMap, %d tiles are listed", n)
	}

	// Two writers from the same size: exactly one wins; appends go on.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() {
			errs[i] = sm.WriteSampleMap(ctx, 0, 16, bigTiles[i*10:i*10+10])
		})
	}
	wg.Go(func() { m.grow(t, s, "during", 3) })
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Errorf("two WriteSampleMap from 0: errors %v and %v, want exactly one", errs[0], errs[1])
	}
	for _, err := range errs {
		if err != nil && !errors.Is(err, store.ErrConflict) {
			t.Errorf("losing WriteSampleMap error = %v, want ErrConflict", err)
		}
	}
	wantSize(sm, 16)
	if n := len(countTiles(sm)); n != 10 {
		t.Errorf("after one write of 10 tiles, %d are listed", n)
	}
	m.check(t, s)
}
