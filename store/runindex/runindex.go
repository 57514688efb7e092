// Package runindex is a persistent multimap from 64-bit keys (hash
// prefixes) to log indexes, built for the derived lookups of a log that
// only grows: by identity, by leaf hash, by sample. Memory stays bounded
// and opening takes milliseconds whatever the log's size, where an
// in-memory table costs tens of bytes per entry and a rebuild at every
// start.
//
// It is a small log-structured merge tree specialised for fixed-size
// records. Each table has an in-memory buffer of the newest entries; when
// the buffer holds BufferEntries entries, all tables' buffers are written,
// sorted, as immutable run files of 16-byte records (key, index; big
// endian) in blocks of 256, followed by the first key of every block (the
// fences, kept in memory: 8 bytes per 256 records) and, for tables that
// ask for one, a blocked Bloom filter (BloomBits per key) so that looking
// up an absent key rarely reads a block. Filters are kept in memory up to
// BloomMemory bytes in all (the runs opened or written first get them);
// the filters of the other runs stay in their files and a lookup reads
// the one 64-byte filter block it needs, so memory stays bounded however
// large the log grows: about 1.25 bytes per entry would be 1.25 GB at a
// billion entries. Runs are merged
// in the background, FanIn runs of one level into one run of the next, so
// a table has O(log n) runs. A lookup reads at most one block per run
// whose filter and fences allow the key; files are read with pread, not
// mapped, so the process's resident memory is the buffers, fences and
// filters, and the operating system's page cache keeps hot blocks.
//
// # Durability
//
// The index is derived data: it is never fsynced with the log. A MANIFEST,
// replaced atomically (write, fsync, rename, fsync of the directory) after
// each flush or merge, lists the live runs and the watermark: entries
// [0, Watermark) are durably indexed. After a crash the caller re-adds the
// entries from Watermark on (at most two buffers' worth) from the log
// itself; files the MANIFEST does not name are leftovers of an interrupted
// flush or merge and are removed at Open.
//
// # Trust
//
// Keys are prefixes, so a lookup returns candidates: the caller confirms
// each against the stored entry, and a prefix collision (accidental or
// crafted) costs a read, never a wrong answer. Keys are mixed with a seed
// chosen at creation, so nobody can choose keys that collide in the
// buffers' hash tables. A key may have any number of values (a sample with
// many events); the buffer chains the values of one key, so adding is
// O(1) however many the key has.
package runindex

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Defaults for Options.
const (
	DefaultBufferEntries = 1 << 16
	DefaultFanIn         = 4
	DefaultBloomBits     = 10
	DefaultBloomMemory   = 16 << 20
)

const (
	recSize     = 16
	blockRecs   = 256
	blockBytes  = blockRecs * recSize
	footerSize  = 48
	runMagic    = "cRUNidx1"
	manifestVer = 1
	manifest    = "MANIFEST"
)

// Options configure an Index. The table layout (Tables, Bloom) must be the
// same every time an index is opened.
type Options struct {
	// Tables is the number of tables (e.g. 3: identity, leaf hash, sample).
	Tables int
	// Bloom lists, per table, whether its runs carry a Bloom filter: worth
	// it for tables looked up mostly for absent keys (de-duplication).
	Bloom []bool
	// BufferEntries is how many entries are buffered in memory before
	// they are written as runs (default DefaultBufferEntries).
	BufferEntries int
	// FanIn is how many runs of one level are merged into one of the next
	// (default DefaultFanIn).
	FanIn int
	// BloomBits is the Bloom filter size per key (default
	// DefaultBloomBits, about 1% false positives).
	BloomBits int
	// BloomMemory bounds the bytes of Bloom filters kept in memory
	// (default DefaultBloomMemory; negative: none). The filters of runs
	// beyond it are read from their files, one 64-byte block a lookup.
	BloomMemory int64
}

// ErrLocked is returned by Open when another Index (in this process or
// another) has the directory open: one directory has one writer.
var ErrLocked = errors.New("index is open elsewhere")

// ErrLayout is returned by Open when the index on disk was made with
// another table layout: remove the directory and re-index.
var ErrLayout = errors.New("index was created with another table layout")

