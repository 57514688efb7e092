package sampleindex

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
)

const (
	// Stride is the number of key bits one tile spans: a tile at depth d
	// (a multiple of Stride) holds the map nodes from depth d down to its
	// SlotsPerTile slots at depth d+Stride.
	Stride = 4
	// SlotsPerTile is the number of slots of a tile, 2^Stride.
	SlotsPerTile = 1 << Stride
	// MaxTileDepth is the depth of the deepest tile: two distinct keys
	// differ at bit 255 at the latest, so they are apart by depth 256.
	MaxTileDepth = 256 - Stride
	bitmapBytes  = SlotsPerTile / 8
)

// ErrMalformedTile is wrapped by every error of [CheckTile] and
// [ParseTileKey], and by the errors of [Map] methods that read a stored
// tile that does not parse.
var ErrMalformedTile = errors.New("malformed sample index tile")

// TileID names a tile: the subtree of the map at Depth bits (a multiple
// of [Stride], at most [MaxTileDepth]) whose keys start with the first
// Depth bits of Prefix. The bits of Prefix after Depth are zero, so equal
// tiles have equal TileIDs and a TileID can be a map key.
type TileID struct {
	Depth  uint8
	Prefix Hash
}

// tileIDOf returns the ID of the tile at depth holding key.
func tileIDOf(key *Hash, depth int) TileID {
	id := TileID{Depth: uint8(depth)}
	full := depth / 8
	copy(id.Prefix[:full], key[:full])
	if r := depth % 8; r != 0 {
		id.Prefix[full] = key[full] & (0xff << (8 - r))
	}
	return id
}

// slotOf returns the slot of key in a tile at depth.
func slotOf(key *Hash, depth int) int {
	s := 0
	for i := 0; i < Stride; i++ {
		s = s<<1 | bit(key, depth+i)
	}
	return s
}

// child returns the ID of the tile below slot s of id.
func (id TileID) child(s int) TileID {
	c := TileID{Depth: id.Depth + Stride, Prefix: id.Prefix}
	for i := 0; i < Stride; i++ {
		if s>>(Stride-1-i)&1 == 1 {
			d := int(id.Depth) + i
			c.Prefix[d/8] |= 0x80 >> (d % 8)
		}
	}
	return c
}

// parent returns the ID of the tile above id (id.Depth > 0).
func (id TileID) parent() TileID {
	p := id.Prefix
	return tileIDOf(&p, int(id.Depth)-Stride)
}

func (id TileID) valid() error {
	if int(id.Depth)%Stride != 0 || int(id.Depth) > MaxTileDepth {
		return fmt.Errorf("depth %d is not a multiple of %d from 0 to %d", id.Depth, Stride, MaxTileDepth)
	}
	if tileIDOf(&id.Prefix, int(id.Depth)) != id {
		return fmt.Errorf("prefix %x has bits set after depth %d", id.Prefix[:], id.Depth)
	}
	return nil
}

// Key returns the storage key of the tile: one byte of depth followed by
// the ceil(depth/8) bytes of the prefix (unused low bits zero). Keys sort
// by depth, then prefix.
func (id TileID) Key() []byte {
	n := (int(id.Depth) + 7) / 8
	k := make([]byte, 1+n)
	k[0] = id.Depth
	copy(k[1:], id.Prefix[:n])
	return k
}

// compareTileIDs orders tile IDs as their storage keys sort (depth, then
// prefix), without building the keys: the prefix bits after Depth are
// zero, so comparing whole prefixes is comparing the keys' bytes.
func compareTileIDs(a, b TileID) int {
	if a.Depth != b.Depth {
		return cmp.Compare(a.Depth, b.Depth)
	}
	return bytes.Compare(a.Prefix[:], b.Prefix[:])
}

// ParseTileKey parses a storage key made by [TileID.Key], strictly.
func ParseTileKey(key []byte) (TileID, error) {
	if len(key) == 0 {
		return TileID{}, fmt.Errorf("%w: empty tile key", ErrMalformedTile)
	}
	id := TileID{Depth: key[0]}
	if n := (int(id.Depth) + 7) / 8; len(key) != 1+n {
		return TileID{}, fmt.Errorf("%w: tile key %x has %d bytes, want %d for depth %d", ErrMalformedTile, key, len(key), 1+n, id.Depth)
	}
	copy(id.Prefix[:], key[1:])
	if err := id.valid(); err != nil {
		return TileID{}, fmt.Errorf("%w: tile key %x: %v", ErrMalformedTile, key, err)
	}
	return id, nil
}

