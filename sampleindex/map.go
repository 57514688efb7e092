package sampleindex

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
)

// TileReader reads stored tiles. The store implements it.
type TileReader interface {
	// ReadTiles returns the data of each tile of ids that is stored. A
	// tile that is not stored MUST be absent from the result (that is not
	// an error); an error means the store could not answer. The returned
	// data must not be modified afterwards (the Map keeps no reference to
	// it after parsing).
	ReadTiles(ctx context.Context, ids []TileID) (map[TileID][]byte, error)
}

// Change is one log entry as the index sees it: the key of its sample
// ([KeyOf]), its log index and its RFC 6962 leaf hash ([EntryLeafHash]).
type Change struct {
	Key      Hash
	Index    uint64
	LeafHash Hash
}

// Value is what the map holds for a key: the committed list state and the
// log index of the list's last element (not committed).
type Value struct {
	List ListState
	Last uint64
}

// Options tune a [Map]'s memory use. The zero value gives the defaults.
type Options struct {
	// CacheTiles bounds the number of clean (flushed) tiles kept parsed in
	// memory; dirty tiles are always kept until flushed. Default 65536.
	// Beyond it the deepest clean tiles go first, the oldest first among
	// tiles of one depth: a shallower tile lies on the paths of more keys.
	CacheTiles int
	// PinnedDepth: tiles above this depth (in bits) are never evicted.
	// Default 12 (the root tile and the 16+256 tiles below it).
	PinnedDepth int
}

// Stats counts a Map's work since it was opened, for benchmarks and
// metrics.
type Stats struct {
	Hashes       uint64 // map node and leaf hashes computed
	TilesRead    uint64 // tiles read from the TileReader
	TilesFlushed uint64 // tiles handed to Flush's write
	BytesFlushed uint64 // bytes of those tiles
}

// Map is the sample index of a log of a given size: an authenticated map
// from sample key to list state, kept as tiles in a [TileReader] and in a
// bounded cache. Its methods are safe for concurrent use; they serialise.
//
// A Map is derived data: if Flush's write fails, or the process stops with
// dirty tiles, the caller opens a new Map on the stored tiles (at the size
// they were flushed at) and replays the entries after that size.
type Map struct {
	mu         sync.Mutex
	r          TileReader
	size       uint64
	opts       Options
	tiles      map[TileID]*tile
	noRoot     bool    // the store is known to hold no root tile
	dirtyTiles []*tile // the tiles with dirty set
	epoch      uint64  // number of Updates, to mark the tiles one touches
	stats      Stats
	scratch    []TileID
	// evictq holds, per tile depth / Stride, the clean unpinned tiles in
	// the order they became clean (loaded or flushed), for evict; an
	// entry may be stale (the tile evicted or dirty since): evict skips
	// it. queued counts the entries.
	evictq [MaxTileDepth/Stride + 1][]TileID
	queued int
}

// Open returns the Map whose tiles r holds, covering the first size
// entries of the log (the size its tiles were last flushed at; 0 for a new
// log). It reads nothing until used.
func Open(r TileReader, size uint64, opts *Options) *Map {
	m := &Map{r: r, size: size, tiles: make(map[TileID]*tile)}
	if opts != nil {
		m.opts = *opts
	}
	if m.opts.CacheTiles <= 0 {
		m.opts.CacheTiles = 65536
	}
	if m.opts.PinnedDepth <= 0 {
		m.opts.PinnedDepth = 12
	}
	return m
}

// Size returns the number of log entries the map covers: the size of the
// checkpoint whose map root [Map.Root] is.
func (m *Map) Size() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.size
}

// Stats returns the work counters.
func (m *Map) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}

// Root returns the map root over the first Size entries of the log: the
// value of the checkpoint's index line.
func (m *Map) Root(ctx context.Context) (Hash, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, err := m.rootTile(ctx)
	if err != nil || t == nil {
		return EmptyMapRoot, err
	}
	return m.tileRoot(t), nil
}

func (m *Map) tileRoot(t *tile) Hash {
	if t.stale != 0 {
		n := 0
		t.rehash(&n)
		m.stats.Hashes += uint64(n)
	}
	return t.root
}

