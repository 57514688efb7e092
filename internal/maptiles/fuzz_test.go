package maptiles

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/custodylog/custody/sampleindex"
)

// FuzzOpenFile: any file content either fails to open or opens at a
// committed size whose tiles read back within the file, and a write and a
// compaction after it keep every tile readable.
func FuzzOpenFile(f *testing.F) {
	f.Add([]byte(fileMagic))
	f.Add([]byte(fileMagic + "C\x00\x00\x00\x00\x00\x00\x00\x05"))
	f.Add([]byte(fileMagic + "T\x01\x00\x00\x00\x00\x02ab" + "C\x00\x00\x00\x00\x00\x00\x00\x07"))
	f.Add([]byte(fileMagic + "T\x02\x04\x10\x00\x00\x00\x01z" + "C\x00\x00\x00\x00\x00\x00\x00\x01T\x01\x00"))
	f.Add([]byte("not a tile file"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "tiles")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		fl, err := OpenFile(path)
		if err != nil {
			return
		}
		defer fl.Close()
		ctx := context.Background()
		var ids []sampleindex.TileID
		for k := range fl.idx {
			var id sampleindex.TileID
			id.Depth = uint8(k & 0xff)
			binary.BigEndian.PutUint64(id.Prefix[:8], k&^0xff)
			ids = append(ids, id)
		}
		for id := range fl.deep {
			ids = append(ids, id)
		}
		before, err := fl.ReadTiles(ctx, ids)
		if err != nil {
			t.Fatalf("opened, but reading its tiles fails: %v", err)
		}
		if err := fl.WriteTiles(ctx, fl.Size()+1, []sampleindex.Tile{{ID: sampleindex.TileID{}, Data: []byte("root")}}); err != nil {
			t.Fatal(err)
		}
		if err := fl.Compact(); err != nil {
			t.Fatal(err)
		}
		after, err := fl.ReadTiles(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		for id, b := range before {
			if id == (sampleindex.TileID{}) {
				continue
			}
			if !bytes.Equal(after[id], b) {
				t.Fatalf("tile %s changed by a write of another tile and a compaction", id)
			}
		}
	})
}
