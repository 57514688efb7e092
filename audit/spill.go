package audit

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"github.com/custodylog/custody/internal/spill"
)

// This file holds the engine's per-sample state: a compact in-memory table
// of the samples seen recently, and, once that outgrows the engine's memory
// budget, the samples moved out in bulk to sorted run files
// (internal/spill), from which a sample is read back into memory when it is
// seen again.

// sampleState is the custody state of one sample in memory. It holds no
// pointers, so the garbage collector never scans the records.
type sampleState struct {
	first  uint64 // index of the first event
	gone   uint64 // 1 + index of the deletion that left it present nowhere; 0 unless deleted everywhere
	key    uint64 // where its identifier is in the key arena (keyRef); bit 63: touched since the last spill
	region uint32 // id of the region of the first event
	set    int32  // 0: present nowhere; > 0: present only at location set-1; < 0: at the locations in samples.sets[-set-1]
}

const (
	touchedBit = 1 << 63
	// sampleChunk is the number of sample records allocated at once.
	sampleChunk = 4096
	// recordBytes is the memory of one record.
	recordBytes = int64(unsafe.Sizeof(sampleState{}))
	// arenaBlock is the size of a key arena block.
	arenaBlock = 1 << 20
	// minTable is the smallest size of the identifier table.
	minTable = 1 << 10
)

// DefaultMemory is the memory budget for per-sample state that Audit uses
// when AuditOptions.Memory is 0: 512 MiB, 5 to 7 million samples.
const DefaultMemory = 512 << 20

// EngineOptions configure NewEngineWith.
type EngineOptions struct {
	// Memory is the budget, in bytes, for the per-sample state kept in
	// memory (records, identifiers, identifier table, presence lists).
	// Beyond it the least recently seen samples are moved out to run files
	// in SpillDir in bulk, about half the budget at a time, and read back
	// when they are seen again. 0 keeps every sample in memory. The
	// spilled samples cost about 1.5 bytes each of memory more (Bloom
	// filters, capped at Memory/4, and block indexes of the runs), and a
	// spill sorts the moved samples with 20 bytes each of scratch.
	Memory int64
	// SpillDir is the directory under which a spilling engine makes its
	// own directory of run files (mode 0700, files 0600), removed by
	// Close; "" is os.TempDir().
	SpillDir string
}

// keyArena holds the sample identifiers, each as a uvarint length and its
// bytes, back to back in blocks, in the order of their records.
type keyArena struct {
	alloc  func(int) []byte
	blocks [][]byte
	blk    int   // block being written
	off    int   // write offset in it
	used   int64 // bytes of the blocks before blk, plus off
}

// keyRef locates an identifier: block index << 32 | offset.
func keyRef(blk, off int) uint64 { return uint64(blk)<<32 | uint64(off) }

func (a *keyArena) get(ref uint64) []byte {
	b := a.blocks[(ref&^touchedBit)>>32][uint32(ref):]
	n, k := binary.Uvarint(b)
	return b[k : k+int(n)]
}

// place returns where an entry of n bytes goes, at or after the write
// position, moving the write position past full blocks.
func (a *keyArena) place(n int) {
	for a.blk < len(a.blocks) && a.off+n > len(a.blocks[a.blk]) {
		a.used += int64(len(a.blocks[a.blk]) - a.off)
		a.blk, a.off = a.blk+1, 0
	}
	if a.blk == len(a.blocks) {
		a.blocks = append(a.blocks, a.alloc(max(arenaBlock, n)))
	}
}

// add appends id and returns its reference.
func (a *keyArena) add(id string) uint64 {
	n := uvarintLen(uint64(len(id))) + len(id)
	a.place(n)
	b := a.blocks[a.blk][a.off:]
	k := binary.PutUvarint(b, uint64(len(id)))
	copy(b[k:], id)
	ref := keyRef(a.blk, a.off)
	a.off += n
	a.used += int64(n)
	return ref
}

