package sampleindex

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
)

// ProofHeader is the first line of every encoded [Proof].
const ProofHeader = "custody/sample-proof/v1\n"

// MaxEntrySize bounds the size of one entry in a proof (record entries are
// at most about 1.2 KiB).
const MaxEntrySize = 1 << 16

// Entry is one log entry of a sample's chain: its index in the log and its
// bytes.
type Entry struct {
	Index uint64
	Data  []byte
}

// Proof is a complete proof of a sample's chain of entries against a
// checkpoint of size Size whose map root is known: the sample's list state
// in the map (membership, or absence), the entries at or after Since, the
// proof that they are all the list's elements after the first OldSize, and
// their batch inclusion proof in the log tree. Its encoding is specified
// in docs/sample-index.md ("Proof format"); [Proof.Marshal] and
// [ParseProof] implement it.
type Proof struct {
	Sample string
	Size   uint64 // N, the checkpoint size
	Since  uint64 // M: only entries at index ≥ M are included; 0 for the whole chain
	List   ListState
	// OldSize is m, the number of list elements with an index below
	// Since (0 when Since is 0). When m > 0, OldLast is element m-1 and
	// OldRange the compact range of the first m-1 list leaves
	// (popcount(m-1) hashes, largest subtree first).
	OldSize  uint64
	OldLast  ListElement
	OldRange []Hash
	// Entries are the list elements m to n-1 with their bytes.
	Entries []Entry
	// Inclusion is the batch inclusion proof of Entries in the log tree
	// of size Size (see [VerifyBatchInclusion]).
	Inclusion []Hash
	// Map proves List (or absence, when List.Size is 0) for
	// KeyOf(Sample); its Key is set by ParseProof.
	Map MapProof
}

// ErrMalformedProof is wrapped by the errors of [ParseProof].
var ErrMalformedProof = errors.New("malformed sample proof")

// Marshal returns the proof's encoding. For every Proof ParseProof
// returns, Marshal returns exactly the parsed bytes.
func (p *Proof) Marshal() []byte {
	b := make([]byte, 0, 256+len(p.Entries)*300+32*(len(p.Inclusion)+len(p.Map.Siblings)+len(p.OldRange)))
	b = append(b, ProofHeader...)
	b = append(b, byte(len(p.Sample)))
	b = append(b, p.Sample...)
	b = binary.BigEndian.AppendUint64(b, p.Size)
	b = binary.BigEndian.AppendUint64(b, p.Since)
	b = binary.BigEndian.AppendUint64(b, p.List.Size)
	if p.List.Size > 0 {
		b = append(b, p.List.Root[:]...)
	}
	b = binary.BigEndian.AppendUint64(b, p.OldSize)
	if p.OldSize > 0 {
		b = binary.BigEndian.AppendUint64(b, p.OldLast.Index)
		b = append(b, p.OldLast.LeafHash[:]...)
		for _, h := range p.OldRange {
			b = append(b, h[:]...)
		}
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(p.Entries)))
	for _, e := range p.Entries {
		b = binary.BigEndian.AppendUint64(b, e.Index)
		b = binary.BigEndian.AppendUint32(b, uint32(len(e.Data)))
		b = append(b, e.Data...)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(p.Inclusion)))
	for _, h := range p.Inclusion {
		b = append(b, h[:]...)
	}
	return appendMapProof(b, &p.Map)
}

// ParseProof parses an encoded proof strictly: the exact header, a valid
// sample identifier, Since ≤ Size, list size ≤ Size, OldSize ≤ list size
// and 0 when Since is 0, an OldRange of exactly popcount(OldSize-1)
// hashes, entries of 1 to MaxEntrySize bytes, a map proof of depth ≤ 256
// with a canonical bitmap, whose kind is membership exactly when the list
// is not empty, and no trailing bytes. It checks no hash: use [Verify].
// Errors wrap [ErrMalformedProof].
func ParseProof(data []byte) (*Proof, error) {
	p, err := parseProof(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedProof, err)
	}
	return p, nil
}