// rootTile returns the root tile, or nil for the empty map.
func (m *Map) rootTile(ctx context.Context) (*tile, error) {
	id := TileID{}
	if t := m.tiles[id]; t != nil {
		return t, nil
	}
	if m.noRoot {
		return nil, nil
	}
	if err := m.load(ctx, []TileID{id}); err != nil {
		return nil, err
	}
	t := m.tiles[id]
	if t == nil {
		m.noRoot = true
	}
	return t, nil
}

// load reads and parses the tiles ids (not cached); a tile the store does
// not hold is left out.
func (m *Map) load(ctx context.Context, ids []TileID) error {
	got, err := m.r.ReadTiles(ctx, ids)
	if err != nil {
		return fmt.Errorf("sampleindex: reading %d tiles (first %s): %w", len(ids), ids[0], err)
	}
	for _, id := range ids {
		data, ok := got[id]
		if !ok {
			continue
		}
		t, err := decodeTile(id, data)
		if err != nil {
			return fmt.Errorf("sampleindex: stored tile: %w (the stored index is damaged: rebuild it from the log)", err)
		}
		m.stats.TilesRead++
		m.tiles[id] = t
		m.queueEvict(id)
	}
	return nil
}

// queueEvict records that tile id became clean, for evict.
func (m *Map) queueEvict(id TileID) {
	if int(id.Depth) < m.opts.PinnedDepth {
		return
	}
	if m.queued > 2*len(m.tiles)+1024 {
		// Mostly stale entries (tiles flushed again and again without
		// the cache filling up): start over from the clean tiles.
		for d := range m.evictq {
			m.evictq[d] = m.evictq[d][:0]
		}
		m.queued = 0
		for id, t := range m.tiles {
			if !t.dirty && int(id.Depth) >= m.opts.PinnedDepth {
				m.evictq[id.Depth/Stride] = append(m.evictq[id.Depth/Stride], id)
				m.queued++
			}
		}
		return
	}
	m.evictq[id.Depth/Stride] = append(m.evictq[id.Depth/Stride], id)
	m.queued++
}

// resolve loads every stored tile on the paths of keys, level by level
// with one read per level.
func (m *Map) resolve(ctx context.Context, keys []Hash) error {
	if _, err := m.rootTile(ctx); err != nil {
		return err
	}
	pending := keys
	for len(pending) > 0 {
		need := m.scratch[:0]
		var next []Hash
		for i := range pending {
			k := &pending[i]
			t := m.tiles[TileID{}] // nil: the empty map
			for t != nil {
				sl := slotOf(k, int(t.id.Depth))
				j := t.find(sl)
				if j == len(t.slots) || int(t.slots[j].idx) != sl || t.slots[j].leaf != nil {
					break
				}
				c := m.child(t, j)
				if c == nil {
					need = append(need, t.id.child(sl))
					next = append(next, *k)
					break
				}
				t = c
			}
		}
		if len(need) == 0 {
			break
		}
		slices.SortFunc(need, compareTileIDs)
		need = slices.Compact(need)
		if err := m.load(ctx, need); err != nil {
			return err
		}
		for _, id := range need {
			if m.tiles[id] == nil {
				return fmt.Errorf("sampleindex: tile %s is referenced by its parent but not stored (the stored index is damaged: rebuild it from the log)", id)
			}
		}
		m.scratch = need[:0]
		pending = next
	}
	return nil
}

// Update applies changes, the entries appended to the log after Size, in
// log order: their indexes must be strictly increasing, the first one at
// least Size. Afterwards Size is the last index + 1 and Update returns the
// new map root. On error nothing is changed.
func (m *Map) Update(ctx context.Context, changes []Change) (Hash, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, c := range changes {
		if c.Index < m.size || (i > 0 && c.Index <= changes[i-1].Index) {
			return Hash{}, fmt.Errorf("sampleindex: change %d has index %d: indexes must be strictly increasing from the map size %d", i, c.Index, m.size)
		}
	}
	keys := make([]Hash, len(changes))
	for i := range changes {
		keys[i] = changes[i].Key
	}
	if err := m.resolve(ctx, keys); err != nil {
		return Hash{}, err
	}
	var stale []*tile
	m.epoch++
	touch := func(t, up *tile) {
		if t.epoch != m.epoch {
			t.epoch = m.epoch
			t.up = up
			stale = append(stale, t)
		}
		if !t.dirty {
			t.dirty = true
			m.dirtyTiles = append(m.dirtyTiles, t)
		}
	}
	for _, c := range changes {
		m.apply(&c, touch)
	}
	if len(changes) > 0 {
		m.size = changes[len(changes)-1].Index + 1
	}
	// Rehash the touched tiles deepest first, each into its parent's slot.
	slices.SortFunc(stale, func(a, b *tile) int { return cmp.Compare(b.id.Depth, a.id.Depth) })
	for _, t := range stale {
		r := m.tileRoot(t)
		if t.id.Depth == 0 {
			continue
		}
		p := t.up
		t.up = nil
		j := p.find(slotOf(&t.id.Prefix, int(p.id.Depth)))
		p.slots[j].child = r
	}
	root := EmptyMapRoot
	if t := m.tiles[TileID{}]; t != nil {
		root = m.tileRoot(t)
	}
	m.evict()
	return root, nil
}

