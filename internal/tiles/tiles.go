// Package tiles is custody's one implementation of the RFC 6962 Merkle tree
// stored as c2sp.org/tlog-tiles hash tiles.
//
// A tree of n leaves is stored as tiles of height 8: tile level 0 holds the
// leaf hashes, 256 to a tile; tile level L holds the hashes of the perfect
// subtrees of 256^L leaves. Tile (L, N) holds hashes N*256 to N*256+255 of
// its level. A tile that holds fewer than 256 hashes is partial; in a tree
// of size n only the rightmost tile of each level can be partial, and its
// width is [PartialWidth].
//
// [Builder] appends leaf hashes and yields every tile it completes or
// extends, and the root; [Resume] rebuilds a Builder from a tree's
// right-edge tiles alone (at most one partial tile per level), which is how
// a writer restarts and how a follower catches up without reading every
// entry. [SubtreeRoot], [FoldRoot], [AppendLeaf] (a compact range without
// allocation), [MemTree] (a small tree held whole, with its inclusion
// paths) and [RootFromPath] are the only subtree-root and inclusion-path
// code in custody: the sequencer, fsck, copy, mirror, the verifier, sites'
// attestations and the sample index's lists all call this package.
//
// The package depends on the standard library and
// github.com/transparency-dev/merkle only. Its results are checked against
// golang.org/x/mod/sumdb/tlog for every tile boundary.
package tiles

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
)

const (
	// Height is the number of tree levels one tile spans.
	Height = 8
	// Width is the number of hashes in a full tile, 2^Height.
	Width = 1 << Height
	// HashSize is the size of a SHA-256 hash.
	HashSize = sha256.Size
	// Levels is the number of tile levels a tree of up to 2^64-1 leaves
	// can have (levels 0 to Levels-1).
	Levels = 64 / Height
)

// Hash is a SHA-256 digest: a leaf hash, an interior node hash or a root.
type Hash = [HashSize]byte

// EmptyRoot is the root of the empty tree, SHA-256 of the empty string
// (RFC 6962 §2.1).
var EmptyRoot = Hash(sha256.Sum256(nil))

// LeafHash returns the RFC 6962 leaf hash of entry data: SHA-256(0x00 || data).
func LeafHash(data []byte) Hash {
	if len(data) <= 64 { // an identity, a list element: one buffer on the stack
		var buf [1 + 64]byte
		copy(buf[1:], data)
		return sha256.Sum256(buf[:1+len(data)])
	}
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(data)
	var out Hash
	h.Sum(out[:0])
	return out
}

// NodeHash returns the RFC 6962 interior node hash SHA-256(0x01 || l || r).
func NodeHash(l, r Hash) Hash {
	var buf [1 + 2*HashSize]byte
	buf[0] = 1
	copy(buf[1:], l[:])
	copy(buf[1+HashSize:], r[:])
	return sha256.Sum256(buf[:])
}

// SubtreeRoot returns the root of the perfect tree whose lowest level is hs.
// len(hs) must be a power of two (1 to 2^63); otherwise it panics. hs is
// not modified.
func SubtreeRoot(hs []Hash) Hash {
	checkPow2(len(hs))
	if len(hs) == 1 {
		return hs[0]
	}
	level := make([]Hash, len(hs)/2)
	for i := range level {
		level[i] = NodeHash(hs[2*i], hs[2*i+1])
	}
	return SubtreeRootInPlace(level)
}

// SubtreeRootInPlace is SubtreeRoot without allocating: it overwrites hs.
func SubtreeRootInPlace(hs []Hash) Hash {
	checkPow2(len(hs))
	for len(hs) > 1 {
		for i := 0; i < len(hs)/2; i++ {
			hs[i] = NodeHash(hs[2*i], hs[2*i+1])
		}
		hs = hs[:len(hs)/2]
	}
	return hs[0]
}