func parseProof(data []byte) (*Proof, error) {
	r := &reader{b: data}
	if h := r.bytes(len(ProofHeader), "header"); h == nil || string(h) != ProofHeader {
		return nil, fmt.Errorf("does not start with %q", ProofHeader)
	}
	p := &Proof{}
	n := int(r.u8("sample length"))
	p.Sample = string(r.bytes(n, "sample"))
	if r.err != nil {
		return nil, r.err
	}
	if err := checkSample(p.Sample); err != nil {
		return nil, err
	}
	p.Map.Key = KeyOf(p.Sample)
	p.Size = r.u64("size")
	p.Since = r.u64("since")
	p.List.Size = r.u64("list size")
	if r.err != nil {
		return nil, r.err
	}
	if p.Since > p.Size {
		return nil, fmt.Errorf("since %d is beyond the size %d", p.Since, p.Size)
	}
	if p.List.Size > p.Size {
		return nil, fmt.Errorf("list size %d is more than the log size %d", p.List.Size, p.Size)
	}
	if p.List.Size > 0 {
		p.List.Root = r.hash("list root")
	}
	p.OldSize = r.u64("old list size")
	if r.err != nil {
		return nil, r.err
	}
	if p.OldSize > p.List.Size {
		return nil, fmt.Errorf("old list size %d is more than the list size %d", p.OldSize, p.List.Size)
	}
	if p.Since == 0 && p.OldSize != 0 {
		return nil, fmt.Errorf("old list size %d for a whole-chain proof (since 0)", p.OldSize)
	}
	if p.OldSize > 0 {
		p.OldLast.Index = r.u64("old last index")
		p.OldLast.LeafHash = r.hash("old last leaf hash")
		k := rangeLen(p.OldSize - 1)
		if r.err == nil && r.left() < k*HashSize {
			r.fail("old list range of %d hashes truncated", k)
		}
		if r.err != nil {
			return nil, r.err
		}
		p.OldRange = make([]Hash, k)
		for i := range p.OldRange {
			p.OldRange[i] = r.hash("old list range")
		}
	}
	c := r.u32("entry count")
	if r.err == nil && uint64(c) > uint64(r.left()/13) {
		r.fail("entry count %d is more than the bytes left can hold", c)
	}
	if r.err != nil {
		return nil, r.err
	}
	p.Entries = make([]Entry, c)
	for i := range p.Entries {
		p.Entries[i].Index = r.u64("entry index")
		l := r.u32("entry length")
		if r.err == nil && (l == 0 || l > MaxEntrySize) {
			r.fail("entry %d has length %d, want 1 to %d", i, l, MaxEntrySize)
		}
		p.Entries[i].Data = r.bytes(int(l), "entry")
		if r.err != nil {
			return nil, r.err
		}
	}
	h := r.u32("inclusion proof length")
	if r.err == nil && uint64(h) > uint64(r.left()/HashSize) {
		r.fail("inclusion proof of %d hashes is longer than the bytes left", h)
	}
	if r.err != nil {
		return nil, r.err
	}
	p.Inclusion = make([]Hash, h)
	for i := range p.Inclusion {
		p.Inclusion[i] = r.hash("inclusion proof")
	}
	parseMapProof(r, &p.Map)
	if r.err != nil {
		return nil, r.err
	}
	if (p.Map.Kind == Member) != (p.List.Size > 0) {
		return nil, fmt.Errorf("map proof of %s with a list of %d elements", p.Map.Kind, p.List.Size)
	}
	if p.List.Size > 0 {
		p.Map.List = p.List
	}
	if r.left() != 0 {
		return nil, fmt.Errorf("%d trailing bytes after the map proof", r.left())
	}
	return p, nil
}

