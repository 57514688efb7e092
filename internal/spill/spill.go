// Package spill keeps records (a string key and a byte value) that do not
// fit in memory in sorted, immutable run files on disk, for a program that
// holds the records it uses often in memory and moves the others out in
// bulk (the audit engine's per-sample state).
//
// A Store is a stack of runs, newest last. Each run is a file of records
// sorted by key in blocks of about 4 KiB, with, in memory, a Bloom filter
// of its keys' hashes (so that looking up a key that is in no run, the
// common case, reads no file) and the first key of every block (so that
// looking up a key that may be there reads one block). A key may be in
// several runs: the newest holds its current value. Runs are merged, four
// of the same level into one of the next level, so that a store of N
// records has O(log N) runs and every record is rewritten O(log N) times.
//
// The files are scratch: they live in a directory that New creates (mode
// 0700, files 0600, named custody-spill-*) and Close removes (New also
// removes such directories that have not changed for a day, left by
// processes that crashed), and their format is private to the process
// that wrote them.
package spill

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"
)

var seed = maphash.MakeSeed()

// Hash returns the hash of key that Store.Get expects. It is fixed for the
// life of the process and differs between processes.
func Hash(key string) uint64 { return maphash.String(seed, key) }

// hashBytes is Hash of string(key).
func hashBytes(key []byte) uint64 { return maphash.Bytes(seed, key) }

const (
	blockSize = 4 << 10 // a block ends after the record that takes it past this
	// mergeFan runs of one level are merged into one of the next level.
	mergeFan = 4
	// maxBitsPerKey is the Bloom filter density when memory allows: about
	// 1% false positives with 7 probes in a 512-bit block.
	maxBitsPerKey = 10
	minBitsPerKey = 2
	maxProbes     = 7
)

// Store is a stack of runs in one directory. It is not safe for concurrent
// use.
type Store struct {
	dir  string
	runs []*run // oldest first
	seq  int
	keys int64 // records in all runs, stale versions included

	// FilterBudget, if positive, caps the memory of the runs' Bloom
	// filters: a new or merged run gets what the budget leaves after the
	// other runs' filters, 10 bits a key at most and 2 at least, so that
	// the filters hold at most FilterBudget bytes plus 2 bits a record
	// (merges even out the density), at the price of more false positives
	// (lookups that read a block): 1% at 10 bits a key, 8% at 5, 40% at 2.
	FilterBudget int64
	// Drop, if set, is asked about every key when runs are merged: a key
	// for which it returns true is left out of the merged run (the caller
	// holds a newer value of it).
	Drop func(key []byte) bool

	buf []byte // block scratch for Get
}

// New creates a store in a new directory under parent (os.TempDir() if
// parent is "").
func New(parent string) (*Store, error) {
	if parent == "" {
		parent = os.TempDir()
	}
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return nil, fmt.Errorf("spill: creating %s for spill files: %w (check that it is writable, or give another)", parent, err)
	}
	removeStale(parent)
	dir, err := os.MkdirTemp(parent, dirPrefix)
	if err != nil {
		return nil, fmt.Errorf("spill: creating a directory for spill files under %s: %w (check that it exists and is writable, or give another)", parent, err)
	}
	return &Store{dir: dir}, nil
}

// dirPrefix starts the names of the stores' directories.
const dirPrefix = "custody-spill-"