// apply adds one change to the resolved tiles, calling touch on every
// tile it changes.
func (m *Map) apply(c *Change, touch func(t, up *tile)) {
	k := &c.Key
	id := TileID{}
	t := m.tiles[id]
	if t == nil {
		t = &tile{id: id, stale: allSlots}
		m.tiles[id] = t
		m.noRoot = false
	}
	var up *tile
	for {
		touch(t, up)
		d := int(t.id.Depth)
		s := slotOf(k, d)
		t.stale |= 1 << s
		j := t.find(s)
		if j == len(t.slots) || int(t.slots[j].idx) != s {
			l := &leaf{key: *k}
			l.add(c)
			m.stats.Hashes++
			t.slots = slices.Insert(t.slots, j, slot{idx: uint8(s), leaf: l})
			t.setSlot(s)
			return
		}
		sl := &t.slots[j]
		if sl.leaf != nil && sl.leaf.key == *k {
			sl.leaf.add(c)
			m.stats.Hashes++
			return
		}
		cid := t.id.child(s)
		if sl.leaf != nil {
			// Another key holds the slot: push it down into a new tile.
			// The leaf is copied: it may live in the leaves array of t.
			old := new(leaf)
			*old = *sl.leaf
			old.rng = slices.Clone(old.rng)
			sl.leaf = nil
			os := slotOf(&old.key, d+Stride)
			nt := &tile{id: cid, slots: []slot{{idx: uint8(os), leaf: old}}, stale: allSlots}
			nt.setSlot(os)
			m.tiles[cid] = nt
			sl.sub = nt
		}
		up, t = t, m.child(t, j)
	}
}

// child returns the cached tile below slot j of t (a child slot), or nil
// if it is not in the cache. The slot keeps the pointer; evict clears it.
func (m *Map) child(t *tile, j int) *tile {
	sl := &t.slots[j]
	if sl.sub == nil {
		sl.sub = m.tiles[t.id.child(int(sl.idx))]
	}
	return sl.sub
}

// uncache removes tile t from the cache, and its parent's pointer to it.
func (m *Map) uncache(t *tile) {
	delete(m.tiles, t.id)
	if t.id.Depth == 0 {
		return
	}
	p := m.tiles[t.id.parent()]
	if p == nil {
		return
	}
	s := slotOf(&t.id.Prefix, int(p.id.Depth))
	if j := p.find(s); j < len(p.slots) && int(p.slots[j].idx) == s && p.slots[j].sub == t {
		p.slots[j].sub = nil
	}
}

// add appends a change to the leaf's list.
func (l *leaf) add(c *Change) {
	l.rng = rangeAppend(l.rng, l.n, ListLeafHash(c.Index, c.LeafHash))
	l.n++
	l.last = c.Index
	l.rehash()
}

// evict drops clean unpinned tiles beyond the cache bound, deepest
// first, oldest first within a depth.
func (m *Map) evict() {
	excess := len(m.tiles) - len(m.dirtyTiles) - m.opts.CacheTiles
	for d := len(m.evictq) - 1; d >= 0 && excess > 0; d-- {
		q := m.evictq[d]
		i := 0
		for ; i < len(q) && excess > 0; i++ {
			if t := m.tiles[q[i]]; t != nil && !t.dirty {
				m.uncache(t)
				excess--
			}
		}
		m.queued -= i
		m.evictq[d] = q[i:]
	}
}