// Errors of [Verify]. Each error Verify returns wraps exactly one of them
// (or [ErrMalformedProof], [ErrBadMapProof] or [ErrMapRootMismatch]); the
// message says which check failed and on what.
var (
	// ErrWrongSample: the proof is for another sample than the one asked.
	ErrWrongSample = errors.New("sample proof is for another sample")
	// ErrWrongSize: the proof is for another checkpoint size or another
	// since than the one asked.
	ErrWrongSize = errors.New("sample proof is for another checkpoint size")
	// ErrDroppedEntry: fewer entries than the committed list holds.
	ErrDroppedEntry = errors.New("sample proof leaves out entries of the committed list")
	// ErrAddedEntry: more entries than the committed list holds (or
	// entries with an absence proof, or an index twice).
	ErrAddedEntry = errors.New("sample proof has entries the committed list does not")
	// ErrReorderedEntries: entry indexes are not in increasing log order.
	ErrReorderedEntries = errors.New("sample proof entries are not in log order")
	// ErrListRootMismatch: the entries do not hash to the committed list
	// root (an entry was altered or replaced).
	ErrListRootMismatch = errors.New("sample proof entries do not match the committed list root")
	// ErrBadInclusion: the batch inclusion proof does not put the entries
	// at their indexes in the checkpoint's log tree.
	ErrBadInclusion = errors.New("sample proof entries are not in the log at their indexes")
	// ErrBadConsistency: the old part of the list (before Since) is not
	// consistent: its last element is not before Since, or it is not
	// the list the caller verified before ([Chain.Extends]).
	ErrBadConsistency = errors.New("sample proof's old list is not consistent")
	// ErrWrongEntry: an entry is not a valid event of the sample.
	ErrWrongEntry = errors.New("sample proof entry is not an event of the sample")
)

// Trusted is what a verifier takes from a checkpoint whose signatures
// (and witness cosignatures) it has already verified: the log size and
// root, and the map root from its index line ([ParseExtension]).
type Trusted struct {
	Size    uint64
	LogRoot Hash
	MapRoot Hash
}

// Chain is a verified sample chain.
type Chain struct {
	Sample string
	Size   uint64 // the checkpoint's size
	Since  uint64
	// List is the sample's list as of Size; Size 0 when the sample has
	// no entry in the log (a verified absence).
	List ListState
	// Old is the list as of Since: its first OldSize elements (zero
	// ListState when there are none). A caller that verified the chain
	// at Since before checks it with Extends.
	Old ListState
	// Entries are all the sample's entries at indexes Since to Size-1,
	// in log order.
	Entries []Entry
}

// Absent reports whether the chain is a verified absence: no entry of the
// sample in the first Size entries of the log.
func (c *Chain) Absent() bool { return c.List.Size == 0 }

// Extends checks that the old part of the chain is prev, the list state
// the caller verified at checkpoint size Since; errors wrap
// [ErrBadConsistency].
func (c *Chain) Extends(prev ListState) error {
	if c.Old != prev {
		return fmt.Errorf("%w: the proof's list as of size %d has %d elements and root %x, but the list verified before had %d elements and root %x",
			ErrBadConsistency, c.Since, c.Old.Size, c.Old.Root[:], prev.Size, prev.Root[:])
	}
	return nil
}

// Request is what a verifier asked for.
type Request struct {
	// Sample is the sample identifier.
	Sample string
	// Since is the log index from which entries were asked (0 for the
	// whole chain): normally the size of the checkpoint at which the
	// caller last verified the chain.
	Since uint64
	// EntrySample returns the sample identifier of a log entry, failing
	// if the entry is not a valid entry: record.DecodeEntry's Sample.
	// (A function, so that this package does not depend on the event
	// format, and verify can import it.) Required.
	EntrySample func(entry []byte) (string, error)
}

// Verify parses an encoded proof and verifies it with [VerifyProof].
func Verify(data []byte, req Request, t Trusted) (*Chain, error) {
	p, err := ParseProof(data)
	if err != nil {
		return nil, err
	}
	return VerifyProof(p, req, t)
}

