package sampleindex

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ProofKind says what a [MapProof] proves.
type ProofKind uint8

const (
	// AbsentEmpty proves the key is not in the map: its path ends in an
	// empty subtree.
	AbsentEmpty ProofKind = 0
	// Member proves the key is in the map with the proof's List.
	Member ProofKind = 1
	// AbsentOther proves the key is not in the map: its path ends in a
	// subtree holding only another key, OtherKey.
	AbsentOther ProofKind = 2
)

func (k ProofKind) String() string {
	switch k {
	case AbsentEmpty:
		return "absence (empty subtree)"
	case Member:
		return "membership"
	case AbsentOther:
		return "absence (another key's leaf)"
	}
	return fmt.Sprintf("ProofKind(%d)", uint8(k))
}

// MapProof is the proof that a key has a given list state in the map with
// a given root, or is not in it. The key's path from the root goes down
// len(Siblings) levels, to the first node holding at most one key: that
// node is the key's leaf (Member), empty (AbsentEmpty) or another key's
// leaf (AbsentOther).
type MapProof struct {
	Key Hash
	// Siblings[i] is the sibling of the path node at depth i+1, top
	// down; EmptyMapRoot for an empty sibling. At most 256.
	Siblings []Hash
	Kind     ProofKind
	// List is the key's list state (Member only; Size ≥ 1).
	List ListState
	// OtherKey and Other are the other key's leaf (AbsentOther only):
	// OtherKey differs from Key but shares its first len(Siblings) bits.
	OtherKey Hash
	Other    ListState
}

// ErrBadMapProof is wrapped by the errors of [MapProof.Root] and
// [MapProof.Verify] for proofs that cannot be right whatever the root.
var ErrBadMapProof = errors.New("invalid map proof")

// Root returns the map root the proof leads to, after checking that the
// proof is well formed: depth at most 256, a non-empty list for a leaf,
// another key that differs from Key but shares its path, and a last
// sibling that is not empty (a node at depth d ≥ 1 holding at most one
// key has a parent holding two or more). Errors wrap [ErrBadMapProof].
func (p *MapProof) Root() (Hash, error) {
	d := len(p.Siblings)
	if d > 256 {
		return Hash{}, fmt.Errorf("%w: depth %d, more than 256", ErrBadMapProof, d)
	}
	if d > 0 && p.Siblings[d-1] == EmptyMapRoot {
		return Hash{}, fmt.Errorf("%w: the sibling at the proof's last depth %d is empty, so the path should have stopped above", ErrBadMapProof, d)
	}
	var h Hash
	switch p.Kind {
	case AbsentEmpty:
		h = EmptyMapRoot
	case Member:
		if p.List.Size == 0 {
			return Hash{}, fmt.Errorf("%w: membership of a key with an empty list", ErrBadMapProof)
		}
		h = MapLeafHash(p.Key, p.List.Size, p.List.Root)
	case AbsentOther:
		if p.OtherKey == p.Key {
			return Hash{}, fmt.Errorf("%w: absence proved by the leaf of the same key %x", ErrBadMapProof, p.Key[:])
		}
		if cp := commonPrefix(&p.Key, &p.OtherKey); cp < d {
			return Hash{}, fmt.Errorf("%w: other key %x shares %d bits with key %x, not the %d bits of the proof's path", ErrBadMapProof, p.OtherKey[:], cp, p.Key[:], d)
		}
		if p.Other.Size == 0 {
			return Hash{}, fmt.Errorf("%w: another key's leaf with an empty list", ErrBadMapProof)
		}
		h = MapLeafHash(p.OtherKey, p.Other.Size, p.Other.Root)
	default:
		return Hash{}, fmt.Errorf("%w: unknown kind %d", ErrBadMapProof, p.Kind)
	}
	for i := d - 1; i >= 0; i-- {
		if bit(&p.Key, i) == 0 {
			h = MapNodeHash(h, p.Siblings[i])
		} else {
			h = MapNodeHash(p.Siblings[i], h)
		}
	}
	return h, nil
}

// ErrMapRootMismatch is wrapped by [MapProof.Verify] when the proof leads
// to another root than the trusted one, and by [Verify] likewise.
var ErrMapRootMismatch = errors.New("map proof does not match the checkpoint's map root")

