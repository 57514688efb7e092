package sampleindex

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestTileKey checks TileID.Key and ParseTileKey: round trips, and
// rejection of bad depths, lengths and stray prefix bits.
func TestTileKey(t *testing.T) {
	k := KeyOf("x")
	for d := 0; d <= MaxTileDepth; d += Stride {
		id := tileIDOf(&k, d)
		got, err := ParseTileKey(id.Key())
		if err != nil || got != id {
			t.Fatalf("depth %d: %v %v", d, got, err)
		}
		if d > 0 && id.parent() != tileIDOf(&k, d-Stride) {
			t.Fatalf("depth %d: parent %s, want %s", d, id.parent(), tileIDOf(&k, d-Stride))
		}
		if d > 0 && tileIDOf(&k, d-Stride).child(slotOf(&k, d-Stride)) != id {
			t.Fatal("child mismatch")
		}
	}
	for _, bad := range [][]byte{nil, {1}, {4}, {4, 0x10, 0}, {4, 0x18}, {0, 0}, {0xff}, {253, 1}} {
		if _, err := ParseTileKey(bad); !errors.Is(err, ErrMalformedTile) {
			t.Errorf("ParseTileKey(%x) = %v, want ErrMalformedTile", bad, err)
		}
	}
}

// TestStoredTiles checks every tile a Map writes: it parses, re-encodes
// to the same bytes, obeys the existence rule, and the store holds about
// as many bytes per key as docs/sample-index.md says.
func TestStoredTiles(t *testing.T) {
	l := newTestLog()
	for i := range 3000 {
		l.append(fmt.Sprintf("k%d-%d", i%50, i%37))
	}
	store := NewMemTiles()
	m := Open(store, 0, nil)
	l.flushChanges(t, m)
	if err := m.Flush(context.Background(), store.WriteTiles); err != nil {
		t.Fatal(err)
	}
	if len(m.Dirty()) != 0 {
		t.Fatal("dirty tiles after Flush")
	}
	for id, data := range store.tiles {
		tl, err := decodeTile(id, data)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(tl.encode(), data) {
			t.Fatalf("tile %s does not re-encode to its bytes", id)
		}
		keys := 0
		for _, s := range tl.slots {
			if s.leaf != nil {
				keys++
			} else {
				keys += 2
			}
		}
		if id.Depth > 0 && keys < 2 {
			t.Fatalf("tile %s holds fewer than 2 keys", id)
		}
	}
}

// TestCheckTileRejects edits a valid tile in ways the parser must reject.
func TestCheckTileRejects(t *testing.T) {
	for _, s := range tileSeeds() {
		err := CheckTile(s.id, s.data)
		if valid := s.name[:5] == "valid"; valid != (err == nil) {
			t.Errorf("%s: CheckTile = %v", s.name, err)
		}
		if err != nil && !errors.Is(err, ErrMalformedTile) {
			t.Errorf("%s: error %v does not wrap ErrMalformedTile", s.name, err)
		}
	}
}

