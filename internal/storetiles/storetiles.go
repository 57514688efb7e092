// Package storetiles reads the c2sp.org/tlog-tiles resources of a log
// (hash tiles and entry bundles) out of a store.Store: hash tiles as
// stored, cut to the width asked for, and entry bundles assembled from the
// stored entries (the store keeps no bundles). It checks the store's
// answers for shape only; what it returns is authenticated by whoever
// reads it against a checkpoint.
package storetiles

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/custodylog/custody/internal/tiles"
	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/verify"
)

// ErrShort is wrapped by the errors for a stored tile narrower than asked
// for, or a bundle whose entries the store does not all hold.
var ErrShort = errors.New("the store holds less than asked for")

// HashTile returns the first w hashes of stored hash tile (level, index),
// a new slice. It returns an error wrapping store.ErrNotFound if the tile
// is not stored, and one wrapping ErrShort if fewer than w hashes are.
func HashTile(ctx context.Context, st store.Store, level uint8, index uint64, w int) ([]byte, error) {
	where := verify.TileAddr{Level: level, Index: index, Width: partial(w)}.Path()
	data, err := st.Tile(ctx, level, index)
	if err != nil {
		return nil, fmt.Errorf("tile %s: %w", where, err)
	}
	if len(data) < w*tiles.HashSize {
		return nil, fmt.Errorf("tile %s: the store holds %d of its %d hashes: %w", where, len(data)/tiles.HashSize, w, ErrShort)
	}
	return bytes.Clone(data[:w*tiles.HashSize]), nil
}

// Bundle assembles entry bundle index of width w from the stored entries
// index*256 to index*256+w-1. If the store holds only some of them it
// returns the bundle of those it holds (in order, from the first) with an
// error wrapping ErrShort; a store that returns an entry out of place is
// an error.
func Bundle(ctx context.Context, st store.Store, index uint64, w int) ([]byte, error) {
	where := verify.TileAddr{Entries: true, Index: index, Width: partial(w)}.Path()
	if index > (math.MaxUint64-tiles.Width)/tiles.Width {
		return nil, fmt.Errorf("entry bundle %s: %w", where, store.ErrNotFound)
	}
	start := index * tiles.Width
	es, err := st.Entries(ctx, start, start+uint64(w))
	if err != nil {
		return nil, fmt.Errorf("entry bundle %s: %w", where, err)
	}
	var b []byte
	for i, en := range es {
		if en.Index != start+uint64(i) {
			return nil, fmt.Errorf("entry bundle %s: the store returned entry %d where entry %d belongs", where, en.Index, start+uint64(i))
		}
		if b, err = verify.AppendBundleEntry(b, en.Data); err != nil {
			return nil, fmt.Errorf("entry %d: %w", en.Index, err)
		}
	}
	if len(es) != w {
		return b, fmt.Errorf("entry bundle %s: the store holds %d of its %d entries: %w", where, len(es), w, ErrShort)
	}
	return b, nil
}

// partial is the Width of a TileAddr of w hashes: 0 for a full tile.
func partial(w int) int {
	if w == tiles.Width {
		return 0
	}
	return w
}