// Index is a persistent multimap. One goroutine may Add at a time; Lookup
// is safe concurrently with everything.
type Index struct {
	dir  string
	opts Options
	seed uint64

	bloomUsed atomic.Int64 // bytes of Bloom filters in memory

	mu     sync.RWMutex // guards runs, imm, err
	runs   [][]*run     // per table, oldest first
	imm    []*buffer    // buffers being flushed, or nil
	err    error        // a background failure: the index is unusable
	flushC *sync.Cond   // signalled when imm is cleared

	mem      []*buffer // the newest entries, per table (written by Add only)
	next     uint64    // entries [0, next) are indexed
	lastKeys []uint64  // the keys of entry next-1
	wm       uint64    // entries [0, wm) are in runs named by the MANIFEST
	wmKeys   []uint64  // the keys of entry wm-1
	unlock   func()

	seqMu   sync.Mutex
	nextSeq uint64
	manMu   sync.Mutex

	flushq  chan flushJob // the buffers handed to the flusher
	kick    chan struct{} // wakes the merger
	flushed chan struct{} // closed when the flusher has stopped
	merged  chan struct{} // closed when the merger has stopped
	closed  bool
}

type manifestFile struct {
	Version   int    `json:"version"`
	Tables    int    `json:"tables"`
	Bloom     []bool `json:"bloom"`
	Seed      uint64 `json:"seed"`
	Watermark uint64 `json:"watermark"`
	// WatermarkKeys are the keys of entry Watermark-1, one per table: the
	// owner checks them against its log to tell an index of another log.
	WatermarkKeys []uint64  `json:"watermark_keys,omitempty"`
	NextSeq       uint64    `json:"next_seq"`
	Runs          []runMeta `json:"runs"`
}

type runMeta struct {
	Table int    `json:"table"`
	Level int    `json:"level"`
	Seq   uint64 `json:"seq"`
}