// move copies the entry at ref to the write position, which is at or
// before it (compaction), and returns its new reference.
func (a *keyArena) move(ref uint64) uint64 {
	ref &^= touchedBit
	src := a.blocks[ref>>32][uint32(ref):]
	l, k := binary.Uvarint(src)
	n := k + int(l)
	a.place(n)
	copy(a.blocks[a.blk][a.off:], src[:n])
	ref = keyRef(a.blk, a.off)
	a.off += n
	a.used += int64(n)
	return ref
}

func (a *keyArena) reset() { a.blk, a.off, a.used = 0, 0, 0 }

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// samples is the engine's per-sample state.
type samples struct {
	budget   int64
	spillDir string

	tab      []uint64 // open addressing, linear probing: hash>>32 << 32 | record+1; 0 empty
	recs     [][]sampleState
	n        int // records in use
	keys     keyArena
	sets     [][]uint32 // presence lists of samples at two or more locations
	freeSets []int32    // unused entries of sets (-set values)
	setsMem  int64

	offHeap bool     // allocate outside the Go heap (an engine with a budget)
	frees   []func() // release the records and arena blocks
	tabFree func()   // releases tab
	// hint is where find, on a miss, saw that id's slot would go, valid
	// for hash hintH while the table is at version tabVer.
	hint, hintH, hintVer, tabVer uint64

	store    *spill.Store // the spilled samples, nil until the first spill
	readBack int64        // samples read back from the store
	err      error        // the first error reading or writing the store

	scratch []byte // a value being encoded
	loaded  sampleState
	locs    []uint32 // a spilled sample's locations, decoded
}

func newSamples(budget int64, dir string) *samples {
	s := &samples{budget: budget, spillDir: dir, offHeap: budget > 0}
	s.keys.alloc = s.alloc
	s.tab, s.tabFree = s.allocTable(minTable)
	return s
}

// alloc returns n zeroed bytes that live until close.
func (s *samples) alloc(n int) []byte {
	if !s.offHeap {
		return make([]byte, n)
	}
	b, free := allocBytes(n)
	s.frees = append(s.frees, free)
	return b
}

// allocTable returns an empty identifier table of n slots.
func (s *samples) allocTable(n int) ([]uint64, func()) {
	if !s.offHeap {
		return make([]uint64, n), func() {}
	}
	b, free := allocBytes(n * 8)
	return unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(b))), n), free
}

// scratch returns n values of T, zeroed, and the function that releases
// them: outside the Go heap for an engine with a budget.
func scratch[T any](s *samples, n int) ([]T, func()) {
	if !s.offHeap || n == 0 {
		return make([]T, n), func() {}
	}
	var t T
	b, free := allocBytes(n * int(unsafe.Sizeof(t)))
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(b))), n), free
}

func (s *samples) rec(n int) *sampleState { return &s.recs[n/sampleChunk][n%sampleChunk] }

// mem is the memory counted against the budget.
func (s *samples) mem() int64 {
	return int64(s.n)*recordBytes + int64(len(s.tab))*8 + s.keys.used + s.setsMem
}

// find returns the number of the record of id, whose hash is h, or -1.
func (s *samples) find(id string, h uint64) int {
	mask := uint64(len(s.tab) - 1)
	tag := h >> 32
	for i := h & mask; ; i = (i + 1) & mask {
		v := s.tab[i]
		if v == 0 {
			s.hint, s.hintH, s.hintVer = i, h, s.tabVer
			return -1
		}
		if v>>32 == tag {
			n := int(uint32(v)) - 1
			if string(s.keys.get(s.rec(n).key)) == id {
				return n
			}
		}
	}
}