// Dirty returns the tiles changed since the last successful Flush,
// encoded, sorted by storage key. It changes nothing.
func (m *Map) Dirty() []Tile {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.dirty()
}

func (m *Map) dirty() []Tile {
	out := make([]Tile, 0, len(m.dirtyTiles))
	for _, t := range m.dirtyTiles {
		out = append(out, Tile{ID: t.id, Data: t.encode()})
	}
	slices.SortFunc(out, func(a, b Tile) int { return compareTileIDs(a.ID, b.ID) })
	return out
}

// Flush calls write with the map size and the dirty tiles (as Dirty
// returns them); when write succeeds the tiles are clean. write must store
// all the tiles and the size atomically (one transaction): the stored
// tiles are then the map of the first size entries. If write fails, Flush
// returns its error and the tiles stay dirty.
func (m *Map) Flush(ctx context.Context, write func(ctx context.Context, size uint64, tiles []Tile) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	ts := m.dirty()
	if err := write(ctx, m.size, ts); err != nil {
		return fmt.Errorf("sampleindex: writing %d tiles at size %d: %w", len(ts), m.size, err)
	}
	for _, t := range m.dirtyTiles {
		t.dirty = false
		m.queueEvict(t.id)
	}
	for _, t := range ts {
		m.stats.TilesFlushed++
		m.stats.BytesFlushed += uint64(len(t.Data))
	}
	m.dirtyTiles = m.dirtyTiles[:0]
	m.evict()
	return nil
}

// Value returns the list state of key, and false if the key is not in the
// map.
func (m *Map) Value(ctx context.Context, key Hash) (Value, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.resolve(ctx, []Hash{key}); err != nil {
		return Value{}, false, err
	}
	defer m.evict()
	t := m.tiles[TileID{}]
	for {
		if t == nil {
			return Value{}, false, nil
		}
		s := slotOf(&key, int(t.id.Depth))
		j := t.find(s)
		if j == len(t.slots) || int(t.slots[j].idx) != s {
			return Value{}, false, nil
		}
		if l := t.slots[j].leaf; l != nil {
			if l.key != key {
				return Value{}, false, nil
			}
			return Value{List: ListState{Size: l.n, Root: rangeRoot(l.rng)}, Last: l.last}, true, nil
		}
		t = m.child(t, j)
	}
}

// Prove returns the map proof for key against the current root: membership
// with the key's list state, or absence.
func (m *Map) Prove(ctx context.Context, key Hash) (*MapProof, error) {
	p, _, err := m.proveAt(ctx, key)
	return p, err
}

// proveAt is Prove, also returning the map size the proof is for.
func (m *Map) proveAt(ctx context.Context, key Hash) (*MapProof, uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, err := m.prove(ctx, key)
	return p, m.size, err
}

func (m *Map) prove(ctx context.Context, key Hash) (*MapProof, error) {
	if err := m.resolve(ctx, []Hash{key}); err != nil {
		return nil, err
	}
	defer m.evict()
	p := &MapProof{Key: key}
	t := m.tiles[TileID{}]
	if t == nil {
		p.Kind = AbsentEmpty
		return p, nil
	}
	for {
		lo, hi := 0, SlotsPerTile
		d := int(t.id.Depth)
		for {
			i, j := t.find(lo), t.find(hi)
			if i == j {
				p.Kind = AbsentEmpty
				return p, nil
			}
			if j == i+1 && t.slots[i].leaf != nil {
				l := t.slots[i].leaf
				if l.key == key {
					p.Kind = Member
					p.List = ListState{Size: l.n, Root: rangeRoot(l.rng)}
				} else {
					p.Kind = AbsentOther
					p.OtherKey = l.key
					p.Other = ListState{Size: l.n, Root: rangeRoot(l.rng)}
				}
				return p, nil
			}
			if hi-lo == 1 {
				break // a child tile
			}
			mid := (lo + hi) / 2
			n := 0
			if bit(&key, d) == 0 {
				p.Siblings = append(p.Siblings, t.nodeHash(mid, hi, &n))
				hi = mid
			} else {
				p.Siblings = append(p.Siblings, t.nodeHash(lo, mid, &n))
				lo = mid
			}
			m.stats.Hashes += uint64(n)
			d++
		}
		t = m.child(t, t.find(lo))
	}
}
