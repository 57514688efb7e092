package sqlite

import (
	"bufio"
	"cmp"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/store/hashindex"
)

var _ store.IndexChecker = (*Store)(nil)

// The check of the on-disk index (store.IndexChecker).
//
// The index's run files hold, for each table, the records (mixed key,
// entry index) of entries [0, W), W being the watermark of its MANIFEST.
// Looking every entry up would read a block of every run per entry; the
// check instead compares two multisets: the records the entries call for
// and the records the runs hold. Each side sums a pseudorandom function of
// its records (AES-128 under a key drawn for this check, so that whoever
// wrote the files cannot have chosen records whose sums agree), per table
// and per bucket of mixed keys, with a count. The entries' side is summed
// as fsck reads them; the runs' side by reading the run files once,
// sequentially, on another goroutine. Equal sums mean equal multisets
// (but for a chance of 2^-128); a bucket whose sums differ is then
// resolved exactly: its records on both sides are collected (reading the
// entries' key columns and the runs again, a bounded group of buckets at
// a time) and compared. Records the runs hold that no entry calls for are
// harmless (every candidate is checked against the row) and not reported.
//
// Entries from W on are in the index's memory. When this Store owns the
// index they are looked up one by one (at most two buffers' worth);
// otherwise they are in another process's memory and are not checked.
//
// This file reads the run files' format and mixes keys as store/runindex
// does (runindexMix, readRunRecords); TestIndexCheck fails if the two
// drift apart.

// checkBuckets is the number of buckets of mixed keys per table: a
// record's bucket is the top bucketBits bits of its mixed key.
const (
	bucketBits   = 10
	checkBuckets = 1 << bucketBits
)

// resolveBudget bounds the records collected per side when a bucket's
// sums differ: buckets are resolved in groups of about this many records.
const resolveBudget = 1 << 21

type bucketSum struct{ n, lo, hi uint64 }

type sums [3][checkBuckets]bucketSum

func (s *sums) add(prf cipher.Block, t int, h, idx uint64) {
	var in, out [16]byte
	binary.BigEndian.PutUint64(in[:], h)
	binary.BigEndian.PutUint64(in[8:], idx)
	prf.Encrypt(out[:], in[:])
	b := &s[t][h>>(64-bucketBits)]
	b.n++
	b.lo += binary.LittleEndian.Uint64(out[:])
	b.hi += binary.LittleEndian.Uint64(out[8:])
}

func (s *sums) merge(o *sums) {
	for t := range s {
		for i := range s[t] {
			s[t][i].n += o[t][i].n
			s[t][i].lo += o[t][i].lo
			s[t][i].hi += o[t][i].hi
		}
	}
}

// runindexMix is store/runindex's key mixing: records are sorted by
// runindexMix(key ^ seed).
func runindexMix(k uint64) uint64 {
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	k *= 0xc4ceb9fe1a85ec53
	return k ^ k>>33
}

// indexManifest is the part of store/runindex's MANIFEST the check reads.
type indexManifest struct {
	Version   int    `json:"version"`
	Tables    int    `json:"tables"`
	Seed      uint64 `json:"seed"`
	Watermark uint64 `json:"watermark"`
	Runs      []struct {
		Table int    `json:"table"`
		Seq   uint64 `json:"seq"`
	} `json:"runs"`
}

// indexRun is an open run file of the snapshot the check compares with.
type indexRun struct {
	table int
	f     *os.File
	n     uint64 // records
	err   error  // the file is not a run: it counts as holding no record
}

type indexCheck struct {
	s      *Store
	prf    cipher.Block
	seed   uint64
	wm     uint64
	runs   []indexRun
	owner  bool // s owns the index: entries from wm on are looked up
	hi     atomic.Uint64
	runSum sums
	runErr error
	ran    chan struct{} // closed when runSum is complete

	mu     sync.Mutex
	all    []*sums // every accumulator of the entries' side
	free   []*sums // those not in use by an Add
	misses []store.IndexMiss
}