// removeStale removes the store directories under parent that have not
// changed for a day: left by processes that crashed (a live store's
// directory changes with every run it writes).
func removeStale(parent string) {
	names, _ := filepath.Glob(filepath.Join(parent, dirPrefix+"*"))
	for _, name := range names {
		if fi, err := os.Lstat(name); err == nil && fi.IsDir() && time.Since(fi.ModTime()) > 24*time.Hour {
			os.RemoveAll(name)
		}
	}
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// Runs returns the number of runs.
func (s *Store) Runs() int { return len(s.runs) }

// Records returns the number of records in all runs, counting a key once
// per run that holds it.
func (s *Store) Records() int64 { return s.keys }

// Bytes returns the size of the run files.
func (s *Store) Bytes() int64 {
	var n int64
	for _, r := range s.runs {
		n += r.size
	}
	return n
}

// Mem returns the bytes of memory the runs hold: their Bloom filters and
// block indexes.
func (s *Store) Mem() int64 {
	var n int64
	for _, r := range s.runs {
		n += r.mem()
	}
	return n
}

// Close closes and removes every run and the store's directory.
func (s *Store) Close() error {
	for _, r := range s.runs {
		r.f.Close()
	}
	s.runs = nil
	return os.RemoveAll(s.dir)
}

// run is one run file and its in-memory filter and block index.
type run struct {
	f     *os.File
	name  string
	size  int64
	n     int64
	level int

	bloom   []uint64 // blocks of 8 words
	merging bool     // being merged into a new run
	probes  int      // bits set per key: about ln 2 times the bits per key
	first   []byte   // first keys of the blocks, back to back
	keyAt   []uint32 // first[keyAt[i]:keyAt[i+1]] is block i's first key
	offs    []int64  // block i starts at offs[i]
}

func (r *run) mem() int64 {
	return int64(len(r.bloom))*8 + int64(cap(r.first)) + int64(cap(r.keyAt))*4 + int64(cap(r.offs))*8
}

func (r *run) blockKey(i int) []byte { return r.first[r.keyAt[i]:r.keyAt[i+1]] }

func (r *run) mayContain(h uint64) bool {
	nb := uint64(len(r.bloom) / 8)
	b := r.bloom[((h>>32)*nb>>32)*8:]
	x := h * 0x9e3779b97f4a7c15
	for range r.probes {
		bit := x >> 55 // 9 bits: one of 512
		if b[bit>>6]&(1<<(bit&63)) == 0 {
			return false
		}
		x = x<<9 | x>>55
	}
	return true
}

func (r *run) add(h uint64) {
	nb := uint64(len(r.bloom) / 8)
	b := r.bloom[((h>>32)*nb>>32)*8:]
	x := h * 0x9e3779b97f4a7c15
	for range r.probes {
		bit := x >> 55
		b[bit>>6] |= 1 << (bit & 63)
		x = x<<9 | x>>55
	}
}

// Writer writes a new run: records in strictly increasing key order.
type Writer struct {
	s     *Store
	r     *run
	w     *bufio.Writer
	off   int64 // bytes written
	block int64 // start of the current block
	prev  []byte
	tmp   []byte
	err   error
}

// NewWriter starts a run of level 0 (a spill) of about n records: its
// Bloom filter, filled as records are added, is sized for n.
func (s *Store) NewWriter(n int64) (*Writer, error) { return s.newWriter(0, n) }

func (s *Store) newWriter(level int, n int64) (*Writer, error) {
	s.seq++
	name := filepath.Join(s.dir, fmt.Sprintf("run-%06d", s.seq))
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("spill: %w", err)
	}
	r := &run{f: f, name: name, level: level}
	bits := s.bitsPerKey(n)
	r.bloom = make([]uint64, max((n*int64(bits)+511)/512, 1)*8)
	r.probes = min(max((bits*69+50)/100, 1), maxProbes)
	return &Writer{s: s, r: r, w: bufio.NewWriterSize(f, 256<<10), block: -1}, nil
}

// Add appends a record; key must be greater than the previous one.
func (w *Writer) Add(key, value []byte) error {
	if w.err != nil {
		return w.err
	}
	if w.r.n > 0 && bytes.Compare(key, w.prev) <= 0 {
		w.err = fmt.Errorf("spill: key %q added after %q: keys must increase", key, w.prev)
		return w.err
	}
	shared := 0
	if w.block < 0 || w.off-w.block >= blockSize {
		// A new block: its first key is whole and indexed.
		w.block = w.off
		w.r.keyAt = append(w.r.keyAt, uint32(len(w.r.first)))
		w.r.first = append(w.r.first, key...)
		w.r.offs = append(w.r.offs, w.off)
	} else {
		for shared < len(key) && shared < len(w.prev) && key[shared] == w.prev[shared] {
			shared++
		}
	}
	b := w.tmp[:0]
	b = binary.AppendUvarint(b, uint64(shared))
	b = binary.AppendUvarint(b, uint64(len(key)-shared))
	b = append(b, key[shared:]...)
	b = binary.AppendUvarint(b, uint64(len(value)))
	b = append(b, value...)
	w.tmp = b
	if _, err := w.w.Write(b); err != nil {
		w.err = fmt.Errorf("spill: writing %s: %w", w.r.name, err)
		return w.err
	}
	w.off += int64(len(b))
	w.prev = append(w.prev[:0], key...)
	w.r.add(hashBytes(key))
	w.r.n++
	return nil
}

// Finish completes the run and pushes it onto the store as its newest,
// then merges runs if there are enough of one level. On error the run is
// removed and the store is as it was.
func (w *Writer) Finish() error {
	r := w.r
	if w.err == nil {
		if err := w.w.Flush(); err != nil {
			w.err = fmt.Errorf("spill: writing %s: %w", r.name, err)
		}
	}
	if w.err != nil {
		r.f.Close()
		os.Remove(r.name)
		return w.err
	}
	w.seal()
	w.s.runs = append(w.s.runs, r)
	w.s.keys += r.n
	return w.s.compact()
}