func checkPow2(n int) {
	if n == 0 || n&(n-1) != 0 {
		panic(fmt.Sprintf("tiles: subtree root of %d hashes, not a power of two", n))
	}
}

// FoldRoot returns the root of a tree from the roots of its perfect
// subtrees, left (largest) to right: the rightmost two are combined first,
// as RFC 6962 defines the root of a tree whose size is not a power of two.
// No hashes means the empty tree, EmptyRoot.
func FoldRoot(hs []Hash) Hash {
	if len(hs) == 0 {
		return EmptyRoot
	}
	r := hs[len(hs)-1]
	for i := len(hs) - 2; i >= 0; i-- {
		r = NodeHash(hs[i], r)
	}
	return r
}

// LevelSize returns the number of hashes stored at tile level in a tree of
// size leaves: size / 256^level.
func LevelSize(level uint8, size uint64) uint64 {
	shift := uint(level) * Height
	if shift >= 64 {
		return 0
	}
	return size >> shift
}

// PartialWidth returns the width of the rightmost tile of a level in a tree
// of size leaves when that tile is partial (1 to 255), and 0 when the level
// has no partial tile (it is empty or its last tile is full).
func PartialWidth(level uint8, size uint64) int {
	return int(LevelSize(level, size) % Width)
}

// EdgeIndex returns the index of the rightmost (possibly partial) tile of a
// level in a tree of size leaves: the tile that the next hash of that
// level goes into, or has gone into.
func EdgeIndex(level uint8, size uint64) uint64 {
	return LevelSize(level, size) / Width
}

// TileWidth returns how many hashes tile (level, index) holds in a tree of
// size leaves: Width for a full tile, 1 to 255 for the partial tile at the
// right edge, 0 for a tile the tree does not reach.
func TileWidth(level uint8, index, size uint64) int {
	n := LevelSize(level, size)
	if index > n/Width {
		return 0 // also keeps index*Width from overflowing
	}
	return int(min(n-index*Width, Width))
}

// TileCount returns how many tiles, full and partial, a tree of size leaves
// has over all levels. copy and fsck both report this number.
func TileCount(size uint64) uint64 {
	var n uint64
	for L := uint8(0); L < Levels; L++ {
		s := LevelSize(L, size)
		if s == 0 {
			break
		}
		n += (s + Width - 1) / Width
	}
	return n
}

// Tile is one hash tile: Width or fewer hashes, 32 bytes each, in Data.
type Tile struct {
	Level uint8
	Index uint64
	Data  []byte
}

var rangeFactory = &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}

// Builder computes a tree's root and hash tiles as leaf hashes are
// appended. It holds O(log n) hashes: the compact range of the tree and
// the partial tile of each level (at most 8 KiB a level). A Builder is not
// safe for concurrent use; [Builder.Clone] gives an independent copy.
//
// Tile data a Builder returns is never written to again by it or its
// clones, so callers may keep it without copying.
type Builder struct {
	rng   *compact.Range
	edges [Levels][]byte // each level's partial tile; nil when empty or full
}

// New returns a Builder for the empty tree.
func New() *Builder { return &Builder{rng: rangeFactory.NewEmptyRange(0)} }

