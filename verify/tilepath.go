package verify

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Tile geometry of c2sp.org/tlog-tiles: every tile is 8 levels of the tree
// high and holds up to 256 hashes; every entry bundle holds up to 256
// entries.
const (
	TileHeight = 8
	TileWidth  = 1 << TileHeight
)

// maxTileLevel is the highest tile level a tile path may name.
const maxTileLevel = 63

// TileAddr names one tile or entry bundle of a tiled log.
type TileAddr struct {
	// Entries is true for an entry bundle (tile/entries/…), false for a
	// hash tile (tile/<Level>/…).
	Entries bool
	// Level is the tile level, 0 to maxTileLevel. It is 0 for bundles.
	Level uint8
	// Index is the tile's position within its level, N in the path.
	Index uint64
	// Width is the number of hashes (or entries) in a partial tile, 1 to
	// 255. Zero means a full tile of TileWidth hashes.
	Width int
}

// Validate reports whether a is an address that Path can write and
// ParseTilePath reads back: Level at most maxTileLevel, Level 0 for an entry
// bundle, and Width from 0 (full) to TileWidth-1.
func (a TileAddr) Validate() error {
	switch {
	case a.Level > maxTileLevel:
		return fmt.Errorf("tile level %d is above %d", a.Level, maxTileLevel)
	case a.Entries && a.Level != 0:
		return fmt.Errorf("entry bundle has level %d, want 0", a.Level)
	case a.Width < 0 || a.Width >= TileWidth:
		return fmt.Errorf("tile width %d is outside 0 (full) to %d", a.Width, TileWidth-1)
	}
	return nil
}

// Path returns the tile's path relative to the log prefix, without a
// leading slash: "tile/<L>/<N>[.p/<W>]" or "tile/entries/<N>[.p/<W>]", with
// N written in 3-digit base-1000 groups, all but the last prefixed by "x"
// (1234067 is "x001/x234/067"). For every valid a (see Validate),
// ParseTilePath(a.Path()) returns a. Path formats an invalid a anyway, into a
// path that ParseTilePath rejects, except that an entry bundle's Level is
// not written.
func (a TileAddr) Path() string {
	var b strings.Builder
	b.WriteString("tile/")
	if a.Entries {
		b.WriteString("entries")
	} else {
		b.WriteString(strconv.Itoa(int(a.Level)))
	}
	b.WriteByte('/')
	b.WriteString(indexPath(a.Index))
	if a.Width != 0 {
		b.WriteString(".p/")
		b.WriteString(strconv.Itoa(a.Width))
	}
	return b.String()
}

// indexPath writes n in base 1000 as "xDDD/…/DDD".
func indexPath(n uint64) string {
	groups := []string{fmt.Sprintf("%03d", n%1000)}
	for n >= 1000 {
		n /= 1000
		groups = append(groups, fmt.Sprintf("x%03d", n%1000))
	}
	for i, j := 0, len(groups)-1; i < j; i, j = i+1, j-1 {
		groups[i], groups[j] = groups[j], groups[i]
	}
	return strings.Join(groups, "/")
}

// ParseTilePath parses a tile or entry bundle path as written by
// [TileAddr.Path] (no leading slash). It accepts only the canonical form, so
// that ParseTilePath(p).Path() == p for every accepted p: the level is
// decimal 0 to 63 without leading zeros; N is 3-digit groups with "x" on all
// but the last and no leading all-zero group, fitting in 64 bits; a partial
// suffix ".p/<W>" has W from 1 to 255 without leading zeros; and bundles
// (tile/entries/…) carry no level.
func ParseTilePath(p string) (TileAddr, error) {
	a, err := parseTilePath(p)
	if err != nil {
		return TileAddr{}, fmt.Errorf("tile path %q: %v", p, err)
	}
	return a, nil
}

