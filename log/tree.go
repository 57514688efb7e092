package log

import (
	"context"
	"errors"
	"fmt"

	"github.com/custodylog/custody/internal/tiles"
	"github.com/custodylog/custody/store"
)

// treeState is the writer's view of the tree: its size and the tile
// engine's builder (compact range and right-edge tiles). It is never
// modified once published: grow returns a new state.
type treeState struct {
	size uint64
	b    *tiles.Builder
}

// root returns the tree's Merkle root.
func (t *treeState) root() store.Hash { return t.b.Root() }

// grow returns the state after appending leaf hashes, and the tiles that
// changed (each with its complete new data), in level then index order.
func (t *treeState) grow(leaves []store.Hash) (*treeState, []store.Tile) {
	b := t.b.Clone()
	ts := b.AppendTiles(leaves)
	out := make([]store.Tile, len(ts))
	for i, tl := range ts {
		out[i] = store.Tile(tl)
	}
	return &treeState{size: b.Size(), b: b}, out
}

// loadTree rebuilds the writer state for a tree of size cp.Size from the
// store's right-edge tiles and checks that it has the checkpoint's root.
func loadTree(ctx context.Context, st store.Store, cp store.Checkpoint) (*treeState, error) {
	b, err := tiles.Resume(cp.Size, func(level uint8, index uint64, _ int) ([]byte, error) {
		return st.Tile(ctx, level, index)
	})
	if err != nil {
		return nil, fmt.Errorf("rebuilding the tree of size %d: %w", cp.Size, err)
	}
	t := &treeState{size: cp.Size, b: b}
	if got := t.root(); got != cp.Root {
		return nil, fmt.Errorf("%w: tree rebuilt from stored tiles at size %d has root %x, the stored checkpoint says %x", errCorrupt, cp.Size, got, cp.Root)
	}
	return t, nil
}

var errCorrupt = errors.New("stored log is inconsistent")

// nodeSource returns a node reader for this state.
func (t *treeState) nodeSource(st store.Store, cache *tileCache) *nodeSource {
	edges := map[tileKey]*tiles.Expanded{}
	for _, e := range t.b.Edges() {
		edges[tileKey{level: e.Level, index: e.Index}] = tiles.Expand(e.Data)
	}
	return &nodeSource{st: st, cache: cache, edges: edges}
}