func (s *samples) insert(n int, h uint64) {
	s.tabVer++
	if s.hintH == h && s.hintVer+1 == s.tabVer {
		// find just saw where it goes.
		s.tab[s.hint] = h>>32<<32 | uint64(n+1)
		return
	}
	mask := uint64(len(s.tab) - 1)
	i := h & mask
	for s.tab[i] != 0 {
		i = (i + 1) & mask
	}
	s.tab[i] = h>>32<<32 | uint64(n+1)
}

// lookup returns the record of sample id, reading it back from the spilled
// samples if it is there, or nil if the sample is new.
func (s *samples) lookup(id string, h uint64) *sampleState {
	if n := s.find(id, h); n >= 0 {
		st := s.rec(n)
		st.key |= touchedBit
		return st
	}
	if s.store == nil || s.err != nil {
		return nil
	}
	v, ok, err := s.store.Get(id, h)
	if err != nil {
		s.err = err
		return nil
	}
	if !ok {
		return nil
	}
	st, locs, err := decodeSample(v, s.locs[:0])
	s.locs = locs
	if err != nil {
		s.err = fmt.Errorf("audit: spilled state of sample %q: %w", id, err)
		return nil
	}
	s.readBack++
	rec := s.add(id, h, st)
	for _, l := range locs {
		s.addPresent(rec, l)
	}
	return rec
}

// add adds a record for sample id, which is not in memory.
func (s *samples) add(id string, h uint64, st sampleState) *sampleState {
	if s.n == 1<<32-2 {
		panic("audit: more than 2^32 samples in memory: set a memory budget")
	}
	if (s.n+1)*4 > len(s.tab)*3 {
		s.grow()
	}
	n := s.n
	if n/sampleChunk == len(s.recs) {
		b := s.alloc(sampleChunk * int(recordBytes))
		s.recs = append(s.recs, unsafe.Slice((*sampleState)(unsafe.Pointer(unsafe.SliceData(b))), sampleChunk))
	}
	s.n++
	st.key = s.keys.add(id) | touchedBit
	rec := s.rec(n)
	*rec = st
	s.insert(n, h)
	return rec
}

// grow doubles the identifier table.
func (s *samples) grow() {
	s.tabFree()
	s.tab, s.tabFree = s.allocTable(2 * len(s.tab))
	s.rehash()
}

func (s *samples) rehash() {
	s.tabVer++
	clear(s.tab)
	for n := range s.n {
		s.insert(n, spill.Hash(unsafeString(s.keys.get(s.rec(n).key))))
	}
}

func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// presentAt reports whether the sample is present at location id.
func (s *samples) presentAt(st *sampleState, id uint32) bool {
	switch {
	case st.set > 0:
		return uint32(st.set-1) == id
	case st.set < 0:
		return slices.Contains(s.sets[-st.set-1], id)
	}
	return false
}

// addPresent records the sample as present at location id, where it is
// not yet.
func (s *samples) addPresent(st *sampleState, id uint32) {
	switch {
	case st.set == 0:
		st.set = int32(id + 1)
	case st.set > 0:
		var k int32
		if n := len(s.freeSets); n > 0 {
			k, s.freeSets = s.freeSets[n-1], s.freeSets[:n-1]
		} else {
			s.sets = append(s.sets, nil)
			k = int32(len(s.sets))
			s.setsMem += 24
		}
		before := cap(s.sets[k-1])
		s.sets[k-1] = append(s.sets[k-1], uint32(st.set-1), id)
		s.setsMem += 4 * int64(cap(s.sets[k-1])-before)
		st.set = -k
	default:
		set := &s.sets[-st.set-1]
		before := cap(*set)
		*set = append(*set, id)
		s.setsMem += 4 * int64(cap(*set)-before)
	}
}

// removePresent ends the sample's presence at location id, where it is
// present.
func (s *samples) removePresent(st *sampleState, id uint32) {
	if st.set > 0 {
		st.set = 0
		return
	}
	k := -st.set
	set := s.sets[k-1]
	i := slices.Index(set, id)
	set[i] = set[len(set)-1]
	set = set[:len(set)-1]
	if len(set) == 1 {
		st.set = int32(set[0] + 1)
		s.sets[k-1] = set[:0]
		s.freeSets = append(s.freeSets, k)
		return
	}
	s.sets[k-1] = set
}