// VerifyProof checks that p proves the complete chain of the entries of
// req.Sample at indexes req.Since to t.Size-1 (all of them when Since is
// 0) against a verified checkpoint t, and returns it. It checks, in order:
// the sample and the size and since asked; the map proof against t.MapRoot; the
// number of entries against the committed list size; increasing entry
// indexes from since, below t.Size; the old list's last element before
// since; each entry is a valid event naming sample; the old list and the
// entries hash to the committed list root; the batch inclusion proof of
// the entries against t.LogRoot. What this proves and what it does not is
// in docs/sample-index.md ("What a proof proves").
func VerifyProof(p *Proof, req Request, t Trusted) (*Chain, error) {
	sample, since := req.Sample, req.Since
	if req.EntrySample == nil {
		return nil, errors.New("sampleindex: VerifyProof without Request.EntrySample")
	}
	if p.Sample != sample {
		return nil, fmt.Errorf("%w: asked for %q, the proof is for %q", ErrWrongSample, sample, p.Sample)
	}
	if p.Size != t.Size {
		return nil, fmt.Errorf("%w: the proof is for size %d, the checkpoint has size %d", ErrWrongSize, p.Size, t.Size)
	}
	if p.Since != since {
		return nil, fmt.Errorf("%w: asked for entries since %d, the proof has them since %d", ErrWrongSize, since, p.Since)
	}
	mp := p.Map
	mp.Key = KeyOf(sample)
	if p.List.Size > 0 {
		mp.Kind, mp.List = Member, p.List
	} else if mp.Kind == Member {
		return nil, fmt.Errorf("%w: membership proof for an empty list", ErrBadMapProof)
	}
	if err := mp.Verify(t.MapRoot); err != nil {
		return nil, err
	}
	ch := &Chain{Sample: sample, Size: p.Size, Since: p.Since, List: p.List}
	if p.List.Size == 0 {
		if len(p.Entries) > 0 || len(p.Inclusion) > 0 {
			return nil, fmt.Errorf("%w: %d entries (and %d inclusion hashes) with a proof that %q is not in the log", ErrAddedEntry, len(p.Entries), len(p.Inclusion), sample)
		}
		return ch, nil
	}
	if p.OldSize > p.List.Size || (p.Since == 0 && p.OldSize > 0) || len(p.OldRange) != rangeLen(max(p.OldSize, 1)-1) {
		return nil, fmt.Errorf("%w: old list of %d elements with %d range hashes in a list of %d since %d", ErrMalformedProof, p.OldSize, len(p.OldRange), p.List.Size, p.Since)
	}
	want := p.List.Size - p.OldSize
	if got := uint64(len(p.Entries)); got < want {
		return nil, fmt.Errorf("%w: the committed list of %q has %d elements, %d of them at or after index %d, but the proof has %d entries", ErrDroppedEntry, sample, p.List.Size, want, p.Since, got)
	} else if got > want {
		return nil, fmt.Errorf("%w: the committed list of %q has %d elements, %d of them at or after index %d, but the proof has %d entries", ErrAddedEntry, sample, p.List.Size, want, p.Since, got)
	}
	for i, e := range p.Entries {
		if e.Index >= p.Size {
			return nil, fmt.Errorf("%w: entry %d has index %d, beyond the checkpoint size %d", ErrBadInclusion, i, e.Index, p.Size)
		}
		if e.Index < p.Since {
			return nil, fmt.Errorf("%w: entry %d has index %d, before since %d", ErrBadConsistency, i, e.Index, p.Since)
		}
		if i > 0 && e.Index == p.Entries[i-1].Index {
			return nil, fmt.Errorf("%w: index %d twice", ErrAddedEntry, e.Index)
		}
		if i > 0 && e.Index < p.Entries[i-1].Index {
			return nil, fmt.Errorf("%w: entry %d has index %d after index %d", ErrReorderedEntries, i, e.Index, p.Entries[i-1].Index)
		}
	}
	if p.OldSize > 0 && p.OldLast.Index >= p.Since {
		return nil, fmt.Errorf("%w: list element %d (the last before since %d) has index %d", ErrBadConsistency, p.OldSize-1, p.Since, p.OldLast.Index)
	}
	for i, e := range p.Entries {
		s, err := req.EntrySample(e.Data)
		if err != nil {
			return nil, fmt.Errorf("%w: entry %d (index %d) does not decode: %v", ErrWrongEntry, i, e.Index, err)
		}
		if s != sample {
			return nil, fmt.Errorf("%w: entry %d (index %d) is an event of sample %q, not %q", ErrWrongEntry, i, e.Index, s, sample)
		}
	}
	rng := append([]Hash(nil), p.OldRange...)
	size := uint64(0)
	if p.OldSize > 0 {
		size = p.OldSize - 1
		rng = rangeAppend(rng, size, ListLeafHash(p.OldLast.Index, p.OldLast.LeafHash))
		size++
		ch.Old = ListState{Size: size, Root: rangeRoot(rng)}
	}
	idx := make([]uint64, len(p.Entries))
	leaves := make([]Hash, len(p.Entries))
	for i, e := range p.Entries {
		idx[i] = e.Index
		leaves[i] = EntryLeafHash(e.Data)
		rng = rangeAppend(rng, size, ListLeafHash(e.Index, leaves[i]))
		size++
	}
	if r := rangeRoot(rng); r != p.List.Root {
		return nil, fmt.Errorf("%w: the old list and the %d entries of %q give list root %x, the map commits %x", ErrListRootMismatch, len(p.Entries), sample, r[:], p.List.Root[:])
	}
	if err := VerifyBatchInclusion(p.Size, t.LogRoot, idx, leaves, p.Inclusion); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadInclusion, err)
	}
	ch.Entries = p.Entries
	return ch, nil
}

