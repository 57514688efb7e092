package log

import (
	"container/list"
	"context"
	"fmt"
	"sync"

	"github.com/custodylog/custody/internal/tiles"
	"github.com/custodylog/custody/store"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
)

const (
	tileHeight = tiles.Height
	tileWidth  = tiles.Width
	hashSize   = store.HashSize
)

// hashChildren is the RFC 6962 interior node hash, in the form the merkle
// library's proof code takes.
func hashChildren(l, r []byte) []byte { return rfc6962.DefaultHasher.HashChildren(l, r) }

// tileKey names a hash tile.
type tileKey struct {
	level uint8
	index uint64
}

// tileCache keeps expanded full tiles, which never change, in LRU order.
type tileCache struct {
	mu    sync.Mutex
	max   int
	order *list.List // of tileKey, front = most recent
	items map[tileKey]*list.Element
	tiles map[tileKey]*tiles.Expanded
}

func newTileCache(max int) *tileCache {
	return &tileCache{max: max, order: list.New(), items: map[tileKey]*list.Element{}, tiles: map[tileKey]*tiles.Expanded{}}
}

func (c *tileCache) get(k tileKey) *tiles.Expanded {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.order.MoveToFront(e)
		return c.tiles[k]
	}
	return nil
}

func (c *tileCache) put(k tileKey, t *tiles.Expanded) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.order.MoveToFront(e)
		c.tiles[k] = t
		return
	}
	c.items[k] = c.order.PushFront(k)
	c.tiles[k] = t
	for c.order.Len() > c.max {
		old := c.order.Back()
		k := old.Value.(tileKey)
		c.order.Remove(old)
		delete(c.items, k)
		delete(c.tiles, k)
	}
}

// nodeSource finds the hash of any complete node of a tree of a given size
// from hash tiles: the right-edge (partial) tiles of a published snapshot and
// full tiles from the cache or the store.
type nodeSource struct {
	st    store.Store
	cache *tileCache
	edges map[tileKey]*tiles.Expanded // partial tiles at the right edge of the snapshot
}

// tile returns the expanded tile (level, index): from the snapshot's edge,
// the cache, or the store (full tiles only; those are cached).
func (s *nodeSource) tile(ctx context.Context, k tileKey) (*tiles.Expanded, error) {
	if t, ok := s.edges[k]; ok {
		return t, nil
	}
	if t := s.cache.get(k); t != nil {
		return t, nil
	}
	data, err := s.st.Tile(ctx, k.level, k.index)
	if err != nil {
		return nil, fmt.Errorf("reading tile %d/%d: %w", k.level, k.index, err)
	}
	if len(data) != tileWidth*hashSize {
		return nil, fmt.Errorf("reading tile %d/%d: stored tile has %d bytes, want a full tile of %d", k.level, k.index, len(data), tileWidth*hashSize)
	}
	t := tiles.Expand(data)
	s.cache.put(k, t)
	return t, nil
}

// node returns the hash of the complete node id.
func (s *nodeSource) node(ctx context.Context, id compact.NodeID) ([]byte, error) {
	L := id.Level / tileHeight
	r := id.Level % tileHeight
	pos := id.Index << r // first position at tile level L
	k := tileKey{level: uint8(L), index: pos / tileWidth}
	t, err := s.tile(ctx, k)
	if err != nil {
		return nil, err
	}
	h, ok := t.Node(uint8(r), (pos%tileWidth)>>r)
	if !ok {
		return nil, fmt.Errorf("node %d/%d is not in tile %d/%d (width %d)", id.Level, id.Index, k.level, k.index, t.Width())
	}
	return h[:], nil
}

// nodes returns the hashes of ids, in order.
func (s *nodeSource) nodes(ctx context.Context, ids []compact.NodeID) ([][]byte, error) {
	out := make([][]byte, len(ids))
	for i, id := range ids {
		h, err := s.node(ctx, id)
		if err != nil {
			return nil, err
		}
		out[i] = h
	}
	return out, nil
}