// String returns "depth/hex prefix", for messages.
func (id TileID) String() string {
	n := (int(id.Depth) + 3) / 4
	return fmt.Sprintf("%d/%s", id.Depth, hex.EncodeToString(id.Prefix[:])[:n])
}

// Tile is one stored tile: its ID and its encoding, as specified in
// docs/sample-index.md and checked by [CheckTile].
type Tile struct {
	ID   TileID
	Data []byte
}

const (
	slotChild = 0x00
	slotLeaf  = 0x01
)

// leaf is one key's entry in a tile: committed (key, n, list root) and the
// uncommitted state needed to append to its list.
type leaf struct {
	key  Hash
	n    uint64
	last uint64 // log index of the list's last element
	rng  []Hash // compact range of the list, rangeLen(n) hashes
	hash Hash   // MapLeafHash(key, n, rangeRoot(rng))
}

func (l *leaf) rehash() { l.hash = MapLeafHash(l.key, l.n, rangeRoot(l.rng)) }

// slot is a non-empty slot of a tile: a leaf, or a child tile by its root.
type slot struct {
	idx   uint8
	leaf  *leaf // nil for a child tile
	child Hash  // the child tile's root (when leaf is nil)
	// sub is the child tile while the Map has it in its cache, once
	// looked up (nil: look it up); see Map.child.
	sub *tile
}

// tile is a decoded tile.
type tile struct {
	id    TileID
	slots []slot // non-empty slots, by increasing idx
	occ   uint16 // bit s set when slot s is used
	// stale has bit s set when slot s changed since root (and nodes) were
	// computed: only the nodes above those slots are recomputed.
	stale uint16
	// nodes holds the interior map nodes of the tile, kept for tiles with
	// at least nodesMinSlots slots (nil otherwise: a sparse tile is
	// rehashed whole, which costs about as much as one path). Heap
	// layout: level L (0 = the tile's root, 3 = pairs of slots) has 2^L
	// nodes, node i of level L at index 2^L-1+i, covering slots
	// [i*16>>L, (i+1)*16>>L).
	nodes *[SlotsPerTile - 1]Hash
	// hashed is set once root was computed: nodes are allocated at the
	// second rehash only, so a tile parsed, touched once and evicted
	// does not pay for them.
	hashed bool
	root   Hash
	dirty  bool   // changed since the last flush
	epoch  uint64 // the last Update that touched it
	up     *tile  // during an Update that touched it: the parent tile
}

// allSlots is the stale mask of a tile whose hashes were never computed.
const allSlots = 1<<SlotsPerTile - 1

// nodesMinSlots is the number of used slots from which a tile keeps its
// interior nodes.
const nodesMinSlots = 4

// find returns the position in t.slots of slot s, or of the first used
// slot after it (len(t.slots) if none).
func (t *tile) find(s int) int {
	return bits.OnesCount16(t.occ & uint16(1<<s-1))
}

// setSlot marks slot s used (after its slot was inserted at find(s)).
func (t *tile) setSlot(s int) { t.occ |= 1 << s }

// encode returns the tile's encoding.
func (t *tile) encode() []byte {
	n := bitmapBytes
	for _, s := range t.slots {
		if s.leaf != nil {
			n += 1 + HashSize + 16 + len(s.leaf.rng)*HashSize
		} else {
			n += 1 + HashSize
		}
	}
	b := make([]byte, bitmapBytes, n)
	for _, s := range t.slots {
		b[s.idx/8] |= 0x80 >> (s.idx % 8)
		if s.leaf == nil {
			b = append(b, slotChild)
			b = append(b, s.child[:]...)
			continue
		}
		b = append(b, slotLeaf)
		b = append(b, s.leaf.key[:]...)
		b = binary.BigEndian.AppendUint64(b, s.leaf.n)
		b = binary.BigEndian.AppendUint64(b, s.leaf.last)
		for _, h := range s.leaf.rng {
			b = append(b, h[:]...)
		}
	}
	return b
}