// Resume returns a Builder for a tree of size leaves, given only its right
// edge: read is called once for each level whose rightmost tile is partial,
// with that tile's level, index and width, and returns the tile's data. The
// data may be longer than width hashes (a tile stored at a larger size);
// only the first width hashes are used. Full tiles are never read. The
// caller must compare Root with a trusted root: Resume cannot tell right
// hashes from wrong ones.
func Resume(size uint64, read func(level uint8, index uint64, width int) ([]byte, error)) (*Builder, error) {
	b := &Builder{}
	var hs [][]byte
	for L := int(Levels) - 1; L >= 0; L-- {
		level := uint8(L)
		w := PartialWidth(level, size)
		if w == 0 {
			continue
		}
		idx := EdgeIndex(level, size)
		data, err := read(level, idx, w)
		if err != nil {
			return nil, fmt.Errorf("reading right-edge tile %d/%d of a tree of size %d: %w", level, idx, size, err)
		}
		if len(data) < w*HashSize || len(data)%HashSize != 0 {
			return nil, fmt.Errorf("right-edge tile %d/%d of a tree of size %d: %d bytes, want %d hashes (%d bytes)", level, idx, size, len(data), w, w*HashSize)
		}
		d := make([]byte, w*HashSize, Width*HashSize)
		copy(d, data)
		b.edges[level] = d
		for _, r := range edgeRoots(hashesOf(d)) {
			hs = append(hs, r[:])
		}
	}
	rng, err := rangeFactory.NewRange(0, size, hs)
	if err != nil {
		return nil, fmt.Errorf("rebuilding a tree of size %d from its right edge: %w", size, err)
	}
	b.rng = rng
	return b, nil
}

// edgeRoots returns the roots of the perfect subtrees that a partial tile of
// len(hs) hashes contributes to the tree's compact range: the aligned
// groups of the binary expansion of its width, left (largest) to right.
func edgeRoots(hs []Hash) []Hash {
	var out []Hash
	off := 0
	for r := Height - 1; r >= 0; r-- {
		if len(hs)&(1<<r) == 0 {
			continue
		}
		out = append(out, SubtreeRoot(hs[off:off+1<<r]))
		off += 1 << r
	}
	return out
}

// RootFromEdges returns the root of a tree of size leaves from its
// partial right-edge tiles alone: edge returns the hashes of the partial
// tile of a level (called only for levels that have one, with exactly
// PartialWidth hashes expected; fewer is a caller's bug and panics).
func RootFromEdges(size uint64, edge func(level uint8) []Hash) Hash {
	var hs []Hash
	for L := int(Levels) - 1; L >= 0; L-- {
		w := PartialWidth(uint8(L), size)
		if w == 0 {
			continue
		}
		hs = append(hs, edgeRoots(edge(uint8(L))[:w])...)
	}
	return FoldRoot(hs)
}

// hashesOf splits tile data into hashes.
func hashesOf(data []byte) []Hash {
	hs := make([]Hash, len(data)/HashSize)
	for i := range hs {
		hs[i] = Hash(data[i*HashSize : (i+1)*HashSize])
	}
	return hs
}

// Size returns the number of leaves in the tree.
func (b *Builder) Size() uint64 { return b.rng.End() }

// Root returns the tree's RFC 6962 root: EmptyRoot for the empty tree.
func (b *Builder) Root() Hash {
	r, err := b.rng.GetRootHash(nil)
	if err != nil {
		panic(fmt.Sprintf("tiles: compact range does not start at 0: %v", err)) // invariant
	}
	if r == nil {
		return EmptyRoot
	}
	return Hash(r)
}

// Edge returns the data of the rightmost tile of level when it is partial,
// and nil when the level has no partial tile. The data must not be
// modified.
func (b *Builder) Edge(level uint8) []byte {
	if level >= Levels {
		return nil
	}
	d := b.edges[level]
	return d[:len(d):len(d)]
}

// Edges returns the partial tiles at the tree's right edge, lowest level
// first. Their data must not be modified.
func (b *Builder) Edges() []Tile {
	var out []Tile
	size := b.Size()
	for L := uint8(0); L < Levels; L++ {
		if d := b.edges[L]; len(d) > 0 {
			out = append(out, Tile{Level: L, Index: EdgeIndex(L, size), Data: d[:len(d):len(d)]})
		}
	}
	return out
}

// Clone returns an independent copy: appending to one does not change the
// other, and neither changes tile data either returned before.
func (b *Builder) Clone() *Builder {
	hs := b.rng.Hashes()
	cp := make([][]byte, len(hs))
	copy(cp, hs) // hashes are never written in place by compact.Range
	rng, err := rangeFactory.NewRange(b.rng.Begin(), b.rng.End(), cp)
	if err != nil {
		panic(fmt.Sprintf("tiles: cloning a valid range: %v", err)) // invariant
	}
	c := &Builder{rng: rng}
	for L, d := range b.edges {
		// Cap the shared slice at its length: the clone's first append
		// reallocates, and the original only ever writes past its length.
		c.edges[L] = d[:len(d):len(d)]
	}
	return c
}