// checkSample reports whether s is not a valid sample identifier: 1 to
// 128 characters of A-Z a-z 0-9 : . _ - (record.CheckSample's rule).
func checkSample(s string) error {
	if len(s) == 0 || len(s) > 128 {
		return fmt.Errorf("sample identifier of %d bytes, want 1 to 128", len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == ':' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("sample identifier %q has byte 0x%02x at %d, want A-Z a-z 0-9 : . _ -", s, c, i)
		}
	}
	return nil
}

// ErrIndexInconsistent is wrapped by the errors of [BuildProof] when the
// log's entries for a sample do not match what the map holds for it: the
// index is damaged and must be rebuilt from the log.
var ErrIndexInconsistent = errors.New("sample index does not match the log")

// ProofInput is what [BuildProof] needs from the log.
type ProofInput struct {
	Sample string
	Since  uint64
	// Size is the size of the map Map was proved from, that is of the
	// checkpoint the proof is for.
	Size uint64
	// Map is the map proof for KeyOf(Sample) from [Map.Prove] at Size.
	Map *MapProof
	// Indexes are the log indexes of the sample's entries, increasing;
	// those at Size or beyond are ignored.
	Indexes []uint64
	// Entries returns the bytes of the entries at indexes.
	Entries func(ctx context.Context, indexes []uint64) ([][]byte, error)
	// Nodes reads the log tree's hashes.
	Nodes NodeFunc
}