// seal completes the run's index.
func (w *Writer) seal() {
	r := w.r
	r.size = w.off
	r.keyAt = append(r.keyAt, uint32(len(r.first)))
	r.keyAt = slices.Clip(r.keyAt)
	r.first = slices.Clip(r.first)
	r.offs = slices.Clip(r.offs)
}

// Abort removes an unfinished run.
func (w *Writer) Abort() {
	w.r.f.Close()
	os.Remove(w.r.name)
}

// bitsPerKey is the filter density for a new run of n records: what the
// filter budget leaves after the other runs' filters (those of runs being
// merged away, whose n records are among the store's, do not count).
func (s *Store) bitsPerKey(n int64) int {
	if s.FilterBudget <= 0 {
		return maxBitsPerKey
	}
	var used int64
	for _, r := range s.runs {
		if !r.merging {
			used += int64(len(r.bloom)) * 8
		}
	}
	bits := max(s.FilterBudget-used, 0) * 8 / max(n, 1)
	return int(min(max(bits, minBitsPerKey), maxBitsPerKey))
}

// compact merges the newest mergeFan runs while they have the same level.
func (s *Store) compact() error {
	for len(s.runs) >= mergeFan {
		top := s.runs[len(s.runs)-mergeFan:]
		level := top[0].level
		same := true
		for _, r := range top {
			same = same && r.level == level
		}
		if !same {
			return nil
		}
		if err := s.merge(top, level+1); err != nil {
			return err
		}
	}
	return nil
}

// merge replaces runs, the newest len(runs) of the store, by one run of
// the given level holding the newest value of each of their keys.
func (s *Store) merge(runs []*run, level int) error {
	// The merged run's records are counted once the old runs are gone;
	// its filter is sized for all of theirs, and their filters leave the
	// budget to it.
	var old int64
	for _, r := range runs {
		old += r.n
		r.merging = true
	}
	defer func() {
		for _, r := range runs {
			r.merging = false
		}
	}()
	it, err := newMerged(runs)
	if err != nil {
		return err
	}
	w, err := s.newWriter(level, old)
	if err != nil {
		return err
	}
	for it.Next() {
		if s.Drop != nil && s.Drop(it.Key()) {
			continue
		}
		if err := w.Add(it.Key(), it.Value()); err != nil {
			w.Abort()
			return err
		}
	}
	if err := it.Err(); err != nil {
		w.Abort()
		return err
	}
	if err := w.w.Flush(); err != nil {
		w.Abort()
		return fmt.Errorf("spill: writing %s: %w", w.r.name, err)
	}
	r := w.r
	w.seal()
	for _, o := range runs {
		o.f.Close()
		os.Remove(o.name)
	}
	s.runs = append(s.runs[:len(s.runs)-len(runs)], r)
	s.keys += r.n - old
	return nil
}

// Get returns the newest value of key, whose Hash is h, and whether some
// run holds it. The value is valid until the next call of a Store method.
func (s *Store) Get(key string, h uint64) ([]byte, bool, error) {
	for i := len(s.runs) - 1; i >= 0; i-- {
		r := s.runs[i]
		if !r.mayContain(h) {
			continue
		}
		v, ok, err := s.get(r, key)
		if err != nil || ok {
			return v, ok, err
		}
	}
	return nil, false, nil
}

// get looks key up in r's one block that may hold it.
func (s *Store) get(r *run, key string) ([]byte, bool, error) {
	nblocks := len(r.offs)
	// The last block whose first key is ≤ key.
	i := sort.Search(nblocks, func(i int) bool { return string(r.blockKey(i)) > key }) - 1
	if i < 0 {
		return nil, false, nil
	}
	end := r.size
	if i+1 < nblocks {
		end = r.offs[i+1]
	}
	n := int(end - r.offs[i])
	if cap(s.buf) < n {
		s.buf = make([]byte, n)
	}
	b := s.buf[:n]
	if _, err := r.f.ReadAt(b, r.offs[i]); err != nil {
		return nil, false, fmt.Errorf("spill: reading %s at %d: %w", r.name, r.offs[i], err)
	}
	var k []byte
	for len(b) > 0 {
		var kv []byte
		var err error
		k, kv, b, err = decodeRecord(k, b)
		if err != nil {
			return nil, false, fmt.Errorf("spill: %s, block at %d: %w", r.name, r.offs[i], err)
		}
		switch c := bytes.Compare(k, []byte(key)); {
		case c == 0:
			return kv, true, nil
		case c > 0:
			return nil, false, nil
		}
	}
	return nil, false, nil
}