// sums returns an accumulator no other Add is using.
func (c *indexCheck) sums() *sums {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := len(c.free); n > 0 {
		x := c.free[n-1]
		c.free = c.free[:n-1]
		return x
	}
	x := new(sums)
	c.all = append(c.all, x)
	return x
}

func (c *indexCheck) release(x *sums) {
	c.mu.Lock()
	c.free = append(c.free, x)
	c.mu.Unlock()
}

// NewIndexCheck starts a check of the on-disk index against the entries
// (store.IndexChecker): it reads the index's MANIFEST and opens the run
// files it names, whether or not this Store owns the index (a running
// server may), and starts summing their records on another goroutine. It
// never writes. The check's memory is fixed (about 100 KB per goroutine
// adding entries) but for resolving buckets whose sums differ, which is
// bounded by resolveBudget.
func (s *Store) NewIndexCheck(ctx context.Context) (store.IndexCheck, error) {
	key := make([]byte, 16)
	rand.Read(key)
	prf, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("sqlite: checking the index of %s: %w", s.path, err)
	}
	c := &indexCheck{s: s, prf: prf, owner: s.idx.disk != nil, ran: make(chan struct{})}
	if err := c.snapshot(); err != nil {
		return nil, fmt.Errorf("sqlite: checking the index of %s: %w", s.path, err)
	}
	go c.sumRuns()
	return c, nil
}

// snapshot reads the MANIFEST and opens its runs. A merge may remove a
// run between the two: then it reads the new MANIFEST and tries again.
func (c *indexCheck) snapshot() error {
	dir := indexDir(c.s.path)
	for try := 0; ; try++ {
		b, err := os.ReadFile(filepath.Join(dir, "MANIFEST"))
		if errors.Is(err, fs.ErrNotExist) {
			return nil // nothing written yet: entries are all in memory
		}
		if err != nil {
			return err
		}
		var m indexManifest
		if err := json.Unmarshal(b, &m); err != nil || m.Version != 1 || m.Tables != 3 {
			return fmt.Errorf("%s/MANIFEST is not a version 1 manifest of 3 tables (%v): remove %s so that the next open rebuilds the index", dir, err, dir)
		}
		c.seed, c.wm, c.runs = m.Seed, m.Watermark, nil
		gone := false
		for _, r := range m.Runs {
			if r.Table < 0 || r.Table > 2 {
				c.closeRuns()
				return fmt.Errorf("%s/MANIFEST names table %d: remove %s so that the next open rebuilds the index", dir, r.Table, dir)
			}
			f, err := os.Open(filepath.Join(dir, fmt.Sprintf("%d-%016d.run", r.Table, r.Seq)))
			if errors.Is(err, fs.ErrNotExist) && try < 10 {
				gone = true
				break
			}
			if err != nil {
				c.closeRuns()
				return err
			}
			ir := indexRun{table: r.Table, f: f}
			ir.n, ir.err = runRecords(f)
			c.runs = append(c.runs, ir)
		}
		if !gone {
			return nil
		}
		c.closeRuns()
	}
}

func (c *indexCheck) closeRuns() {
	for _, r := range c.runs {
		r.f.Close()
	}
	c.runs = nil
}

// runRecords returns the number of records of a run file, from its
// footer (store/runindex's format: records, fences, Bloom words, then 48
// bytes: magic, records, fences, Bloom words, ...).
func runRecords(f *os.File) (uint64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	const footer = 48
	if fi.Size() < footer {
		return 0, errors.New("shorter than its footer")
	}
	var ft [footer]byte
	if _, err := f.ReadAt(ft[:], fi.Size()-footer); err != nil {
		return 0, err
	}
	n, nf, nb := binary.BigEndian.Uint64(ft[8:]), binary.BigEndian.Uint64(ft[16:]), binary.BigEndian.Uint64(ft[24:])
	if string(ft[:8]) != "cRUNidx1" || n > uint64(fi.Size())/16 || nf != (n+255)/256 || uint64(fi.Size()) != 16*n+8*nf+8*nb+footer {
		return 0, fmt.Errorf("%s is not a run file", f.Name())
	}
	return n, nil
}

