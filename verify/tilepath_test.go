package verify

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/mod/sumdb/tlog"
)

func TestTilePath(t *testing.T) {
	for _, tc := range []struct {
		addr TileAddr
		path string
	}{
		// interop.md 5.2.
		{TileAddr{Index: 0}, "tile/0/000"},
		{TileAddr{Index: 999}, "tile/0/999"},
		{TileAddr{Index: 1000}, "tile/0/x001/000"},
		{TileAddr{Index: 1234067}, "tile/0/x001/x234/067"},
		{TileAddr{Index: 1000000}, "tile/0/x001/x000/000"},
		{TileAddr{Level: 0, Index: 1234067, Width: 5}, "tile/0/x001/x234/067.p/5"},
		{TileAddr{Level: 1, Index: 0, Width: 1}, "tile/1/000.p/1"},
		{TileAddr{Level: 2, Index: 1, Width: 255}, "tile/2/001.p/255"},
		{TileAddr{Level: 63, Index: 5}, "tile/63/005"},
		{TileAddr{Level: 0, Index: 1234}, "tile/0/x001/234"},
		{TileAddr{Level: 0, Index: 1234, Width: 5}, "tile/0/x001/234.p/5"},
		{TileAddr{Index: 1<<64 - 1}, "tile/0/x018/x446/x744/x073/x709/x551/615"},
		{TileAddr{Entries: true, Index: 0}, "tile/entries/000"},
		{TileAddr{Entries: true, Index: 0, Width: 3}, "tile/entries/000.p/3"},
		{TileAddr{Entries: true, Index: 1234067, Width: 17}, "tile/entries/x001/x234/067.p/17"},
	} {
		if got := tc.addr.Path(); got != tc.path {
			t.Errorf("%+v.Path() = %q, want %q", tc.addr, got, tc.path)
		}
		got, err := ParseTilePath(tc.path)
		if err != nil {
			t.Errorf("ParseTilePath(%q) = %v", tc.path, err)
			continue
		}
		if diff := cmp.Diff(tc.addr, got); diff != "" {
			t.Errorf("ParseTilePath(%q) mismatch (-want +got):\n%s", tc.path, diff)
		}
	}
}

func TestParseTilePathMalformed(t *testing.T) {
	for _, tc := range []struct{ path, wantErr string }{
		{"", `does not start with "tile/"`},
		{"/tile/0/000", `does not start with "tile/"`},
		{"tiles/0/000", `does not start with "tile/"`},
		{"tile/8/0/000", "index group \"0\" is not the last and lacks the x prefix"}, // sumdb form
		{"tile/0", "no tile index"},
		{"tile/0/", `index group "" is not 3 decimal digits`},
		{"tile/00/000", "leading zeros"},
		{"tile/01/000", "leading zeros"},
		{"tile/-1/000", "not a decimal number"},
		{"tile/+1/000", "not a decimal number"},
		{"tile/64/000", "level 64 is above 63"},
		{"tile/256/000", "level 256 is above 63"},
		{"tile/data/000", "not a decimal number"},
		{"tile/0/00", `index group "00" is not 3 decimal digits`},
		{"tile/0/0000", `index group "0000" is not 3 decimal digits`},
		{"tile/0/1", `index group "1" is not 3 decimal digits`},
		{"tile/0/x001", `index group "x001" is not 3 decimal digits`},
		{"tile/0/001/000", "lacks the x prefix"},
		{"tile/0/x01/000", `index group "x01" is not 3 decimal digits`},
		{"tile/0/x000/001", "not canonical"},
		{"tile/0/x000/x001/000", "not canonical"},
		{"tile/0/X001/000", "lacks the x prefix"},
		{"tile/0/x001/x000", `index group "x000" is not 3 decimal digits`},
		{"tile/0/0a1", "not 3 decimal digits"},
		{"tile/0/+01", "not 3 decimal digits"},
		{"tile/0/000/", `index group "000" is not the last and lacks the x prefix`},
		{"tile/0//000", "lacks the x prefix"},
		{"tile/0/x018/x446/x744/x073/x709/x551/616", "does not fit in 64 bits"},
		{"tile/0/x019/x000/x000/x000/x000/x000/000", "does not fit in 64 bits"},
		{"tile/0/x001/x000/x000/x000/x000/x000/x000/000", "does not fit in 64 bits"},
		{"tile/0/000.p/0", "partial width 0 is outside 1 to 255"},
		{"tile/0/000.p/256", "partial width 256 is outside 1 to 255"},
		{"tile/0/000.p/05", "leading zeros"},
		{"tile/0/000.p/", "empty number"},
		{"tile/0/000.p/5/", "not a decimal number"},
		{"tile/0/000.p", `index group "000.p" is not 3 decimal digits`},
		{"tile/0/000.p/5.p/5", "not a decimal number"},
		{"tile/0/x001.p/5/000", "not a decimal number"},
		{"tile/entries/0/000", `entry bundle path has a level or other element "0"`},
		{"tile/entries/1/000", `entry bundle path has a level or other element "1"`},
		{"tile/entries/001/000", `entry bundle path has a level or other element "001"`},
		{"tile/entries", "no tile index"},
		{"tile/entries/", `index group "" is not 3 decimal digits`},
		{"tile/entries/000.p/256", "partial width 256"},
		{"tile/Entries/000", "not a decimal number"},
		{"tile/0/000?x", "not 3 decimal digits"},
		{"tile/0/٠٠٠", "not 3 decimal digits"},
	} {
		got, err := ParseTilePath(tc.path)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("ParseTilePath(%q) = %+v, %v; want error containing %q", tc.path, got, err, tc.wantErr)
		}
	}
}