// CheckTile parses the encoding of tile id strictly and reports the first
// rule it breaks (docs/sample-index.md, "Tiles"); errors wrap
// [ErrMalformedTile]. fsck and the fuzz tests use it; a [Map] applies the
// same checks to every tile it reads.
func CheckTile(id TileID, data []byte) error {
	_, err := decodeTile(id, data)
	return err
}

func decodeTile(id TileID, data []byte) (*tile, error) {
	t, err := decodeTile1(id, data)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %v", ErrMalformedTile, id, err)
	}
	return t, nil
}

func decodeTile1(id TileID, data []byte) (*tile, error) {
	if err := id.valid(); err != nil {
		return nil, err
	}
	if len(data) < bitmapBytes {
		return nil, fmt.Errorf("%d bytes, shorter than the %d-byte slot bitmap", len(data), bitmapBytes)
	}
	t := &tile{id: id, stale: allSlots}
	bm, rest := data[:bitmapBytes], data[bitmapBytes:]
	count := 0
	for _, x := range bm {
		count += bits.OnesCount8(x)
	}
	if count == 0 {
		return nil, errors.New("no slot is used")
	}
	t.slots = make([]slot, 0, count)
	// One allocation for the leaves and one for their compact ranges.
	nl, nh := countLeaves(rest, count)
	leaves := make([]leaf, nl)
	hashes := make([]Hash, nh)
	for s := 0; s < SlotsPerTile; s++ {
		if bm[s/8]&(0x80>>(s%8)) == 0 {
			continue
		}
		if len(rest) < 1 {
			return nil, fmt.Errorf("slot %d: truncated before its kind byte", s)
		}
		kind := rest[0]
		rest = rest[1:]
		switch kind {
		case slotChild:
			if int(id.Depth)+Stride > MaxTileDepth {
				return nil, fmt.Errorf("slot %d: a child tile below depth %d, deeper than %d", s, id.Depth, MaxTileDepth)
			}
			if len(rest) < HashSize {
				return nil, fmt.Errorf("slot %d: child hash truncated (%d bytes)", s, len(rest))
			}
			c := Hash(rest[:HashSize])
			rest = rest[HashSize:]
			if c == EmptyMapRoot {
				return nil, fmt.Errorf("slot %d: child tile root is the empty hash", s)
			}
			t.slots = append(t.slots, slot{idx: uint8(s), child: c})
			t.setSlot(s)
		case slotLeaf:
			if len(rest) < HashSize+16 {
				return nil, fmt.Errorf("slot %d: leaf truncated (%d bytes)", s, len(rest))
			}
			var l *leaf
			if len(leaves) > 0 {
				l, leaves = &leaves[0], leaves[1:]
			} else {
				l = new(leaf)
			}
			l.key = Hash(rest[:HashSize])
			l.n = binary.BigEndian.Uint64(rest[HashSize:])
			l.last = binary.BigEndian.Uint64(rest[HashSize+8:])
			rest = rest[HashSize+16:]
			if l.n == 0 {
				return nil, fmt.Errorf("slot %d: leaf with an empty list", s)
			}
			if l.last < l.n-1 {
				return nil, fmt.Errorf("slot %d: leaf list of %d elements whose last index is %d", s, l.n, l.last)
			}
			if tileIDOf(&l.key, int(id.Depth)) != id || slotOf(&l.key, int(id.Depth)) != s {
				return nil, fmt.Errorf("slot %d: leaf key %x does not belong in this slot", s, l.key[:])
			}
			r := rangeLen(l.n)
			if len(rest) < r*HashSize {
				return nil, fmt.Errorf("slot %d: list range of %d hashes truncated (%d bytes)", s, r, len(rest))
			}
			if len(hashes) >= r {
				l.rng, hashes = hashes[:r:r], hashes[r:]
			} else {
				l.rng = make([]Hash, r)
			}
			for i := range l.rng {
				l.rng[i] = Hash(rest[i*HashSize:])
			}
			rest = rest[r*HashSize:]
			l.rehash()
			t.slots = append(t.slots, slot{idx: uint8(s), leaf: l})
			t.setSlot(s)
		default:
			return nil, fmt.Errorf("slot %d: unknown kind byte 0x%02x", s, kind)
		}
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%d trailing bytes", len(rest))
	}
	if id.Depth > 0 && len(t.slots) == 1 && t.slots[0].leaf != nil {
		return nil, errors.New("a tile below the root holding a single key")
	}
	return t, nil
}