// Verify checks that the proof leads to root. Errors wrap
// [ErrBadMapProof] or [ErrMapRootMismatch].
func (p *MapProof) Verify(root Hash) error {
	got, err := p.Root()
	if err != nil {
		return err
	}
	if got != root {
		return fmt.Errorf("%w: the %s proof of key %x leads to root %x, the checkpoint commits %x", ErrMapRootMismatch, p.Kind, p.Key[:], got[:], root[:])
	}
	return nil
}

// appendMapProof appends the encoding of p without its key and without
// the member's list state (the enclosing proof carries them):
//
//	depth     uint16 big-endian, 0..256
//	bitmap    ceil(depth/8) bytes; bit i (most significant first) set iff
//	          Siblings[i] is not empty; padding bits zero
//	siblings  the non-empty siblings, 32 bytes each, top down
//	kind      1 byte: 0 AbsentEmpty, 1 Member, 2 AbsentOther
//	other     AbsentOther only: key (32), list size (uint64 BE), list root (32)
func appendMapProof(b []byte, p *MapProof) []byte {
	d := len(p.Siblings)
	b = binary.BigEndian.AppendUint16(b, uint16(d))
	bm := make([]byte, (d+7)/8)
	for i, s := range p.Siblings {
		if s != EmptyMapRoot {
			bm[i/8] |= 0x80 >> (i % 8)
		}
	}
	b = append(b, bm...)
	for _, s := range p.Siblings {
		if s != EmptyMapRoot {
			b = append(b, s[:]...)
		}
	}
	b = append(b, byte(p.Kind))
	if p.Kind == AbsentOther {
		b = append(b, p.OtherKey[:]...)
		b = binary.BigEndian.AppendUint64(b, p.Other.Size)
		b = append(b, p.Other.Root[:]...)
	}
	return b
}

// parseMapProof parses what appendMapProof writes, strictly, into p.
func parseMapProof(r *reader, p *MapProof) {
	d := int(r.u16("map proof depth"))
	if r.err != nil {
		return
	}
	if d > 256 {
		r.fail("map proof depth %d is more than 256", d)
		return
	}
	bm := r.bytes((d+7)/8, "map proof bitmap")
	if r.err != nil {
		return
	}
	if d%8 != 0 && bm[len(bm)-1]&(0xff>>(d%8)) != 0 {
		r.fail("map proof bitmap has padding bits set")
		return
	}
	p.Siblings = make([]Hash, d)
	for i := range p.Siblings {
		if bm[i/8]&(0x80>>(i%8)) != 0 {
			p.Siblings[i] = r.hash("map proof sibling")
			if r.err == nil && p.Siblings[i] == EmptyMapRoot {
				r.fail("map proof sibling %d is the empty hash but marked non-empty", i)
			}
		}
	}
	p.Kind = ProofKind(r.u8("map proof kind"))
	if r.err != nil {
		return
	}
	switch p.Kind {
	case AbsentEmpty, Member:
	case AbsentOther:
		p.OtherKey = r.hash("other key")
		p.Other.Size = r.u64("other list size")
		p.Other.Root = r.hash("other list root")
		if r.err == nil && p.Other.Size == 0 {
			r.fail("other key's list size is 0")
		}
	default:
		r.fail("unknown map proof kind %d", p.Kind)
	}
}

// reader reads a binary encoding and records the first error.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("at byte %d: "+format, append([]any{r.off}, args...)...)
	}
}

func (r *reader) bytes(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b)-r.off < n {
		r.fail("%s: need %d bytes, %d left", what, n, len(r.b)-r.off)
		return nil
	}
	b := r.b[r.off : r.off+n]
	r.off += n
	return b
}

func (r *reader) u8(what string) uint8 {
	if b := r.bytes(1, what); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u16(what string) uint16 {
	if b := r.bytes(2, what); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (r *reader) u32(what string) uint32 {
	if b := r.bytes(4, what); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (r *reader) u64(what string) uint64 {
	if b := r.bytes(8, what); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (r *reader) hash(what string) Hash {
	if b := r.bytes(HashSize, what); b != nil {
		return Hash(b)
	}
	return Hash{}
}

func (r *reader) left() int { return len(r.b) - r.off }