// xmodPath is the C2SP path that x/mod's sumdb tile path corresponds to:
// the sumdb form with the height element removed and "data" for bundles.
func xmodPath(a TileAddr) string {
	w := a.Width
	if w == 0 {
		w = TileWidth
	}
	level := int(a.Level)
	if a.Entries {
		level = -1
	}
	p := tlog.Tile{H: TileHeight, L: level, N: int64(a.Index), W: w}.Path()
	p = strings.Replace(p, "tile/8/", "tile/", 1)
	return strings.Replace(p, "tile/data/", "tile/entries/", 1)
}

func TestTilePathAgainstXMod(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	indexes := []uint64{0, 1, 999, 1000, 1001, 999999, 1000000, 1234067, 1<<63 - 1}
	for range 2000 {
		indexes = append(indexes, r.Uint64N(1<<uint(r.IntN(63)+1)))
	}
	for _, n := range indexes {
		for _, a := range []TileAddr{
			{Level: 0, Index: n},
			{Level: 1, Index: n},
			{Level: 0, Index: n, Width: 1 + r.IntN(255)},
			{Level: 1, Index: n, Width: 1 + r.IntN(255)},
			{Level: uint8(r.IntN(64)), Index: n, Width: r.IntN(256)},
			{Entries: true, Index: n, Width: r.IntN(256)},
		} {
			want := xmodPath(a)
			if got := a.Path(); got != want {
				t.Errorf("%+v.Path() = %q, want %q (x/mod)", a, got, want)
			}
			back, err := ParseTilePath(want)
			if err != nil || back != a {
				t.Errorf("ParseTilePath(%q) = %+v, %v; want %+v", want, back, err, a)
			}
		}
	}
}

func TestTileAddrValidate(t *testing.T) {
	for _, tc := range []struct {
		addr  TileAddr
		valid bool
	}{
		{TileAddr{}, true},
		{TileAddr{Level: 63, Width: 255}, true},
		{TileAddr{Entries: true, Width: 1}, true},
		{TileAddr{Level: 64}, false},
		{TileAddr{Width: 256}, false},
		{TileAddr{Width: -1}, false},
		{TileAddr{Entries: true, Level: 1}, false},
	} {
		err := tc.addr.Validate()
		if (err == nil) != tc.valid {
			t.Errorf("%+v.Validate() = %v, want valid %v", tc.addr, err, tc.valid)
		}
		if tc.addr.Entries && tc.addr.Level != 0 {
			continue // Path does not write a bundle's level.
		}
		_, perr := ParseTilePath(tc.addr.Path())
		if (perr == nil) != tc.valid {
			t.Errorf("ParseTilePath(%+v.Path()) = %v, want valid %v", tc.addr, perr, tc.valid)
		}
	}
}

