package log

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/custodylog/custody/store"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
)

var rangeFactory = &compact.RangeFactory{Hash: hashChildren}

// treeState is the writer's view of the tree: its size, the compact range
// over all leaves (for the root), and the right-edge tiles, one per tile
// level, that are not full yet. It is never modified in place once
// published: next() returns a new state.
type treeState struct {
	size  uint64
	rng   *compact.Range
	edges map[uint8][]byte // level -> partial tile data at the right edge
}

// edgeKey returns the key of the right-edge tile at level L for a tree of the
// given size, and its width (0 when the level has no partial tile).
func edgeKey(size uint64, L uint8) (tileKey, int) {
	n := size >> (tileHeight * uint(L)) // hashes at tile level L
	return tileKey{level: L, index: n / tileWidth}, int(n % tileWidth)
}

// root returns the tree's Merkle root.
func (t *treeState) root() store.Hash {
	var out store.Hash
	r, err := t.rng.GetRootHash(nil)
	if err != nil {
		panic(fmt.Sprintf("compact range does not start at 0: %v", err)) // invariant
	}
	if r == nil {
		r = rfc6962.DefaultHasher.EmptyRoot()
	}
	copy(out[:], r)
	return out
}

// grow returns the state after appending leaf hashes, and the tiles that
// changed (each with its complete new data), in level then index order.
func (t *treeState) grow(leaves []store.Hash) (*treeState, []store.Tile) {
	hashes := make([][]byte, len(t.rng.Hashes()))
	copy(hashes, t.rng.Hashes())
	rng, err := rangeFactory.NewRange(0, t.size, hashes)
	if err != nil {
		panic(err) // invariant: the range was valid before
	}
	next := &treeState{size: t.size, rng: rng, edges: make(map[uint8][]byte, len(t.edges)+1)}
	for L, d := range t.edges {
		next.edges[L] = d // shared: appends below copy first
	}
	changed := map[tileKey][]byte{}
	var order []tileKey
	visit := func(id compact.NodeID, hash []byte) {
		if id.Level%tileHeight != 0 {
			return
		}
		L := uint8(id.Level / tileHeight)
		k := tileKey{level: L, index: id.Index / tileWidth}
		d, ok := changed[k]
		if !ok {
			// First change to this tile in this batch: start from the
			// stored edge (if this tile is the old edge) or from empty.
			old := next.edges[L]
			if ek, w := edgeKey(t.size, L); ek == k && w > 0 {
				d = append(make([]byte, 0, tileWidth*hashSize), old...)
			} else {
				d = make([]byte, 0, tileWidth*hashSize)
			}
			order = append(order, k)
		}
		if uint64(len(d)/hashSize) != id.Index%tileWidth {
			panic(fmt.Sprintf("tile %d/%d: hash %d appended at width %d", k.level, k.index, id.Index%tileWidth, len(d)/hashSize))
		}
		d = append(d, hash...)
		changed[k] = d
	}
	for i := range leaves {
		if err := next.rng.Append(leaves[i][:], visit); err != nil {
			panic(err)
		}
	}
	next.size = next.rng.End()
	// The new right edge: the changed tile where a level grew, the old edge
	// where it did not; no entry for a level whose last tile is full.
	for L := uint8(0); L < 64; L++ {
		if next.size>>(tileHeight*uint(L)) == 0 {
			break
		}
		k, w := edgeKey(next.size, L)
		if w == 0 {
			delete(next.edges, L)
		} else if d, ok := changed[k]; ok {
			next.edges[L] = d
		}
	}
	tiles := make([]store.Tile, 0, len(order))
	for _, k := range order {
		tiles = append(tiles, store.Tile{Level: k.level, Index: k.index, Data: changed[k]})
	}
	return next, tiles
}

// loadTree rebuilds the writer state for a tree of size cp.Size from the
// store's tiles and checks that it has the checkpoint's root.
func loadTree(ctx context.Context, st store.Store, cp store.Checkpoint) (*treeState, error) {
	t := &treeState{size: cp.Size, edges: map[uint8][]byte{}}
	for L := uint8(0); cp.Size>>(tileHeight*uint(L)) > 0; L++ {
		k, w := edgeKey(cp.Size, L)
		if w == 0 {
			continue
		}
		data, err := st.Tile(ctx, k.level, k.index)
		if err != nil {
			return nil, fmt.Errorf("reading right-edge tile %d/%d of a tree of size %d: %w", k.level, k.index, cp.Size, err)
		}
		if len(data) < w*hashSize {
			return nil, fmt.Errorf("right-edge tile %d/%d has %d hashes, a tree of size %d needs %d", k.level, k.index, len(data)/hashSize, cp.Size, w)
		}
		t.edges[L] = bytes.Clone(data[:w*hashSize])
	}
	src := t.nodeSource(st, newTileCache(4))
	ids := compact.RangeNodes(0, cp.Size, nil)
	hashes, err := src.nodes(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("rebuilding the tree of size %d: %w", cp.Size, err)
	}
	rng, err := rangeFactory.NewRange(0, cp.Size, hashes)
	if err != nil {
		return nil, err
	}
	t.rng = rng
	if got := t.root(); got != cp.Root {
		return nil, fmt.Errorf("%w: tree rebuilt from stored tiles at size %d has root %x, the stored checkpoint says %x", errCorrupt, cp.Size, got, cp.Root)
	}
	return t, nil
}

var errCorrupt = errors.New("stored log is inconsistent")

// nodeSource returns a node reader for this state.
func (t *treeState) nodeSource(st store.Store, cache *tileCache) *nodeSource {
	edges := make(map[tileKey]*expandedTile, len(t.edges))
	for L, d := range t.edges {
		k, _ := edgeKey(t.size, L)
		edges[k] = expandTile(d)
	}
	return &nodeSource{st: st, cache: cache, edges: edges}
}