// locations returns the ids of the locations where the sample is present,
// in no order.
func (s *samples) locations(st *sampleState, buf []uint32) []uint32 {
	switch {
	case st.set > 0:
		return append(buf, uint32(st.set-1))
	case st.set < 0:
		return append(buf, s.sets[-st.set-1]...)
	}
	return buf
}

// encodeSample appends a sample's spilled form: region, first, gone and
// its locations, as uvarints.
func encodeSample(b []byte, st *sampleState, locs []uint32) []byte {
	b = binary.AppendUvarint(b, uint64(st.region))
	b = binary.AppendUvarint(b, st.first)
	b = binary.AppendUvarint(b, st.gone)
	b = binary.AppendUvarint(b, uint64(len(locs)))
	for _, l := range locs {
		b = binary.AppendUvarint(b, uint64(l))
	}
	return b
}

var errBadSpill = errors.New("malformed record")

// decodeSample decodes encodeSample's form; the state has no key and no
// presence, the locations are appended to locs.
func decodeSample(b []byte, locs []uint32) (sampleState, []uint32, error) {
	var v [4]uint64
	for i := range v {
		x, n := binary.Uvarint(b)
		if n <= 0 {
			return sampleState{}, locs, errBadSpill
		}
		v[i], b = x, b[n:]
	}
	for range v[3] {
		x, n := binary.Uvarint(b)
		if n <= 0 {
			return sampleState{}, locs, errBadSpill
		}
		locs, b = append(locs, uint32(x)), b[n:]
	}
	if len(b) != 0 {
		return sampleState{}, locs, errBadSpill
	}
	return sampleState{region: uint32(v[0]), first: v[1], gone: v[2]}, locs, nil
}

// sortEntry orders records by identifier: p holds the 8 bytes of the
// identifier after the prefix common to all that are sorted, big-endian
// and zero-padded, so that most comparisons need not read the identifiers.
type sortEntry struct {
	p uint64
	n uint32
}

// sorted returns the record numbers ns ordered by identifier.
func (s *samples) sorted(ns []uint32) []uint32 {
	if len(ns) == 0 {
		return ns
	}
	// The longest prefix common to all is that of the least and greatest.
	lo, hi := s.keys.get(s.rec(int(ns[0])).key), s.keys.get(s.rec(int(ns[0])).key)
	for _, n := range ns[1:] {
		k := s.keys.get(s.rec(int(n)).key)
		if bytes.Compare(k, lo) < 0 {
			lo = k
		} else if bytes.Compare(k, hi) > 0 {
			hi = k
		}
	}
	lcp := 0
	for lcp < len(lo) && lcp < len(hi) && lo[lcp] == hi[lcp] {
		lcp++
	}
	es, free := scratch[sortEntry](s, len(ns))
	defer free()
	for i, n := range ns {
		k := s.keys.get(s.rec(int(n)).key)[lcp:]
		var b [8]byte
		copy(b[:], k)
		es[i] = sortEntry{binary.BigEndian.Uint64(b[:]), n}
	}
	slices.SortFunc(es, func(x, y sortEntry) int {
		if x.p != y.p {
			if x.p < y.p {
				return -1
			}
			return 1
		}
		return bytes.Compare(s.keys.get(s.rec(int(x.n)).key), s.keys.get(s.rec(int(y.n)).key))
	})
	for i, e := range es {
		ns[i] = e.n
	}
	return ns
}

// overBudget reports whether the state has outgrown the budget.
func (s *samples) overBudget() bool { return s.budget > 0 && s.mem() > s.budget }