func TestPartialWidth(t *testing.T) {
	// interop.md 5.3: s = 70000 has 273 full L0 tiles and a partial of
	// width 112, 1 full L1 tile and a partial of width 17, and a partial L2
	// tile of width 1.
	for _, tc := range []struct {
		level uint8
		size  uint64
		width int
		full  uint64
	}{
		{0, 70000, 112, 273}, {1, 70000, 17, 1}, {2, 70000, 1, 0}, {3, 70000, 0, 0},
		{0, 256, 0, 1}, {1, 256, 1, 0},
		{0, 0, 0, 0}, {0, 1, 1, 0}, {0, 255, 255, 0},
		{7, 1<<64 - 1, 255, 0}, {8, 1<<64 - 1, 0, 0}, {63, 1<<64 - 1, 0, 0},
	} {
		if got := PartialWidth(tc.level, tc.size); got != tc.width {
			t.Errorf("PartialWidth(%d, %d) = %d, want %d", tc.level, tc.size, got, tc.width)
		}
		if got := FullTiles(tc.level, tc.size); got != tc.full {
			t.Errorf("FullTiles(%d, %d) = %d, want %d", tc.level, tc.size, got, tc.full)
		}
	}
	want := []TileAddr{{Level: 0, Index: 273, Width: 112}, {Level: 1, Index: 1, Width: 17}, {Level: 2, Index: 0, Width: 1}}
	if diff := cmp.Diff(want, PartialTiles(70000)); diff != "" {
		t.Errorf("PartialTiles(70000) mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]TileAddr{{Level: 1, Index: 0, Width: 1}}, PartialTiles(256)); diff != "" {
		t.Errorf("PartialTiles(256) mismatch (-want +got):\n%s", diff)
	}
}

func TestNewTilesAgainstXMod(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	sizes := []uint64{0, 1, 255, 256, 257, 65535, 65536, 65537, 70000, 1 << 24, 1<<24 + 1}
	for range 300 {
		sizes = append(sizes, r.Uint64N(1<<26))
	}
	for _, old := range sizes {
		for _, new := range []uint64{old, old + 1, old + 255, old + 256, old + r.Uint64N(1<<20)} {
			var want []TileAddr
			for _, tile := range tlog.NewTiles(TileHeight, int64(old), int64(new)) {
				w := tile.W
				if w == TileWidth {
					w = 0
				}
				want = append(want, TileAddr{Level: uint8(tile.L), Index: uint64(tile.N), Width: w})
			}
			if got := NewTiles(old, new); !slices.Equal(got, want) {
				t.Fatalf("NewTiles(%d, %d) mismatch with x/mod (-x/mod +got):\n%s", old, new, cmp.Diff(want, got))
			}
		}
	}
	if got := NewTiles(10, 5); got != nil {
		t.Errorf("NewTiles(10, 5) = %v, want nil", got)
	}
}

// TestPartialTilesGiveRoot checks the claim in PartialTiles' doc: the
// partial tiles alone suffice to recompute the root. Tile contents are
// computed with the naive reference MTH.
func TestPartialTilesGiveRoot(t *testing.T) {
	leaves := testLeaves(70000)
	for _, size := range []int{1, 2, 255, 256, 257, 511, 512, 513, 1000, 65535, 65536, 65537, 70000} {
		tiles := map[uint8][][32]byte{} // level -> the partial tile's hashes
		for _, a := range PartialTiles(uint64(size)) {
			span := 1 << (TileHeight * int(a.Level)) // leaves under one hash
			start := int(a.Index) * TileWidth * span
			for i := range a.Width {
				tiles[a.Level] = append(tiles[a.Level], refMTH(leaves[start+i*span:start+(i+1)*span]))
			}
		}
		// Fold the perfect subtrees of the binary expansion of size,
		// right to left, each read from its level's partial tile.
		var root [32]byte
		first := true
		for k := 0; k < 64; k++ {
			if size>>k&1 == 0 {
				continue
			}
			level, r := uint8(k/TileHeight), k%TileHeight
			start := size >> (k + 1) << (k + 1)                   // the subtree's first leaf
			pos := start >> (TileHeight * int(level)) % TileWidth // its offset in the tile
			hs := append([][32]byte(nil), tiles[level][pos:pos+1<<r]...)
			for len(hs) > 1 {
				var up [][32]byte
				for i := 0; i < len(hs); i += 2 {
					up = append(up, NodeHash(hs[i], hs[i+1]))
				}
				hs = up
			}
			if first {
				root, first = hs[0], false
			} else {
				root = NodeHash(hs[0], root)
			}
		}
		if want := refMTH(leaves[:size]); root != want {
			t.Errorf("root of size %d from PartialTiles = %x, want %x", size, root, want)
		}
	}
}

func ExampleTileAddr_Path() {
	fmt.Println(TileAddr{Level: 0, Index: 1234067, Width: 5}.Path())
	fmt.Println(TileAddr{Entries: true, Index: 1000}.Path())
	// Output:
	// tile/0/x001/x234/067.p/5
	// tile/entries/x001/000
}
