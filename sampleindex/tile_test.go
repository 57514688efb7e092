package sampleindex

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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