func parseTilePath(p string) (TileAddr, error) {
	rest, ok := strings.CutPrefix(p, "tile/")
	if !ok {
		return TileAddr{}, errors.New(`does not start with "tile/"`)
	}
	var a TileAddr
	first, rest, ok := strings.Cut(rest, "/")
	if !ok {
		return TileAddr{}, errors.New("no tile index")
	}
	if first == "entries" {
		a.Entries = true
	} else {
		level, err := parseDecimal(first)
		if err != nil {
			return TileAddr{}, fmt.Errorf("level %q: %v", first, err)
		}
		if level > maxTileLevel {
			return TileAddr{}, fmt.Errorf("level %d is above %d", level, maxTileLevel)
		}
		a.Level = uint8(level)
	}
	if index, width, ok := strings.Cut(rest, ".p/"); ok {
		w, err := parseDecimal(width)
		if err != nil {
			return TileAddr{}, fmt.Errorf("partial width %q: %v", width, err)
		}
		if w == 0 || w >= TileWidth {
			return TileAddr{}, fmt.Errorf("partial width %d is outside 1 to %d", w, TileWidth-1)
		}
		a.Width = int(w)
		rest = index
	}
	groups := strings.Split(rest, "/")
	if a.Entries && len(groups) > 1 && !strings.HasPrefix(groups[0], "x") {
		return TileAddr{}, fmt.Errorf("entry bundle path has a level or other element %q before its index", groups[0])
	}
	for i, g := range groups {
		last := i == len(groups)-1
		digits := g
		if !last {
			var ok bool
			if digits, ok = strings.CutPrefix(g, "x"); !ok {
				return TileAddr{}, fmt.Errorf("index group %q is not the last and lacks the x prefix", g)
			}
		}
		if len(digits) != 3 || strings.Trim(digits, "0123456789") != "" {
			return TileAddr{}, fmt.Errorf("index group %q is not 3 decimal digits", g)
		}
		d := uint64(digits[0]-'0')*100 + uint64(digits[1]-'0')*10 + uint64(digits[2]-'0')
		if a.Index > (^uint64(0)-d)/1000 {
			return TileAddr{}, errors.New("index does not fit in 64 bits")
		}
		a.Index = a.Index*1000 + d
	}
	if a.Path() != p {
		return TileAddr{}, fmt.Errorf("not canonical (want %q)", a.Path())
	}
	return a, nil
}

// PartialWidth returns the width of the partial tile at level for a tree of
// size entries: floor(size / 256^level) mod 256. Zero means that level has
// no partial tile (its last tile, if any, is full). For level 0 it is also
// the width of the partial entry bundle.
func PartialWidth(level uint8, size uint64) int {
	return int(levelSize(level, size) % TileWidth)
}

// FullTiles returns how many full tiles exist at level for a tree of size
// entries: floor(size / 256^(level+1)).
func FullTiles(level uint8, size uint64) uint64 {
	return levelSize(level, size) / TileWidth
}

// levelSize is the number of hashes at tile level for a tree of size
// entries, floor(size / 256^level).
func levelSize(level uint8, size uint64) uint64 {
	shift := uint(level) * TileHeight
	if shift >= 64 {
		return 0
	}
	return size >> shift
}

// PartialTiles returns the partial hash tiles of a tree of size entries,
// one for each level whose PartialWidth is not zero, lowest level first. A
// log must serve these for every size it publishes a checkpoint for, and
// they alone suffice to recompute that checkpoint's root hash. The partial
// entry bundle, if any, has the address of the level 0 tile with Entries set.
func PartialTiles(size uint64) []TileAddr {
	var tiles []TileAddr
	for level := uint8(0); levelSize(level, size) > 0; level++ {
		n := levelSize(level, size)
		if w := int(n % TileWidth); w > 0 {
			tiles = append(tiles, TileAddr{Level: level, Index: n / TileWidth, Width: w})
		}
	}
	return tiles
}

// NewTiles returns the hash tiles a log must publish when it grows from
// oldSize to newSize entries, lowest level first and in index order within
// a level: every full tile that becomes complete, and the new partial tile
// of each level whose partial width changes. It matches x/mod's
// tlog.NewTiles with height 8. Entry bundles match the level 0 tiles one
// for one.
func NewTiles(oldSize, newSize uint64) []TileAddr {
	var tiles []TileAddr
	if newSize < oldSize {
		return nil
	}
	for level := uint8(0); levelSize(level, newSize) > 0; level++ {
		oldN, newN := levelSize(level, oldSize), levelSize(level, newSize)
		if oldN == newN {
			continue
		}
		for n := oldN / TileWidth; n < newN/TileWidth; n++ {
			tiles = append(tiles, TileAddr{Level: level, Index: n})
		}
		if w := int(newN % TileWidth); w > 0 {
			tiles = append(tiles, TileAddr{Level: level, Index: newN / TileWidth, Width: w})
		}
	}
	return tiles
}