// TestKeptNodes checks the interior nodes the Map keeps in its parsed
// tiles, which an Update recomputes only above the changed slots: after
// every batch, each current kept node equals the node recomputed whole
// from the tile's slots, and so does each tile's root.
func TestKeptNodes(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 8))
	store := NewMemTiles()
	m := Open(store, 0, &Options{CacheTiles: 64, PinnedDepth: 4})
	var keys []Hash
	var index uint64
	kept := 0
	for b := range 60 {
		var cs []Change
		for range 1 + rng.IntN(200) {
			k := randHash(rng)
			if len(keys) > 0 && rng.IntN(3) == 0 {
				k = keys[rng.IntN(len(keys))]
			} else {
				keys = append(keys, k)
			}
			cs = append(cs, Change{Key: k, Index: index, LeafHash: randHash(rng)})
			index++
		}
		if _, err := m.Update(ctx, cs); err != nil {
			t.Fatal(err)
		}
		for id, tl := range m.tiles {
			n := 0
			if tl.stale != 0 {
				continue // loaded, not hashed yet
			}
			if want := tl.hashRange(0, SlotsPerTile, &n); tl.root != want {
				t.Fatalf("batch %d: tile %s root %x, whole rehash %x", b, id, tl.root, want)
			}
			if tl.nodes == nil {
				continue
			}
			kept++
			for w := SlotsPerTile; w >= 2; w /= 2 {
				for lo := 0; lo < SlotsPerTile; lo += w {
					if got, want := tl.nodeHash(lo, lo+w, &n), tl.hashRange(lo, lo+w, &n); got != want {
						t.Fatalf("batch %d: tile %s node [%d, %d) %x, whole rehash %x", b, id, lo, lo+w, got, want)
					}
				}
			}
		}
		if b%7 == 6 {
			if err := m.Flush(ctx, store.WriteTiles); err != nil {
				t.Fatal(err)
			}
		}
	}
	if kept == 0 {
		t.Fatal("no tile kept its interior nodes: the test checks nothing")
	}
}

// TestEvictDeepestFirst checks the cache bound and its policy: after a
// Flush the clean tiles kept are at most CacheTiles (beyond the pinned
// ones), and they are the shallowest: no kept tile is deeper than the
// depth at which the stored tiles up to that depth outnumber the cache.
func TestEvictDeepestFirst(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(9, 10))
	store := NewMemTiles()
	const cache = 40
	m := Open(store, 0, &Options{CacheTiles: cache, PinnedDepth: 4})
	var index uint64
	for b := range 20 {
		var cs []Change
		for range 150 {
			cs = append(cs, Change{Key: randHash(rng), Index: index, LeafHash: randHash(rng)})
			index++
		}
		if _, err := m.Update(ctx, cs); err != nil {
			t.Fatal(err)
		}
		if err := m.Flush(ctx, store.WriteTiles); err != nil {
			t.Fatal(err)
		}
		perDepth := map[uint8]int{}
		for id := range store.tiles {
			perDepth[id.Depth]++
		}
		limit, n := 0, 0
		for d := Stride; d <= MaxTileDepth; d += Stride {
			n += perDepth[uint8(d)]
			if limit = d; n > cache {
				break
			}
		}
		unpinned := 0
		for id, tl := range m.tiles {
			if tl.dirty {
				t.Fatalf("batch %d: tile %s dirty after Flush", b, id)
			}
			if id.Depth == 0 {
				continue
			}
			unpinned++
			if int(id.Depth) > limit {
				t.Fatalf("batch %d: tile %s kept, deeper than %d (the %d stored tiles down to that depth fill the cache of %d)", b, id, limit, n, cache)
			}
		}
		if unpinned > cache {
			t.Fatalf("batch %d: %d clean unpinned tiles kept, cache is %d", b, unpinned, cache)
		}
	}
}

// TestCompareTileIDs checks that compareTileIDs orders tile IDs exactly as
// their storage keys sort (the order Dirty and Flush hand tiles out in).
func TestCompareTileIDs(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	var ids []TileID
	for range 300 {
		k := randHash(rng)
		ids = append(ids, tileIDOf(&k, Stride*rng.IntN(MaxTileDepth/Stride+1)))
	}
	// Prefixes of one another and neighbours at a few depths.
	k := randHash(rng)
	for d := 0; d <= 16; d += Stride {
		ids = append(ids, tileIDOf(&k, d), tileIDOf(&k, d).child(0), tileIDOf(&k, d).child(SlotsPerTile-1))
	}
	for _, a := range ids {
		for _, b := range ids {
			if got, want := compareTileIDs(a, b), bytes.Compare(a.Key(), b.Key()); got != want {
				t.Fatalf("compareTileIDs(%s, %s) = %d, keys compare %d", a, b, got, want)
			}
		}
	}
}
