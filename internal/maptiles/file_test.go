package maptiles

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/custodylog/custody/sampleindex"
)

// TestIndexFile: tiles written survive reopening; a write cut short by a
// crash (records after the last commit) is dropped; compaction keeps every
// live tile and drops old versions.
func TestIndexFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tiles")
	f, err := CreateFile(path)
	if err != nil {
		t.Fatal(err)
	}
	deep := sampleindex.TileID{Depth: 64}
	deep.Prefix[0], deep.Prefix[7] = 0xab, 0xcd
	id := func(d uint8, b byte) sampleindex.TileID {
		x := sampleindex.TileID{Depth: d}
		x.Prefix[0] = b
		return x
	}
	ids := []sampleindex.TileID{{}, id(4, 0x10), id(8, 0x12), deep}
	write := func(size uint64, v byte) {
		var ts []sampleindex.Tile
		for i, x := range ids {
			ts = append(ts, sampleindex.Tile{ID: x, Data: bytes.Repeat([]byte{v, byte(i)}, 10+i)})
		}
		if err := f.WriteTiles(ctx, size, ts); err != nil {
			t.Fatal(err)
		}
	}
	check := func(f *File, size uint64, v byte) {
		t.Helper()
		if f.Size() != size {
			t.Fatalf("size %d, want %d", f.Size(), size)
		}
		got, err := f.ReadTiles(ctx, append(ids, id(4, 0x20)))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(ids) {
			t.Fatalf("%d tiles read, want %d", len(got), len(ids))
		}
		for i, x := range ids {
			if want := bytes.Repeat([]byte{v, byte(i)}, 10+i); !bytes.Equal(got[x], want) {
				t.Fatalf("tile %s: %x, want %x", x, got[x], want)
			}
		}
	}
	write(10, 1)
	write(20, 2)
	check(f, 20, 2)
	f.Close()
	// A torn write after the last commit.
	fh, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	fh.Write([]byte{recTile, 1, 0, 0, 0, 0, 9, 'x'})
	fh.Close()
	f, err = OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	check(f, 20, 2)
	before := f.end
	if err := f.Compact(); err != nil {
		t.Fatal(err)
	}
	if f.end >= before {
		t.Errorf("compaction did not shrink the file: %d → %d bytes", before, f.end)
	}
	check(f, 20, 2)
	write(30, 3)
	f.Close()
	if f, err = OpenFile(path); err != nil {
		t.Fatal(err)
	}
	check(f, 30, 3)
	f.Close()
	os.WriteFile(path, []byte("not an index"), 0o600)
	if _, err := OpenFile(path); err == nil {
		t.Error("opened a file that is not an index file")
	}
}