// countLeaves returns the number of leaves of the first count slots of a
// tile's slot data, and the number of hashes of their compact ranges,
// stopping at the first slot that does not parse (decodeTile1 reports
// it).
func countLeaves(rest []byte, count int) (leaves, hashes int) {
	for range count {
		if len(rest) < 1 {
			return
		}
		kind := rest[0]
		rest = rest[1:]
		switch kind {
		case slotChild:
			if len(rest) < HashSize {
				return
			}
			rest = rest[HashSize:]
		case slotLeaf:
			if len(rest) < HashSize+16 {
				return
			}
			r := rangeLen(binary.BigEndian.Uint64(rest[HashSize:]))
			rest = rest[HashSize+16:]
			if len(rest) < r*HashSize {
				return
			}
			rest = rest[r*HashSize:]
			leaves++
			hashes += r
		default:
			return
		}
	}
	return
}

// slotHash returns the map node of slot s alone: the leaf's hash, the
// child tile's root, or the empty hash.
func (t *tile) slotHash(s int) Hash {
	if t.occ&(1<<s) == 0 {
		return EmptyMapRoot
	}
	sl := &t.slots[t.find(s)]
	if sl.leaf != nil {
		return sl.leaf.hash
	}
	return sl.child
}

// rehash recomputes the tile's root (and its kept interior nodes) after
// the slots in t.stale changed, counting the hashes it computes in *n.
func (t *tile) rehash(n *int) {
	if t.stale == 0 {
		return
	}
	if t.nodes == nil && t.hashed && len(t.slots) >= nodesMinSlots {
		t.nodes = new([SlotsPerTile - 1]Hash)
		t.stale = allSlots
	}
	t.hashed = true
	if t.nodes == nil {
		t.root = t.hashRange(0, SlotsPerTile, n)
		t.stale = 0
		return
	}
	for level := Stride - 1; level >= 0; level-- {
		width := SlotsPerTile >> level
		for i := range 1 << level {
			lo := i * width
			mask := uint16((1<<width - 1) << lo)
			if t.stale&mask == 0 {
				continue
			}
			var h Hash
			switch used := t.occ & mask; {
			case used == 0:
				h = EmptyMapRoot
			case used&(used-1) == 0 && t.slots[t.find(lo)].leaf != nil:
				h = t.slots[t.find(lo)].leaf.hash
			default:
				var l, r Hash
				if level == Stride-1 {
					l, r = t.slotHash(lo), t.slotHash(lo+1)
				} else {
					c := 1<<(level+1) - 1 + 2*i
					l, r = t.nodes[c], t.nodes[c+1]
				}
				*n++
				h = MapNodeHash(l, r)
			}
			t.nodes[1<<level-1+i] = h
		}
	}
	t.root = t.nodes[0]
	t.stale = 0
}

// nodeHash returns the map node covering slots [lo, hi) of t (hi-lo a
// power of two), from the kept nodes when they are current, counting the
// hashes it computes in *n.
func (t *tile) nodeHash(lo, hi int, n *int) Hash {
	if t.nodes == nil || t.stale != 0 {
		return t.hashRange(lo, hi, n)
	}
	w := hi - lo
	if w == 1 {
		return t.hashRange(lo, hi, n)
	}
	level := Stride - bits.Len(uint(w)) + 1
	return t.nodes[1<<level-1+lo/w]
}

// hashRange returns the map node covering slots [lo, hi) of t (hi-lo a
// power of two), counting the hashes it computes in *n.
func (t *tile) hashRange(lo, hi int, n *int) Hash {
	i := t.find(lo)
	j := t.find(hi)
	switch {
	case i == j:
		return EmptyMapRoot
	case j == i+1 && t.slots[i].leaf != nil:
		return t.slots[i].leaf.hash
	case hi-lo == 1:
		return t.slots[i].child
	}
	mid := (lo + hi) / 2
	*n++
	return MapNodeHash(t.hashRange(lo, mid, n), t.hashRange(mid, hi, n))
}