var errCorrupt = errors.New("corrupt record")

// decodeRecord decodes the record at the start of b, whose key shares a
// prefix with prev; it returns the key (in prev's storage, extended), the
// value (in b) and the rest of b.
func decodeRecord(prev, b []byte) (key, value, rest []byte, err error) {
	shared, n := binary.Uvarint(b)
	if n <= 0 || shared > uint64(len(prev)) {
		return nil, nil, nil, errCorrupt
	}
	b = b[n:]
	suffix, n := binary.Uvarint(b)
	if n <= 0 || suffix > uint64(len(b)-n) {
		return nil, nil, nil, errCorrupt
	}
	key = append(prev[:shared], b[n:n+int(suffix)]...)
	b = b[n+int(suffix):]
	vlen, n := binary.Uvarint(b)
	if n <= 0 || vlen > uint64(len(b)-n) {
		return nil, nil, nil, errCorrupt
	}
	return key, b[n : n+int(vlen)], b[n+int(vlen):], nil
}

// Iter reads the records of one run in order.
type iter struct {
	r   *run
	br  *bufio.Reader
	key []byte
	val []byte
	err error
}

func newIter(r *run) *iter {
	return &iter{r: r, br: bufio.NewReaderSize(io.NewSectionReader(r.f, 0, r.size), 64<<10)}
}

func (it *iter) next() bool {
	if it.err != nil {
		return false
	}
	shared, err := binary.ReadUvarint(it.br)
	if err == io.EOF {
		return false
	}
	suffix, err2 := binary.ReadUvarint(it.br)
	if err != nil || err2 != nil || shared > uint64(len(it.key)) || suffix > 1<<30 {
		it.err = fmt.Errorf("spill: %s: %w", it.r.name, errCorrupt)
		return false
	}
	it.key = slices.Grow(it.key[:shared], int(suffix))[:shared+suffix]
	if _, err := io.ReadFull(it.br, it.key[shared:]); err != nil {
		it.err = fmt.Errorf("spill: %s: %w", it.r.name, errCorrupt)
		return false
	}
	vlen, err := binary.ReadUvarint(it.br)
	if err != nil || vlen > 1<<30 {
		it.err = fmt.Errorf("spill: %s: %w", it.r.name, errCorrupt)
		return false
	}
	it.val = slices.Grow(it.val[:0], int(vlen))[:vlen]
	if _, err := io.ReadFull(it.br, it.val); err != nil {
		it.err = fmt.Errorf("spill: %s: %w", it.r.name, errCorrupt)
		return false
	}
	return true
}

// Merged reads the newest value of every key of several runs, in key
// order.
type Merged struct {
	its  []*iter // oldest first
	live []bool
	cur  int // the iterator whose record is current
	err  error
	init bool
}

func newMerged(runs []*run) (*Merged, error) {
	m := &Merged{cur: -1}
	for _, r := range runs {
		m.its = append(m.its, newIter(r))
	}
	m.live = make([]bool, len(m.its))
	return m, nil
}

// Iter returns an iterator over the newest value of every key in the
// store, in key order. The store must not change while it is used.
func (s *Store) Iter() *Merged {
	m, _ := newMerged(s.runs)
	return m
}

// Next moves to the next key; it returns false at the end or on error.
func (m *Merged) Next() bool {
	if m.err != nil {
		return false
	}
	if !m.init {
		m.init = true
		for i, it := range m.its {
			m.live[i] = it.next()
			if it.err != nil {
				m.err = it.err
				return false
			}
		}
	} else if m.cur >= 0 {
		// Advance every iterator at the current key.
		key := m.its[m.cur].key
		for i, it := range m.its {
			if i != m.cur && m.live[i] && bytes.Equal(it.key, key) {
				m.live[i] = it.next()
				if it.err != nil {
					m.err = it.err
					return false
				}
			}
		}
		it := m.its[m.cur]
		m.live[m.cur] = it.next()
		if it.err != nil {
			m.err = it.err
			return false
		}
	}
	// The smallest key; among equal keys the newest run.
	m.cur = -1
	for i := len(m.its) - 1; i >= 0; i-- {
		if !m.live[i] {
			continue
		}
		if m.cur < 0 || bytes.Compare(m.its[i].key, m.its[m.cur].key) < 0 {
			m.cur = i
		}
	}
	return m.cur >= 0
}

// Key returns the current key, valid until Next.
func (m *Merged) Key() []byte { return m.its[m.cur].key }

// Value returns the current key's newest value, valid until Next.
func (m *Merged) Value() []byte { return m.its[m.cur].val }

// Err returns the error that ended the iteration, if any.
func (m *Merged) Err() error { return m.err }