// Open opens the index in dir, creating the directory and an empty index
// if there is none. Entries [0, Watermark()) are indexed; the caller adds
// the rest from the log. It starts the background flusher and merger,
// which Close stops.
func Open(dir string, opts Options) (*Index, error) {
	if opts.Tables < 1 || len(opts.Bloom) != opts.Tables {
		return nil, fmt.Errorf("runindex: %d tables with %d Bloom settings", opts.Tables, len(opts.Bloom))
	}
	if opts.BufferEntries <= 0 {
		opts.BufferEntries = DefaultBufferEntries
	}
	if opts.FanIn < 2 {
		opts.FanIn = DefaultFanIn
	}
	if opts.BloomBits <= 0 {
		opts.BloomBits = DefaultBloomBits
	}
	if opts.BloomMemory == 0 {
		opts.BloomMemory = DefaultBloomMemory
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("runindex: %w", err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, fmt.Errorf("runindex: %s: %w", dir, err)
	}
	x, err := open(dir, opts)
	if err != nil {
		unlock()
		return nil, err
	}
	x.unlock = unlock
	return x, nil
}

func open(dir string, opts Options) (*Index, error) {
	x := &Index{dir: dir, opts: opts, runs: make([][]*run, opts.Tables), seed: rand.Uint64(),
		flushq: make(chan flushJob, 1), kick: make(chan struct{}, 1), flushed: make(chan struct{}), merged: make(chan struct{})}
	x.flushC = sync.NewCond(&x.mu)
	var m manifestFile
	b, err := os.ReadFile(filepath.Join(dir, manifest))
	switch {
	case errors.Is(err, os.ErrNotExist):
		m = manifestFile{Version: manifestVer, Tables: opts.Tables, Bloom: opts.Bloom, Seed: x.seed}
	case err != nil:
		return nil, fmt.Errorf("runindex: %w", err)
	default:
		if err := json.Unmarshal(b, &m); err != nil || m.Version != manifestVer {
			return nil, fmt.Errorf("runindex: %s/%s is not a version %d manifest (%v): remove the directory to re-index", dir, manifest, manifestVer, err)
		}
		if m.Tables != opts.Tables || !slices.Equal(m.Bloom, opts.Bloom) {
			return nil, fmt.Errorf("runindex: %s: %w", dir, ErrLayout)
		}
	}
	if m.Watermark > 0 && len(m.WatermarkKeys) != opts.Tables {
		return nil, fmt.Errorf("runindex: %s/%s has no keys for its watermark: remove the directory to re-index", dir, manifest)
	}
	x.seed, x.wm, x.next, x.nextSeq, x.wmKeys = m.Seed, m.Watermark, m.Watermark, m.NextSeq, m.WatermarkKeys
	live := map[string]bool{manifest: true}
	for _, rm := range m.Runs {
		if rm.Table < 0 || rm.Table >= opts.Tables {
			x.closeRuns()
			return nil, fmt.Errorf("runindex: %s names table %d of %d", manifest, rm.Table, opts.Tables)
		}
		r, err := x.openRun(runPath(dir, rm.Table, rm.Seq), rm.Level)
		if err != nil {
			x.closeRuns()
			return nil, fmt.Errorf("runindex: %w: remove %s to re-index", err, dir)
		}
		r.table, r.seq = rm.Table, rm.Seq
		x.runs[rm.Table] = append(x.runs[rm.Table], r)
		live[filepath.Base(r.f.Name())] = true
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		x.closeRuns()
		return nil, fmt.Errorf("runindex: %w", err)
	}
	for _, e := range ents {
		if n := e.Name(); !live[n] && (strings.HasSuffix(n, ".run") || n == manifest+".tmp") {
			os.Remove(filepath.Join(dir, n)) // left by an interrupted flush or merge
		}
	}
	x.mem = x.newBuffers()
	go x.flusher()
	go x.merger()
	return x, nil
}

func runPath(dir string, table int, seq uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%d-%016d.run", table, seq))
}

// Watermark returns the number of entries durably indexed: after a crash,
// Open returns an index holding exactly entries [0, Watermark()).
func (x *Index) Watermark() uint64 {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.wm
}

// Next returns the number of entries indexed (some perhaps only in
// memory): the next Add must start at this index.
func (x *Index) Next() uint64 { return x.next }

// Add indexes entries first to first+n-1: keys[t][i] is entry first+i's
// key in table t (every table gets exactly n keys). first must be Next().
// It blocks while a previous buffer is still being written, and returns
// the error of a failed background write (the index is then unusable:
// close it, remove its directory and re-index).
func (x *Index) Add(first uint64, keys [][]uint64) error {
	if err := x.failed(); err != nil {
		return err
	}
	if len(keys) != x.opts.Tables {
		return fmt.Errorf("runindex: %d key lists for %d tables", len(keys), x.opts.Tables)
	}
	if first != x.next {
		return fmt.Errorf("runindex: adding from entry %d, but %d entries are indexed", first, x.next)
	}
	n := len(keys[0])
	for t := range keys {
		if len(keys[t]) != n {
			return fmt.Errorf("runindex: table %d has %d keys, table 0 has %d", t, len(keys[t]), n)
		}
	}
	x.mu.Lock()
	for t, ks := range keys {
		for i, k := range ks {
			x.mem[t].add(mix(k^x.seed), first+uint64(i))
		}
	}
	if n > 0 {
		x.lastKeys = make([]uint64, len(keys))
		for t := range keys {
			x.lastKeys[t] = keys[t][n-1]
		}
	}
	x.next = first + uint64(n)
	full := x.mem[0].len() >= x.opts.BufferEntries
	x.mu.Unlock()
	if full {
		return x.rotate()
	}
	return nil
}

// Sync writes the buffered entries as runs and waits until the MANIFEST
// names them, so that Watermark() == Next().
func (x *Index) Sync() error {
	if x.mem[0].len() > 0 {
		if err := x.rotate(); err != nil {
			return err
		}
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	for x.imm != nil && x.err == nil {
		x.flushC.Wait()
	}
	return x.err
}

// rotate hands the buffers to the flusher, waiting while an earlier set is
// still being written.
func (x *Index) rotate() error {
	x.mu.Lock()
	for x.imm != nil && x.err == nil {
		x.flushC.Wait()
	}
	if x.err != nil {
		x.mu.Unlock()
		return x.err
	}
	x.imm, x.mem = x.mem, x.newBuffers()
	job := flushJob{end: x.next, keys: x.lastKeys}
	x.mu.Unlock()
	x.flushq <- job
	return nil
}

// flushJob is a set of buffers to write: they end at entry end-1, whose
// keys are keys.
type flushJob struct {
	end  uint64
	keys []uint64
}

func (x *Index) failed() error {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.err
}

func (x *Index) fail(err error) {
	x.mu.Lock()
	if x.err == nil {
		x.err = fmt.Errorf("runindex %s: %w", x.dir, err)
	}
	x.flushC.Broadcast()
	x.mu.Unlock()
}

// Lookup appends to dst the values of key k in table t: every index added
// with that key, and (rarely) indexes of other keys with the same 64-bit
// prefix, which the caller must rule out. The order is unspecified.
func (x *Index) Lookup(t int, k uint64, dst []uint64) ([]uint64, error) {
	var buf []byte // a block buffer, taken from the pool only if a run is read
	defer func() {
		if buf != nil {
			blockPool.Put(&buf)
		}
	}()
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.err != nil {
		return dst, x.err
	}
	h := mix(k ^ x.seed)
	dst = x.mem[t].get(h, dst)
	if x.imm != nil {
		dst = x.imm[t].get(h, dst)
	}
	var err error
	for _, r := range x.runs[t] {
		if dst, err = r.get(h, &buf, dst); err != nil {
			return dst, fmt.Errorf("runindex: %w", err)
		}
	}
	return dst, nil
}

// Close writes the buffered entries (so that a clean shutdown leaves
// Watermark() == Next()), stops the background work and closes the files.
func (x *Index) Close() error {
	if x.closed {
		return nil
	}
	x.closed = true
	err := x.Sync()
	x.stop()
	if e := x.failed(); err == nil {
		err = e
	}
	x.closeRuns()
	if x.unlock != nil {
		x.unlock()
	}
	return err
}

// WatermarkKeys returns the keys, one per table, of entry Watermark()-1
// (nil when Watermark() is 0). Whoever re-opens an index checks them
// against entry Watermark()-1 of its log: a mismatch means the index was
// built for another log (a database restored from a backup, or replaced),
// and must be removed and rebuilt.
func (x *Index) WatermarkKeys() []uint64 {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return slices.Clone(x.wmKeys)
}

// stop stops the flusher, then the merger (which the flusher wakes).
func (x *Index) stop() {
	close(x.flushq)
	<-x.flushed
	close(x.kick)
	<-x.merged
}

func (x *Index) closeRuns() {
	for _, rs := range x.runs {
		for _, r := range rs {
			r.close()
		}
	}
}

func (x *Index) newBuffers() []*buffer {
	bs := make([]*buffer, x.opts.Tables)
	for i := range bs {
		bs[i] = newBuffer(x.opts.BufferEntries)
	}
	return bs
}

func (x *Index) newSeq() uint64 {
	x.seqMu.Lock()
	defer x.seqMu.Unlock()
	x.nextSeq++
	return x.nextSeq - 1
}

// flusher writes rotated buffers as level-0 runs.
func (x *Index) flusher() {
	defer close(x.flushed)
	for job := range x.flushq {
		if x.failed() != nil {
			continue
		}
		if err := x.flush(job); err != nil {
			x.fail(err)
			continue
		}
		select {
		case x.kick <- struct{}{}:
		default:
		}
	}
}

func (x *Index) flush(job flushJob) error {
	x.mu.RLock()
	imm := x.imm
	x.mu.RUnlock()
	nr := make([]*run, len(imm))
	for t, b := range imm {
		recs := b.sorted()
		seq := x.newSeq()
		w, err := x.newRunWriter(t, uint64(len(recs)))
		if err != nil {
			return err
		}
		for _, r := range recs {
			if err := w.add(r.h, r.v); err != nil {
				w.abort()
				return err
			}
		}
		if nr[t], err = w.finish(seq, 0); err != nil {
			return err
		}
	}
	x.mu.Lock()
	for t, r := range nr {
		x.runs[t] = append(slices.Clone(x.runs[t]), r)
	}
	x.imm = nil
	x.wm, x.wmKeys = job.end, job.keys
	x.flushC.Broadcast()
	x.mu.Unlock()
	return x.writeManifest()
}

// merger merges runs while some level of some table has FanIn of them.
func (x *Index) merger() {
	defer close(x.merged)
	for range x.kick {
		for x.failed() == nil {
			did, err := x.mergeOnce()
			if err != nil {
				x.fail(err)
			}
			if !did || err != nil {
				break
			}
		}
	}
}

// mergeOnce merges the oldest FanIn runs of the lowest level that has that
// many, in some table. It reports whether it merged anything.
func (x *Index) mergeOnce() (bool, error) {
	for t := range x.opts.Tables {
		x.mu.RLock()
		runs := x.runs[t]
		x.mu.RUnlock()
		var in []*run
		for lvl := 0; lvl < 64 && in == nil; lvl++ {
			var at []*run
			for _, r := range runs {
				if r.level == lvl {
					at = append(at, r)
				}
			}
			if len(at) >= x.opts.FanIn {
				in = at[:x.opts.FanIn]
			}
		}
		if in == nil {
			continue
		}
		var total uint64
		srcs := make([]*runReader, len(in))
		for i, r := range in {
			total += r.n
			srcs[i] = newRunReader(r)
		}
		w, err := x.newRunWriter(t, total)
		if err != nil {
			return false, err
		}
		for {
			var best *runReader
			for _, s := range srcs {
				if s.ok && (best == nil || s.h < best.h || s.h == best.h && s.v < best.v) {
					best = s
				}
			}
			if best == nil {
				break
			}
			if err := w.add(best.h, best.v); err != nil {
				w.abort()
				return false, err
			}
			best.next()
		}
		for _, s := range srcs {
			if s.err != nil {
				w.abort()
				return false, s.err
			}
		}
		nr, err := w.finish(x.newSeq(), in[0].level+1)
		if err != nil {
			return false, err
		}
		x.mu.Lock()
		keep := []*run{nr}
		for _, r := range x.runs[t] {
			if !slices.Contains(in, r) {
				keep = append(keep, r)
			}
		}
		x.runs[t] = keep
		x.mu.Unlock()
		if err := x.writeManifest(); err != nil {
			return false, err
		}
		// No lookup holds the old runs now: lookups hold x.mu.RLock.
		for _, r := range in {
			r.close()
			// By its final name: r.f.Name() is the temporary name the run
			// was written under when this process wrote it.
			os.Remove(runPath(x.dir, r.table, r.seq))
		}
		return true, nil
	}
	return false, nil
}

// writeManifest replaces the MANIFEST with the current runs and watermark.
func (x *Index) writeManifest() error {
	x.manMu.Lock()
	defer x.manMu.Unlock()
	x.seqMu.Lock()
	next := x.nextSeq
	x.seqMu.Unlock()
	x.mu.RLock()
	m := manifestFile{Version: manifestVer, Tables: x.opts.Tables, Bloom: x.opts.Bloom, Seed: x.seed, Watermark: x.wm, WatermarkKeys: x.wmKeys, NextSeq: next}
	for t := range x.runs {
		for _, r := range x.runs[t] {
			m.Runs = append(m.Runs, runMeta{Table: t, Level: r.level, Seq: r.seq})
		}
	}
	x.mu.RUnlock()
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return writeFileAtomic(x.dir, manifest, b)
}

// writeFileAtomic replaces dir/name with data: temporary file, fsync,
// rename, fsync of the directory.
func writeFileAtomic(dir, name string, data []byte) error {
	tmp := filepath.Join(dir, name+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err = f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// mix spreads a key with the index's seed; records are sorted by the
// mixed key, so the order on disk is unpredictable to whoever chooses keys.
func mix(k uint64) uint64 {
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	k *= 0xc4ceb9fe1a85ec53
	return k ^ k>>33
}

// buffer is a table's in-memory entries: records in arrival order, a hash
// table from mixed key to the newest record of that key, and a chain from
// each record to the previous one of its key.
type buffer struct {
	recs  []record
	prev  []int32
	heads map[uint64]int32
}

// record is one entry of a table: its mixed key (mix is a bijection, so
// equal mixed keys mean equal keys) and value.
type record struct{ h, v uint64 }

func newBuffer(n int) *buffer {
	return &buffer{recs: make([]record, 0, n+n/8), prev: make([]int32, 0, n+n/8), heads: make(map[uint64]int32, n)}
}

func (b *buffer) len() int { return len(b.recs) }

func (b *buffer) add(h, v uint64) {
	p, ok := b.heads[h]
	if !ok {
		p = -1
	}
	b.heads[h] = int32(len(b.recs))
	b.recs = append(b.recs, record{h, v})
	b.prev = append(b.prev, p)
}

func (b *buffer) get(h uint64, dst []uint64) []uint64 {
	i, ok := b.heads[h]
	for ok && i >= 0 {
		dst = append(dst, b.recs[i].v)
		i = b.prev[i]
	}
	return dst
}

// sorted returns the records in (mixed key, value) order.
func (b *buffer) sorted() []record {
	out := slices.Clone(b.recs)
	slices.SortFunc(out, func(a, c record) int {
		if a.h != c.h {
			return cmp.Compare(a.h, c.h)
		}
		return cmp.Compare(a.v, c.v)
	})
	return out
}

// run is one immutable run file: n records (mixed key, value), sorted,
// in blocks of blockRecs; the first mixed key of each block in fences; an
// optional Bloom filter over the mixed keys.
type run struct {
	f       *os.File
	table   int
	seq     uint64
	level   int
	n       uint64
	fences  []uint64
	nblocks int      // 512-bit Bloom filter blocks; 0: no filter
	bloomAt int64    // file offset of the filter
	bloom   []uint64 // the filter in memory, or nil: read from the file
	free    func()   // releases bloom's memory

	// checked, when not nil, is closed once the filter left in the file
	// has been read through and checked against the checksum (in the
	// background after Open, so that opening a large index stays fast);
	// checkErr is then set if it failed. Lookups that need the filter
	// wait for it.
	checked  chan struct{}
	checkErr error
}

// The file: records (16 bytes each: mixed key, value; big endian), fences
// (8 bytes each), Bloom words (8 bytes each, big endian), then the footer:
// magic, n, number of fences, number of Bloom words, CRC-32C of fences
// and Bloom words, unused.
func (x *Index) openRun(path string, level int) (*run, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r, err := x.readRun(f, level)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("run %s: %w", path, err)
	}
	return r, nil
}

// readRun reads a run's footer and fences, checks their checksum and the
// filter's (reading the filter once, in 1 MiB pieces, with no copy on the
// Go heap) and keeps the filter in memory if the budget allows.
func (x *Index) readRun(f *os.File, level int) (*run, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() < footerSize {
		return nil, errors.New("shorter than its footer")
	}
	var ft [footerSize]byte
	if _, err := f.ReadAt(ft[:], fi.Size()-footerSize); err != nil {
		return nil, err
	}
	if string(ft[:8]) != runMagic {
		return nil, errors.New("not a run file")
	}
	n, nf, nb := binary.BigEndian.Uint64(ft[8:]), binary.BigEndian.Uint64(ft[16:]), binary.BigEndian.Uint64(ft[24:])
	if nf != (n+blockRecs-1)/blockRecs || nb%8 != 0 || uint64(fi.Size()) != n*recSize+8*nf+8*nb+footerSize {
		return nil, errors.New("footer does not match the file's size")
	}
	meta := make([]byte, 8*nf)
	if _, err := f.ReadAt(meta, int64(n*recSize)); err != nil {
		return nil, err
	}
	crc := crc32.Update(0, castagnoli, meta)
	want := binary.BigEndian.Uint32(ft[32:])
	r := &run{f: f, level: level, n: n, fences: make([]uint64, nf), nblocks: int(nb / 8), bloomAt: int64(n*recSize + 8*nf)}
	for i := range r.fences {
		r.fences[i] = binary.BigEndian.Uint64(meta[8*i:])
	}
	if nb > 0 {
		inMemory, err := x.loadBloom(r, &crc)
		if err != nil {
			return nil, err
		}
		if !inMemory {
			r.checked = make(chan struct{})
			go r.checkFilter(crc, want)
			return r, nil
		}
	}
	if crc != want {
		r.close()
		return nil, errChecksum
	}
	return r, nil
}

var errChecksum = errors.New("fences or Bloom filter fail their checksum")

// checkFilter reads the filter left in r's file, adds it to crc (that of
// the fences) and compares the result with want, then closes r.checked.
func (r *run) checkFilter(crc, want uint32) {
	defer close(r.checked)
	buf := make([]byte, 1<<20)
	for off, size := int64(0), int64(64*r.nblocks); off < size; {
		k := min(int64(len(buf)), size-off)
		if _, err := r.f.ReadAt(buf[:k], r.bloomAt+off); err != nil {
			r.checkErr = fmt.Errorf("reading the Bloom filter of %s: %w", r.f.Name(), err)
			return
		}
		crc = crc32.Update(crc, castagnoli, buf[:k])
		off += k
	}
	if crc != want {
		r.checkErr = fmt.Errorf("run %s: %w: remove %s to re-index", r.f.Name(), errChecksum, filepath.Dir(r.f.Name()))
	}
}

// loadBloom reads r's filter into memory if the budget allows, adding it
// to the checksum *crc when crc is not nil, and reports whether it did.
// On error it closes r.
func (x *Index) loadBloom(r *run, crc *uint32) (bool, error) {
	words := 8 * r.nblocks
	if !x.takeBloomMemory(int64(words) * 8) {
		return false, nil
	}
	r.bloom, r.free = allocWords(words)
	release := r.free
	r.free = func() { release(); x.bloomUsed.Add(-int64(words) * 8) }
	buf := make([]byte, 1<<20)
	for off := 0; off < words*8; {
		k := min(len(buf), words*8-off)
		if _, err := r.f.ReadAt(buf[:k], r.bloomAt+int64(off)); err != nil {
			r.close()
			return false, err
		}
		if crc != nil {
			*crc = crc32.Update(*crc, castagnoli, buf[:k])
		}
		for i := 0; i < k; i += 8 {
			r.bloom[(off+i)/8] = binary.BigEndian.Uint64(buf[i:])
		}
		off += k
	}
	return true, nil
}

// takeBloomMemory reserves n bytes of the Bloom budget, if they fit.
func (x *Index) takeBloomMemory(n int64) bool {
	for {
		used := x.bloomUsed.Load()
		if x.opts.BloomMemory < 0 || used+n > x.opts.BloomMemory {
			return false
		}
		if x.bloomUsed.CompareAndSwap(used, used+n) {
			return true
		}
	}
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func (r *run) close() {
	if r.checked != nil {
		<-r.checked // the check reads the file
	}
	r.f.Close()
	if r.free != nil {
		r.free()
		r.free, r.bloom = nil, nil
	}
}

// The Bloom filter is blocked: a key sets 7 bits within one 512-bit block.
const bloomProbes = 7

func bloomBlock(h uint64, nblocks int) (int, uint64) {
	return int((h >> 32) * uint64(nblocks) >> 32), h * 0x9e3779b97f4a7c15
}

func (r *run) mayContain(h uint64) (bool, error) {
	if r.nblocks == 0 {
		return true, nil
	}
	b, bits := bloomBlock(h, r.nblocks)
	var blk []uint64
	if r.bloom != nil {
		blk = r.bloom[8*b : 8*b+8]
	} else {
		if r.checked != nil {
			<-r.checked
			if r.checkErr != nil {
				return false, r.checkErr
			}
		}
		var raw [64]byte
		if _, err := r.f.ReadAt(raw[:], r.bloomAt+64*int64(b)); err != nil {
			return false, err
		}
		var words [8]uint64
		for i := range words {
			words[i] = binary.BigEndian.Uint64(raw[8*i:])
		}
		blk = words[:]
	}
	return bloomHas(blk, bits), nil
}

// bloomHas reports whether the filter block blk has every bit of a key
// whose bit positions are bits.
func bloomHas(blk []uint64, bits uint64) bool {
	for i := range bloomProbes {
		bit := (bits >> (9 * i)) & 511
		if blk[bit>>6]&(1<<(bit&63)) == 0 {
			return false
		}
	}
	return true
}

// blockPool holds block buffers for lookups: most lookups of an absent
// identity read no block at all, and should not pay for clearing one.
var blockPool = sync.Pool{New: func() any { b := make([]byte, blockBytes); return &b }}

// get appends the values of the records with mixed key h, reading blocks
// into *buf (taken from blockPool when nil).
func (r *run) get(h uint64, buf *[]byte, dst []uint64) ([]uint64, error) {
	if r.n == 0 {
		return dst, nil
	}
	if ok, err := r.mayContain(h); !ok || err != nil {
		return dst, err
	}
	if *buf == nil {
		*buf = *blockPool.Get().(*[]byte)
	}
	// The first block that may hold h: the last whose first key is < h
	// (records of h may start at the end of the block before the first
	// fence equal to h).
	b := sort.Search(len(r.fences), func(i int) bool { return r.fences[i] >= h })
	if b > 0 {
		b--
	}
	for ; b < len(r.fences) && (r.fences[b] <= h || b == 0); b++ {
		lo, hi := uint64(b)*blockRecs, min(r.n, uint64(b+1)*blockRecs)
		blk := (*buf)[:(hi-lo)*recSize]
		if _, err := r.f.ReadAt(blk, int64(lo*recSize)); err != nil {
			return dst, err
		}
		for i := 0; i < len(blk); i += recSize {
			switch kk := binary.BigEndian.Uint64(blk[i:]); {
			case kk == h:
				dst = append(dst, binary.BigEndian.Uint64(blk[i+8:]))
			case kk > h:
				return dst, nil
			}
		}
	}
	return dst, nil
}

// runWriter streams sorted records into a new run file.
type runWriter struct {
	x      *Index
	table  int
	f      *os.File
	w      *bufio.Writer
	n      uint64
	fences []uint64
	last   uint64

	// The filter is written as the records are: a key's block
	// (bloomBlock) never decreases as the keys grow, so only the current
	// block is in memory and the others go, in order, to a temporary file
	// that finish appends to the run.
	nblocks int
	bf      *os.File
	bw      *bufio.Writer
	cur     int       // the block in blk; blocks before it are written
	blk     [8]uint64 // the current block
}

func (x *Index) newRunWriter(table int, total uint64) (*runWriter, error) {
	f, err := os.CreateTemp(x.dir, "tmp-*.run")
	if err != nil {
		return nil, err
	}
	w := &runWriter{x: x, table: table, f: f, w: bufio.NewWriterSize(f, 1<<20)}
	if x.opts.Bloom[table] {
		w.nblocks = int(max(1, (total*uint64(x.opts.BloomBits)+511)/512))
		if w.bf, err = os.CreateTemp(x.dir, "tmp-*.bloom.run"); err != nil {
			f.Close()
			os.Remove(f.Name())
			return nil, err
		}
		w.bw = bufio.NewWriterSize(w.bf, 256<<10)
	}
	return w, nil
}

func (w *runWriter) add(h, v uint64) error {
	if w.n > 0 && h < w.last {
		return fmt.Errorf("internal error: run records out of order")
	}
	w.last = h
	if w.n%blockRecs == 0 {
		w.fences = append(w.fences, h)
	}
	if w.nblocks > 0 {
		b, bits := bloomBlock(h, w.nblocks)
		if err := w.bloomTo(b); err != nil {
			return err
		}
		for i := range bloomProbes {
			bit := (bits >> (9 * i)) & 511
			w.blk[bit>>6] |= 1 << (bit & 63)
		}
	}
	w.n++
	var rec [recSize]byte
	binary.BigEndian.PutUint64(rec[:], h)
	binary.BigEndian.PutUint64(rec[8:], v)
	_, err := w.w.Write(rec[:])
	return err
}

// bloomTo writes the filter blocks before block b (the current one, then
// empty ones) and makes b current.
func (w *runWriter) bloomTo(b int) error {
	var raw [64]byte
	for ; w.cur < b; w.cur++ {
		for i, v := range w.blk {
			binary.BigEndian.PutUint64(raw[8*i:], v)
		}
		if _, err := w.bw.Write(raw[:]); err != nil {
			return err
		}
		w.blk = [8]uint64{}
	}
	return nil
}

func (w *runWriter) abort() {
	w.f.Close()
	os.Remove(w.f.Name())
	w.dropBloomFile()
}

func (w *runWriter) dropBloomFile() {
	if w.bf != nil {
		w.bf.Close()
		os.Remove(w.bf.Name())
		w.bf = nil
	}
}

// finish writes the fences, filter and footer, fsyncs the file, gives it
// its final name and returns it open as a run.
func (w *runWriter) finish(seq uint64, level int) (*run, error) {
	meta := make([]byte, 0, 8*len(w.fences))
	for _, v := range w.fences {
		meta = binary.BigEndian.AppendUint64(meta, v)
	}
	crc := crc32.New(castagnoli)
	crc.Write(meta)
	w.w.Write(meta)
	if w.nblocks > 0 {
		err := w.bloomTo(w.nblocks)
		if err == nil {
			err = w.bw.Flush()
		}
		if err == nil {
			_, err = w.bf.Seek(0, io.SeekStart)
		}
		if err == nil {
			_, err = io.Copy(io.MultiWriter(w.w, crc), bufio.NewReaderSize(w.bf, 256<<10))
		}
		w.dropBloomFile()
		if err != nil {
			w.abort()
			return nil, err
		}
	}
	var ft [footerSize]byte
	copy(ft[:], runMagic)
	binary.BigEndian.PutUint64(ft[8:], w.n)
	binary.BigEndian.PutUint64(ft[16:], uint64(len(w.fences)))
	binary.BigEndian.PutUint64(ft[24:], uint64(8*w.nblocks))
	binary.BigEndian.PutUint32(ft[32:], crc.Sum32())
	w.w.Write(ft[:])
	err := w.w.Flush()
	if err == nil {
		err = w.f.Sync()
	}
	if err != nil {
		w.abort()
		return nil, err
	}
	path := runPath(w.x.dir, w.table, seq)
	if err := os.Rename(w.f.Name(), path); err != nil {
		w.abort()
		return nil, err
	}
	r := &run{f: w.f, table: w.table, seq: seq, level: level, n: w.n, fences: w.fences,
		nblocks: w.nblocks, bloomAt: int64(w.n*recSize) + 8*int64(len(w.fences))}
	if r.nblocks > 0 {
		if _, err := w.x.loadBloom(r, nil); err != nil {
			return nil, fmt.Errorf("reading back the filter of %s: %w", path, err)
		}
	}
	return r, nil
}

// runReader reads a run's records in order, for merging.
type runReader struct {
	r    *bufio.Reader
	h, v uint64
	ok   bool
	err  error
}

func newRunReader(r *run) *runReader {
	s := &runReader{r: bufio.NewReaderSize(io.NewSectionReader(r.f, 0, int64(r.n*recSize)), 256<<10)}
	s.next()
	return s
}

func (s *runReader) next() {
	var rec [recSize]byte
	_, err := io.ReadFull(s.r, rec[:])
	if err != nil {
		s.ok = false
		if err != io.EOF {
			s.err = err
		}
		return
	}
	s.ok = true
	s.h, s.v = binary.BigEndian.Uint64(rec[:]), binary.BigEndian.Uint64(rec[8:])
}

// String describes the index for logs: its runs per table and watermark.
func (x *Index) String() string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var b strings.Builder
	b.WriteString("runindex " + x.dir + ": watermark " + strconv.FormatUint(x.wm, 10))
	for t, rs := range x.runs {
		fmt.Fprintf(&b, "; table %d: %d runs", t, len(rs))
	}
	return b.String()
}