// eachRunRecord calls fn with every record (mixed key, entry index) of
// the run, in order.
func eachRunRecord(r indexRun, fn func(h, idx uint64)) error {
	if r.err != nil {
		return nil
	}
	br := bufio.NewReaderSize(io.NewSectionReader(r.f, 0, int64(r.n*16)), 1<<20)
	var rec [16]byte
	for range r.n {
		if _, err := io.ReadFull(br, rec[:]); err != nil {
			return fmt.Errorf("reading %s: %w", r.f.Name(), err)
		}
		fn(binary.BigEndian.Uint64(rec[:]), binary.BigEndian.Uint64(rec[8:]))
	}
	return nil
}

func (c *indexCheck) sumRuns() {
	defer close(c.ran)
	for _, r := range c.runs {
		err := eachRunRecord(r, func(h, idx uint64) { c.runSum.add(c.prf, r.table, h, idx) })
		if err != nil {
			c.runErr = err
			return
		}
	}
}

// keys returns the mixed keys of an entry in the three tables.
func (c *indexCheck) keys(e *store.Entry) [3]uint64 {
	return [3]uint64{
		runindexMix(uint64(hashindex.KeyOf(e.Identity[:])) ^ c.seed),
		runindexMix(uint64(hashindex.KeyOf(e.LeafHash[:])) ^ c.seed),
		runindexMix(uint64(sampleKey([]byte(e.Sample))) ^ c.seed),
	}
}

// Add sums the records entries below the watermark call for, and looks
// up the others when this Store owns the index.
func (c *indexCheck) Add(ctx context.Context, entries []store.Entry) error {
	x := c.sums()
	defer c.release(x)
	var tail []store.Entry
	for i := range entries {
		e := &entries[i]
		for {
			hi := c.hi.Load()
			if e.Index < hi || c.hi.CompareAndSwap(hi, e.Index+1) {
				break
			}
		}
		if e.Index >= c.wm {
			tail = append(tail, *e)
			continue
		}
		for t, h := range c.keys(e) {
			x.add(c.prf, t, h, e.Index)
		}
	}
	if len(tail) == 0 || !c.owner {
		return nil
	}
	// Entries another Store appended may not be indexed yet.
	if err := c.s.refresh(ctx); err != nil {
		return fmt.Errorf("sqlite: bringing the index of %s up to date: %w", c.s.path, err)
	}
	var misses []store.IndexMiss
	var cands []uint64
	for i := range tail {
		e := &tail[i]
		ks := [3][]byte{e.Identity[:], e.LeafHash[:], []byte(e.Sample)}
		for t, lookup := range []func([]uint64, []byte) ([]uint64, error){c.s.idx.identityCandidates, c.s.idx.leafCandidates, c.s.idx.sampleCandidates} {
			var err error
			if cands, err = lookup(cands[:0], ks[t]); err != nil {
				return fmt.Errorf("sqlite: looking up entry %d in the index of %s: %w", e.Index, c.s.path, err)
			}
			if !slices.Contains(cands, e.Index) {
				misses = append(misses, store.IndexMiss{Index: e.Index, Lookup: tableLookup[t]})
			}
		}
	}
	c.mu.Lock()
	c.misses = append(c.misses, misses...)
	c.mu.Unlock()
	return nil
}

// tableLookup is the lookup each table of the index serves.
var tableLookup = [3]store.Lookup{tableIdentity: store.LookupIdentity, tableLeaf: store.LookupLeafHash, tableSample: store.LookupSample}