// spillOut moves the least recently seen samples to a new run, until the
// state uses about half the budget, and compacts what stays in memory.
func (s *samples) spillOut() {
	if s.err != nil {
		return
	}
	if s.store == nil {
		st, err := spill.New(s.spillDir)
		if err != nil {
			s.err = err
			return
		}
		st.FilterBudget = s.budget / 4
		st.Drop = func(key []byte) bool { return s.find(unsafeString(key), spill.Hash(unsafeString(key))) >= 0 }
		s.store = st
	}
	// How many to move: the average sample's share of the memory that
	// moving frees (the table stays).
	perSample := (int64(s.n)*recordBytes + s.keys.used + s.setsMem) / int64(max(s.n, 1))
	want := int((s.mem() - s.budget/2 + perSample - 1) / max(perSample, 1))
	want = min(max(want, 1), s.n)
	victim, freeVictim := scratch[uint64](s, (s.n+63)/64)
	defer freeVictim()
	vs, freeVs := scratch[uint32](s, want)
	defer freeVs()
	vs = vs[:0]
	// First the samples not seen since the last spill, oldest first; then
	// the oldest of the others.
	for pass := 0; pass < 2 && len(vs) < want; pass++ {
		for n := 0; n < s.n && len(vs) < want; n++ {
			if victim[n/64]&(1<<(n%64)) != 0 || (pass == 0 && s.rec(n).key&touchedBit != 0) {
				continue
			}
			victim[n/64] |= 1 << (n % 64)
			vs = append(vs, uint32(n))
		}
	}
	vs = s.sorted(vs)
	w, err := s.store.NewWriter(int64(len(vs)))
	if err != nil {
		s.err = err
		return
	}
	var locs []uint32
	for _, n := range vs {
		st := s.rec(int(n))
		locs = s.locations(st, locs[:0])
		s.scratch = encodeSample(s.scratch[:0], st, locs)
		if err := w.Add(s.keys.get(st.key), s.scratch); err != nil {
			w.Abort()
			s.err = err
			return
		}
	}
	// Compact the records and identifiers that stay, in place, in order.
	j := 0
	s.keys.reset()
	for n := range s.n {
		st := s.rec(n)
		if victim[n/64]&(1<<(n%64)) != 0 {
			if st.set < 0 {
				k := -st.set
				s.setsMem -= 4 * int64(cap(s.sets[k-1]))
				s.sets[k-1] = nil
				s.freeSets = append(s.freeSets, k)
			}
			continue
		}
		moved := *st
		moved.key = s.keys.move(st.key)
		*s.rec(j) = moved
		j++
	}
	s.n = j
	s.rehash()
	// The run goes in once memory no longer holds its samples (merges
	// drop keys that memory holds).
	if err := w.Finish(); err != nil {
		s.err = err
	}
}

// close removes the spilled samples and releases the memory.
func (s *samples) close() error {
	for _, free := range s.frees {
		free()
	}
	s.tabFree()
	s.frees, s.recs, s.keys.blocks, s.tab, s.tabFree, s.n = nil, nil, nil, nil, func() {}, 0
	if s.store == nil {
		return nil
	}
	err := s.store.Close()
	s.store = nil
	return err
}

// ParseMemory parses a memory size for EngineOptions.Memory: a whole number
// of bytes, or one followed by KB, MB, GB, TB (powers of 1000) or KiB, MiB,
// GiB, TiB (powers of 1024), in any case. "0" means no limit.
func ParseMemory(s string) (int64, error) {
	t := strings.TrimSpace(s)
	num := strings.TrimRightFunc(t, func(r rune) bool { return r < '0' || r > '9' })
	unit := strings.ToLower(strings.TrimSpace(t[len(num):]))
	mult := map[string]int64{"": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
		"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}[unit]
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || mult == 0 || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("memory size %q: want a number of bytes, or one with KB, MB, GB, KiB, MiB or GiB (512MiB, 2GB)", s)
	}
	return n * mult, nil
}