// Append adds leaf hashes to the tree.
func (b *Builder) Append(leaves ...Hash) {
	if err := b.add(leaves, nil); err != nil {
		panic(err) // invariant, see add
	}
}

// AppendTiles adds leaf hashes to the tree and returns every tile they
// completed or extended, each with its whole data as of the new size, in
// level then index order: full tiles once, when they fill, and the
// partial tile of each level that grew.
func (b *Builder) AppendTiles(leaves []Hash) []Tile {
	var full [Levels][]Tile
	err := b.add(leaves, func(level uint8, t Tile) {
		full[level] = append(full[level], t)
	})
	if err != nil {
		panic(err) // invariant, see add
	}
	old := b.Size() - uint64(len(leaves))
	var out []Tile
	for L := uint8(0); L < Levels; L++ {
		if LevelSize(L, b.Size()) == LevelSize(L, old) {
			continue
		}
		out = append(out, full[L]...)
		if d := b.edges[L]; len(d) > 0 {
			out = append(out, Tile{Level: L, Index: EdgeIndex(L, b.Size()), Data: d[:len(d):len(d)]})
		}
	}
	return out
}

// add appends leaves, calling full for each tile that fills.
func (b *Builder) add(leaves []Hash, full func(level uint8, t Tile)) error {
	var err error
	visit := func(id compact.NodeID, hash []byte) {
		if id.Level%Height != 0 || err != nil {
			return
		}
		L := uint8(id.Level / Height)
		d := b.edges[L]
		if pos := id.Index % Width; uint64(len(d)/HashSize) != pos {
			err = fmt.Errorf("tiles: internal error: tile %d/%d: hash %d appended at width %d", L, id.Index/Width, pos, len(d)/HashSize)
			return
		}
		if d == nil {
			d = make([]byte, 0, Width*HashSize)
		}
		d = append(d, hash...)
		if len(d) == Width*HashSize {
			if full != nil {
				full(L, Tile{Level: L, Index: id.Index / Width, Data: d})
			}
			d = nil
		}
		b.edges[L] = d
	}
	for i := range leaves {
		if e := b.rng.Append(leaves[i][:], visit); e != nil {
			return fmt.Errorf("tiles: internal error: %w", e)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// ErrShortTile is wrapped by errors about tile data too short for the tree
// it is read for.
var ErrShortTile = errors.New("tile too short")

// Hashes returns hash i..j-1 of tile data, or an error wrapping
// ErrShortTile when data holds fewer than j hashes.
func Hashes(data []byte, i, j int) ([]Hash, error) {
	if j*HashSize > len(data) || i < 0 || i > j {
		return nil, fmt.Errorf("%w: %d bytes, want hashes %d to %d", ErrShortTile, len(data), i, j)
	}
	return hashesOf(data[i*HashSize : j*HashSize]), nil
}

// Expanded is one hash tile with every complete node inside it computed:
// the tile's own hashes (height 0) and the roots of each aligned run of
// 2^r of them (height r, 1 to Height-1). It is read-only once made, and
// safe for concurrent use.
type Expanded struct {
	levels [Height][]Hash
}

// Expand computes the interior nodes of tile data (a whole number of
// hashes, at most Width).
func Expand(data []byte) *Expanded {
	e := &Expanded{}
	e.levels[0] = hashesOf(data)
	for r := 1; r < Height; r++ {
		prev := e.levels[r-1]
		next := make([]Hash, len(prev)/2)
		for i := range next {
			next[i] = NodeHash(prev[2*i], prev[2*i+1])
		}
		e.levels[r] = next
	}
	return e
}

// Width returns the number of hashes in the tile.
func (e *Expanded) Width() int { return len(e.levels[0]) }

// Node returns the node of height r (0 to Height-1) above the tile's
// hashes at position i within the tile, and false when the tile is too
// narrow to hold it.
func (e *Expanded) Node(r uint8, i uint64) (Hash, bool) {
	if r >= Height || i >= uint64(len(e.levels[r])) {
		return Hash{}, false
	}
	return e.levels[r][i], true
}

// Root returns the root of a full tile (the hash stored for it one tile
// level up), and false for a partial tile.
func (e *Expanded) Root() (Hash, bool) {
	top := e.levels[Height-1]
	if len(top) != 2 {
		return Hash{}, false
	}
	return NodeHash(top[0], top[1]), true
}

// Data returns the first w hashes of the tile as tile data (a new slice).
func (e *Expanded) Data(w int) []byte {
	out := make([]byte, 0, w*HashSize)
	for _, h := range e.levels[0][:w] {
		out = append(out, h[:]...)
	}
	return out
}

// Range is a tree reduced to its root: the O(log n) hashes of the perfect
// subtrees of its leaves (a compact range), without tiles. Auditors use it
// to recompute a root from entries, append whole subtrees whose roots they
// already authenticated, and save and restore the state. The zero value is
// the empty tree.
type Range struct {
	r *compact.Range
}

// NewRange returns the Range of a tree of size leaves whose compact range
// is hashes: one per 1 bit of size, left (largest subtree) to right. It
// fails if the count does not match size. It cannot tell right hashes from
// wrong ones: compare Root with a trusted root.
func NewRange(size uint64, hashes []Hash) (*Range, error) {
	hs := make([][]byte, len(hashes))
	for i := range hashes {
		h := hashes[i]
		hs[i] = h[:]
	}
	r, err := rangeFactory.NewRange(0, size, hs)
	if err != nil {
		return nil, fmt.Errorf("tiles: a tree of size %d from %d hashes: %w", size, len(hashes), err)
	}
	return &Range{r: r}, nil
}

func (r *Range) rng() *compact.Range {
	if r.r == nil {
		r.r = rangeFactory.NewEmptyRange(0)
	}
	return r.r
}

// Append adds a leaf by its leaf hash.
func (r *Range) Append(leaf Hash) {
	if err := r.rng().Append(leaf[:], nil); err != nil {
		panic(fmt.Sprintf("tiles: Range.Append: %v", err)) // invariant: the range starts at 0
	}
}

// AppendSubtree adds the 2^height leaves of a perfect subtree by its root.
// The tree's size must be a multiple of 2^height; otherwise it panics.
func (r *Range) AppendSubtree(height uint, root Hash) {
	c := r.rng()
	begin := c.End()
	if height >= 64 || begin&(1<<height-1) != 0 {
		panic(fmt.Sprintf("tiles: subtree of height %d appended at %d", height, begin))
	}
	sub, err := rangeFactory.NewRange(begin, begin+1<<height, [][]byte{root[:]})
	if err == nil {
		err = c.AppendRange(sub, nil)
	}
	if err != nil {
		panic(fmt.Sprintf("tiles: Range.AppendSubtree: %v", err))
	}
}

// Size returns the number of leaves.
func (r *Range) Size() uint64 { return r.rng().End() }

// Root returns the tree's root: EmptyRoot for no leaves.
func (r *Range) Root() Hash {
	h, err := r.rng().GetRootHash(nil)
	if err != nil || len(h) != HashSize {
		return EmptyRoot
	}
	return Hash(h)
}

// Hashes returns the compact range: one hash per 1 bit of Size, left to
// right (what NewRange takes back).
func (r *Range) Hashes() []Hash {
	hs := r.rng().Hashes()
	out := make([]Hash, len(hs))
	for i, h := range hs {
		out[i] = Hash(h)
	}
	return out
}