// Finish compares the sums and resolves the buckets that differ.
func (c *indexCheck) Finish(ctx context.Context) ([]store.IndexMiss, error) {
	defer c.closeRuns()
	select {
	case <-c.ran:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if c.runErr != nil {
		return nil, fmt.Errorf("sqlite: checking the index of %s: %w", c.s.path, c.runErr)
	}
	var entrySum sums
	c.mu.Lock()
	for _, x := range c.all {
		entrySum.merge(x)
	}
	misses := c.misses
	c.mu.Unlock()
	var bad [3][]int
	for t := range bad {
		for b := range checkBuckets {
			if entrySum[t][b] != c.runSum[t][b] {
				bad[t] = append(bad[t], b)
			}
		}
	}
	end := min(c.wm, c.hi.Load())
	m, err := c.resolve(ctx, bad, end)
	if err != nil {
		return nil, fmt.Errorf("sqlite: checking the index of %s: %w", c.s.path, err)
	}
	misses = append(misses, m...)
	slices.SortFunc(misses, func(a, b store.IndexMiss) int {
		return cmp.Or(cmp.Compare(a.Index, b.Index), cmp.Compare(a.Lookup, b.Lookup))
	})
	return slices.Compact(misses), nil
}

type rec struct{ h, idx uint64 }

func cmpRec(a, b rec) int { return cmp.Or(cmp.Compare(a.h, b.h), cmp.Compare(a.idx, b.idx)) }

// resolve finds, for the buckets in bad, the entries below end whose
// records the runs do not hold: it collects both sides' records of a
// group of buckets at a time and compares them.
func (c *indexCheck) resolve(ctx context.Context, bad [3][]int, end uint64) ([]store.IndexMiss, error) {
	perBucket := end/checkBuckets + 1
	group := max(1, int(resolveBudget/perBucket))
	var misses []store.IndexMiss
	for t := range bad {
		for g := range slices.Chunk(bad[t], group) {
			in := make(map[uint64]bool, len(g))
			for _, b := range g {
				in[uint64(b)] = true
			}
			want, err := c.entryRecords(ctx, t, in, end)
			if err != nil {
				return nil, err
			}
			var have []rec
			for _, r := range c.runs {
				if r.table != t {
					continue
				}
				err := eachRunRecord(r, func(h, idx uint64) {
					if in[h>>(64-bucketBits)] {
						have = append(have, rec{h, idx})
					}
				})
				if err != nil {
					return nil, err
				}
			}
			slices.SortFunc(want, cmpRec)
			slices.SortFunc(have, cmpRec)
			j := 0
			for _, w := range want {
				for j < len(have) && cmpRec(have[j], w) < 0 {
					j++
				}
				if j < len(have) && have[j] == w {
					j++
					continue
				}
				misses = append(misses, store.IndexMiss{Index: w.idx, Lookup: tableLookup[t]})
			}
		}
	}
	return misses, nil
}

// entryRecords reads the key columns of entries [0, end) and returns the
// records of table t they call for in the buckets in.
func (c *indexCheck) entryRecords(ctx context.Context, t int, in map[uint64]bool, end uint64) ([]rec, error) {
	if end == 0 {
		return nil, nil
	}
	rows, err := c.s.r.QueryContext(ctx, "SELECT idx, identity, leaf_hash, sample FROM entries WHERE idx < ? ORDER BY idx", int64(end))
	if err != nil {
		return nil, fmt.Errorf("reading the entries' keys: %w", err)
	}
	defer rows.Close()
	var out []rec
	for rows.Next() {
		var (
			idx                int64
			identity, leafHash sql.RawBytes
			sample             string
		)
		if err := rows.Scan(&idx, &identity, &leafHash, &sample); err != nil {
			return nil, fmt.Errorf("reading the entries' keys: %w", err)
		}
		if idx < 0 || len(identity) != store.HashSize || len(leafHash) != store.HashSize {
			return nil, fmt.Errorf("reading the entries' keys: corrupt entry row at index %d", idx)
		}
		e := store.Entry{Index: uint64(idx), Identity: store.Hash(identity), LeafHash: store.Hash(leafHash), Sample: sample}
		if h := c.keys(&e)[t]; in[h>>(64-bucketBits)] {
			out = append(out, rec{h, e.Index})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the entries' keys: %w", err)
	}
	return out, nil
}