// BuildProof assembles the proof of a sample's chain and checks that the
// log's entries match the map's list state (errors wrap
// [ErrIndexInconsistent] when they do not). Its result passes [Verify]
// against the checkpoint of size in.Size.
func BuildProof(ctx context.Context, in ProofInput) (*Proof, error) {
	if err := checkSample(in.Sample); err != nil {
		return nil, fmt.Errorf("sampleindex: proof: %v", err)
	}
	if in.Since > in.Size {
		return nil, fmt.Errorf("sampleindex: proof since %d beyond the size %d", in.Since, in.Size)
	}
	if in.Map == nil || in.Map.Key != KeyOf(in.Sample) {
		return nil, fmt.Errorf("sampleindex: proof for sample %q without its map proof", in.Sample)
	}
	idx := in.Indexes
	for len(idx) > 0 && idx[len(idx)-1] >= in.Size {
		idx = idx[:len(idx)-1]
	}
	if err := checkIndexes(in.Size, idx); err != nil {
		return nil, fmt.Errorf("sampleindex: indexes of sample %q: %v", in.Sample, err)
	}
	p := &Proof{Sample: in.Sample, Size: in.Size, Since: in.Since, Map: *in.Map}
	if in.Map.Kind != Member {
		if len(idx) > 0 {
			return nil, fmt.Errorf("sampleindex: %w: the map proves %q absent, the log has %d entries of it", ErrIndexInconsistent, in.Sample, len(idx))
		}
		return p, nil
	}
	p.List = in.Map.List
	if uint64(len(idx)) != p.List.Size {
		return nil, fmt.Errorf("sampleindex: %w: the map holds %d elements for %q, the log has %d entries of it below %d", ErrIndexInconsistent, p.List.Size, in.Sample, len(idx), in.Size)
	}
	m := 0
	if in.Since > 0 {
		for m < len(idx) && idx[m] < in.Since {
			m++
		}
	}
	p.OldSize = uint64(m)
	newIdx := idx[m:]
	var data [][]byte
	if len(newIdx) > 0 {
		var err error
		data, err = in.Entries(ctx, newIdx)
		if err != nil {
			return nil, fmt.Errorf("sampleindex: reading %d entries of %q: %w", len(newIdx), in.Sample, err)
		}
		if len(data) != len(newIdx) {
			return nil, fmt.Errorf("sampleindex: read %d entries of %q, want %d", len(data), in.Sample, len(newIdx))
		}
	}
	var rng []Hash
	if m > 0 {
		ids := make([]compact.NodeID, m)
		for i := range ids {
			ids[i] = compact.NewNodeID(0, idx[i])
		}
		hs, err := in.Nodes(ctx, ids)
		if err != nil {
			return nil, fmt.Errorf("sampleindex: reading %d leaf hashes of %q: %w", m, in.Sample, err)
		}
		if len(hs) != m {
			return nil, fmt.Errorf("sampleindex: read %d leaf hashes of %q, want %d", len(hs), in.Sample, m)
		}
		for i, h := range hs {
			if len(h) != HashSize {
				return nil, fmt.Errorf("sampleindex: leaf hash of entry %d has %d bytes", idx[i], len(h))
			}
			if i == m-1 {
				p.OldRange = append([]Hash(nil), rng...)
				p.OldLast = ListElement{Index: idx[i], LeafHash: Hash(h)}
			}
			rng = rangeAppend(rng, uint64(i), ListLeafHash(idx[i], Hash(h)))
		}
	}
	p.Entries = make([]Entry, len(newIdx))
	leaves := make([]Hash, len(newIdx))
	for i := range newIdx {
		p.Entries[i] = Entry{Index: newIdx[i], Data: data[i]}
		leaves[i] = EntryLeafHash(data[i])
		rng = rangeAppend(rng, uint64(m+i), ListLeafHash(newIdx[i], leaves[i]))
	}
	if r := rangeRoot(rng); r != p.List.Root {
		return nil, fmt.Errorf("sampleindex: %w: the log's %d entries of %q give list root %x, the map holds %x", ErrIndexInconsistent, len(idx), in.Sample, r[:], p.List.Root[:])
	}
	incl, err := ProveBatchInclusion(ctx, in.Size, newIdx, in.Nodes)
	if err != nil {
		return nil, err
	}
	p.Inclusion = incl
	return p, nil
}

// ProveSample is [Map.Prove] and [BuildProof] at the map's current size,
// taken atomically: indexes (the sample's entry indexes, possibly beyond
// the map's size), entries and nodes read the log. It returns the proof;
// its Size is the size of the checkpoint it verifies against.
func (m *Map) ProveSample(ctx context.Context, sample string, since uint64, indexes []uint64,
	entries func(ctx context.Context, indexes []uint64) ([][]byte, error), nodes NodeFunc) (*Proof, error) {
	mp, size, err := m.proveAt(ctx, KeyOf(sample))
	if err != nil {
		return nil, err
	}
	return BuildProof(ctx, ProofInput{Sample: sample, Since: since, Size: size, Map: mp, Indexes: indexes, Entries: entries, Nodes: nodes})
}
