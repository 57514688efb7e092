package storetest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/custodylog/custody/store"
)

// CheckErrorMessages checks that the errors of s, a new, empty store of the
// backend called name ("sqlite", "postgres"), say what failed on what
// input, as the backends in this module word them: Append's errors start
// "name: appending batch at size N: " and then name the entry whose
// identity is taken and the entry that has it, the tile that does not
// extend the stored one and the hash where it differs, the stored
// checkpoint a stale batch does not extend, or the tile that is too large;
// Tile's ErrNotFound is "name: reading tile L/N: not found".
func CheckErrorMessages(t *testing.T, s store.Store, name string) {
	t.Helper()
	ctx := context.Background()
	g := new(BenchLog)
	g.MustAppend(t, s, 0, "genesis")
	b := g.MustAppend(t, s, 10, "x")

	dup := g.Batch(10, "x")
	dup.Entries[4].Identity = b.Entries[2].Identity
	bigTile := g.Batch(10, "x")
	bigTile.Tiles[0].Data = make([]byte, 257*32)
	badTile := g.Batch(10, "x")
	badTile.Tiles[0].Data[40] ^= 1
	for _, tt := range []struct {
		b    store.Batch
		want string
	}{
		{dup, fmt.Sprintf("%s: appending batch at size 10: entry 14 has identity %x, already the identity of entry 2: conflict", name, b.Entries[2].Identity)},
		{badTile, name + ": appending batch at size 10: tile 0/0: new data differs from the stored tile at hash 1: tile does not extend"},
		{g.Batch(10, "x"), ""},
		{g.Batch(10, "x"), name + ": appending batch at size 10: the latest checkpoint is size 20"},
		{bigTile, "tile 0/0 has 8224 bytes, want 1 to 256 hashes"},
	} {
		err := s.Append(ctx, tt.b)
		if tt.want == "" {
			if err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Append() = %v, want an error containing %q", err, tt.want)
		}
	}
	want := name + ": reading tile 3/7: not found"
	if _, err := s.Tile(ctx, 3, 7); err == nil || err.Error() != want {
		t.Errorf("Tile(3, 7) = %v, want %q", err, want)
	}
}
