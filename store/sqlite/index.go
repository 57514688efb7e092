package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/store/hashindex"
	"github.com/custodylog/custody/store/runindex"
)

// indexes are the lookup structures of a Store: for each entry, the 64-bit
// prefix of its identity, of its leaf hash and of SHA-256 of its sample,
// mapped to its index. A lookup yields candidates, which are always
// confirmed against the stored row, so a prefix collision costs a read and
// never a wrong answer.
//
// The Store that first opens a database owns its on-disk index, a
// store/runindex in the directory beside it (custody.db.idx): memory stays
// bounded and opening reads only the entries the index had not yet made
// durable (at most two buffers' worth) whatever the log's size. Any other
// Store of the same file, in this process or another (a running server's
// fsck, a second writer), finds the index locked and keeps in-memory
// tables instead, built only when it first looks something up, so tools
// that never look up (fsck, mirror, copy's source) pay nothing.
//
// The indexes hold exactly the entries 0 to indexed-1, all committed. They
// grow in two ways, both under mu: Append adds its batch after the commit,
// and catchUp reads entries that another Store (or process) committed, or
// that the on-disk index had not made durable before a crash.
type indexes struct {
	mu      sync.Mutex
	indexed atomic.Uint64 // written only under mu

	disk *runindex.Index // when this Store owns the on-disk index

	ids, leaves *hashindex.Index // otherwise, in memory
	samples     sampleIndex
}

// Tables of the on-disk index.
const (
	tableIdentity = iota
	tableLeaf
	tableSample
)

// indexDir is where the on-disk index of the database at path lives.
func indexDir(path string) string { return path + ".idx" }

// indexOptions are the on-disk index's settings: a Bloom filter for
// identities only, which are looked up for every appended entry and are
// almost always absent.
var indexOptions = runindex.Options{Tables: 3, Bloom: []bool{true, false, false}}

// openIndexes opens the on-disk index of the database at path (creating
// it, or rebuilding it if it belongs to another log) and brings it up to
// the log's size, or, when another Store owns it, returns empty in-memory
// indexes to be built on first use.
func openIndexes(ctx context.Context, path string, r *sql.DB) (*indexes, error) {
	dir := indexDir(path)
	disk, err := runindex.Open(dir, indexOptions)
	if errors.Is(err, runindex.ErrLocked) {
		return newMemIndexes(), nil
	}
	if err != nil {
		// Another layout, or a damaged index: it is derived data, so it
		// is rebuilt from the entries.
		disk, err = rebuildIndex(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("opening the index %s: %w", dir, err)
	}
	ok, err := indexMatches(ctx, r, disk)
	if err != nil {
		disk.Close()
		return nil, err
	}
	if !ok {
		disk.Close()
		if disk, err = rebuildIndex(dir); err != nil {
			return nil, fmt.Errorf("rebuilding the index %s: %w", dir, err)
		}
	}
	x := &indexes{disk: disk}
	x.indexed.Store(disk.Next())
	x.mu.Lock()
	defer x.mu.Unlock()
	if err := x.catchUp(ctx, r); err != nil {
		disk.Close()
		return nil, err
	}
	return x, nil
}

// rebuildIndex removes the index in dir and opens an empty one.
func rebuildIndex(dir string) (*runindex.Index, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	return runindex.Open(dir, indexOptions)
}

// indexMatches reports whether the on-disk index was built from this log:
// the log has at least its watermark's entries, and entry watermark-1 has
// the keys the index recorded for it. (A database restored from a backup,
// or replaced by another log, fails this, and its index is rebuilt.)
func indexMatches(ctx context.Context, r *sql.DB, disk *runindex.Index) (bool, error) {
	wm := disk.Watermark()
	if wm == 0 {
		return true, nil
	}
	var identity, leaf []byte
	var sample string
	err := r.QueryRowContext(ctx, "SELECT identity, leaf_hash, sample FROM entries WHERE idx = ?", int64(wm-1)).Scan(&identity, &leaf, &sample)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("checking the index against entry %d: %w", wm-1, err)
	}
	keys := disk.WatermarkKeys()
	return len(identity) == store.HashSize && len(leaf) == store.HashSize &&
		slices.Equal(keys, []uint64{uint64(hashindex.KeyOf(identity)), uint64(hashindex.KeyOf(leaf)), uint64(sampleKey([]byte(sample)))}), nil
}

func newMemIndexes() *indexes {
	return &indexes{
		ids:     hashindex.New(0),
		leaves:  hashindex.New(0),
		samples: sampleIndex{heads: hashindex.New(0)},
	}
}

// close writes the on-disk index's buffers so that the next Open reads no
// entries. The in-memory indexes need nothing.
func (x *indexes) close() error {
	if x.disk == nil {
		return nil
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.disk.Close()
}

// addKeys records entries first, first+1, ... with the given keys. The
// caller holds x.mu.
func (x *indexes) addKeys(first uint64, ids, leaves, samples []hashindex.Key) error {
	if x.disk != nil {
		k := func(ks []hashindex.Key) []uint64 {
			out := make([]uint64, len(ks))
			for i, v := range ks {
				out[i] = uint64(v)
			}
			return out
		}
		if err := x.disk.Add(first, [][]uint64{k(ids), k(leaves), k(samples)}); err != nil {
			return err
		}
	} else {
		idxs := make([]uint64, len(ids))
		for i := range idxs {
			idxs[i] = first + uint64(i)
		}
		x.ids.AddMany(ids, idxs)
		x.leaves.AddMany(leaves, idxs)
		x.samples.add(samples)
	}
	x.indexed.Store(first + uint64(len(ids)))
	return nil
}

// identityCandidates appends the indexes that may hold identity id.
func (x *indexes) identityCandidates(dst []uint64, id []byte) ([]uint64, error) {
	if x.disk != nil {
		return x.disk.Lookup(tableIdentity, uint64(hashindex.KeyOf(id)), dst)
	}
	return x.ids.Lookup(dst, hashindex.KeyOf(id)), nil
}

// leafCandidates appends the indexes that may hold leaf hash h.
func (x *indexes) leafCandidates(dst []uint64, h []byte) ([]uint64, error) {
	if x.disk != nil {
		return x.disk.Lookup(tableLeaf, uint64(hashindex.KeyOf(h)), dst)
	}
	return x.leaves.Lookup(dst, hashindex.KeyOf(h)), nil
}

// sampleCandidates appends the indexes that may hold entries of sample.
func (x *indexes) sampleCandidates(dst []uint64, sample []byte) ([]uint64, error) {
	if x.disk != nil {
		return x.disk.Lookup(tableSample, uint64(sampleKey(sample)), dst)
	}
	return append(dst, x.samples.lookup(sampleKey(sample))...), nil
}

// sampleIndex finds the entries of a sample: heads maps each sample key to
// the newest entry with that key, and prev links every entry to the one
// before it with the same key. Appending is O(1) and a lookup walks just
// the chain of its key. It costs 8 bytes per entry plus one hashindex pair
// per distinct sample key.
type sampleIndex struct {
	mu    sync.RWMutex
	heads *hashindex.Index
	prev  []uint64 // prev[i] is 1 + the index of the previous entry with the key of entry i, or 0
}

// add records entries len(x.prev) onwards, whose keys are keys. The caller
// holds indexes.mu.
func (x *sampleIndex) add(keys []hashindex.Key) {
	x.mu.Lock()
	defer x.mu.Unlock()
	var buf [1]uint64
	for _, k := range keys {
		idx := uint64(len(x.prev))
		if head := x.heads.Lookup(buf[:0], k); len(head) > 0 {
			x.heads.Replace(k, head[0], idx)
			x.prev = append(x.prev, head[0]+1)
		} else {
			x.heads.Add(k, idx)
			x.prev = append(x.prev, 0)
		}
	}
}

// lookup returns the indexes of the entries with key k, newest first.
func (x *sampleIndex) lookup(k hashindex.Key) []uint64 {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var buf [1]uint64
	head := x.heads.Lookup(buf[:0], k)
	if len(head) == 0 {
		return nil
	}
	var out []uint64
	for i := head[0] + 1; i != 0; i = x.prev[i-1] {
		out = append(out, i-1)
	}
	return out
}

// sampleKey is the index key of a sample identifier.
func sampleKey(sample []byte) hashindex.Key {
	h := sha256.Sum256(sample)
	return hashindex.KeyOf(h[:])
}

// catchUpChunk is how many entries catchUp adds to the indexes at a time.
const catchUpChunk = 4096

// catchUp adds to the indexes every entry q can see from index indexed on.
// The caller holds x.mu.
func (x *indexes) catchUp(ctx context.Context, q querier) error {
	from := x.indexed.Load()
	rows, err := q.QueryContext(ctx, "SELECT idx, identity, leaf_hash, sample FROM entries WHERE idx >= ? ORDER BY idx", int64(from))
	if err != nil {
		return fmt.Errorf("indexing entries from %d: %w", from, err)
	}
	defer rows.Close()
	var (
		ids     = make([]hashindex.Key, 0, catchUpChunk)
		leaves  = make([]hashindex.Key, 0, catchUpChunk)
		samples = make([]hashindex.Key, 0, catchUpChunk)
		idxs    = make([]uint64, 0, catchUpChunk)
		next    = from
	)
	flush := func() error {
		if len(idxs) == 0 {
			return nil
		}
		if err := x.addKeys(idxs[0], ids, leaves, samples); err != nil {
			return fmt.Errorf("indexing entries from %d: %w", idxs[0], err)
		}
		ids, leaves, samples, idxs = ids[:0], leaves[:0], samples[:0], idxs[:0]
		return nil
	}
	for rows.Next() {
		var (
			idx                        int64
			identity, leafHash, sample sql.RawBytes
		)
		if err := rows.Scan(&idx, &identity, &leafHash, &sample); err != nil {
			return fmt.Errorf("indexing entries from %d: %w", from, err)
		}
		if idx < 0 || uint64(idx) != next {
			return fmt.Errorf("indexing entries from %d: found entry %d where entry %d should be: the database is damaged", from, idx, next)
		}
		if len(identity) != store.HashSize || len(leafHash) != store.HashSize {
			return fmt.Errorf("indexing entries from %d: corrupt entry row at index %d", from, idx)
		}
		ids = append(ids, hashindex.KeyOf(identity))
		leaves = append(leaves, hashindex.KeyOf(leafHash))
		samples = append(samples, sampleKey(sample))
		idxs = append(idxs, next)
		next++
		if len(idxs) == catchUpChunk {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("indexing entries from %d: %w", from, err)
	}
	return flush()
}

// refresh makes sure the indexes hold every entry committed before it was
// called: it catches up if the log has more entries than are indexed,
// which happens only when another Store or process appends to the same
// file. The check is one lookup of the largest rowid.
func (s *Store) refresh(ctx context.Context) error {
	var last sql.NullInt64
	if err := s.r.QueryRowContext(ctx, "SELECT max(idx) FROM entries").Scan(&last); err != nil {
		return fmt.Errorf("reading the size of the log: %w", err)
	}
	if !last.Valid || uint64(last.Int64) < s.idx.indexed.Load() {
		return nil
	}
	s.idx.mu.Lock()
	defer s.idx.mu.Unlock()
	if uint64(last.Int64) < s.idx.indexed.Load() {
		return nil // another call caught up meanwhile
	}
	return s.idx.catchUp(ctx, s.r)
}

// add records entries, just committed at consecutive indexes, in the
// indexes. Entries that catchUp already read are skipped. If catchUp has
// not reached the first of them (which Append's catching up inside its
// transaction rules out), nothing is added: catchUp will read them all. An
// error means the on-disk index failed: lookups fail from then on, and
// reopening the store rebuilds what is missing.
func (x *indexes) add(entries []store.Entry, sampleKeys []hashindex.Key) error {
	if len(entries) == 0 {
		return nil
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	first, end, indexed := entries[0].Index, entries[0].Index+uint64(len(entries)), x.indexed.Load()
	if indexed < first || indexed >= end {
		return nil
	}
	skip := indexed - first
	entries, sampleKeys = entries[skip:], sampleKeys[skip:]
	ids := make([]hashindex.Key, len(entries))
	leaves := make([]hashindex.Key, len(entries))
	for i := range entries {
		ids[i] = hashindex.KeyOf(entries[i].Identity[:])
		leaves[i] = hashindex.KeyOf(entries[i].LeafHash[:])
	}
	return x.addKeys(indexed, ids, leaves, sampleKeys)
}

// idxPerQuery is the most candidates one "idx IN (...)" query reads. Shorter
// lists are padded to a power of two (by repeating the last index), so each
// connection compiles at most 11 such statements per column.
const idxPerQuery = 1024

// readColumn calls f with the index and the stored value of col of each
// entry in idxs (at most idxPerQuery, not necessarily sorted) that exists,
// in no particular order. col must be a column name, never user input. The
// value is only valid during the call.
func readColumn(ctx context.Context, q querier, col string, idxs []uint64, f func(idx uint64, v []byte)) error {
	if len(idxs) == 0 {
		return nil
	}
	n := 1 << bits.Len(uint(len(idxs)-1)) // the power of two >= len(idxs)
	args := make([]any, n)
	for i := range args {
		args[i] = int64(idxs[min(i, len(idxs)-1)])
	}
	rows, err := q.QueryContext(ctx, "SELECT idx, "+col+" FROM entries WHERE idx IN ("+placeholders(n, 1)+")", args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			idx int64
			v   sql.RawBytes
		)
		if err := rows.Scan(&idx, &v); err != nil {
			return err
		}
		if idx < 0 {
			return fmt.Errorf("corrupt entry row at index %d", idx)
		}
		f(uint64(idx), v)
	}
	return rows.Err()
}

// lookupIdentities adds to found the index of each of ids that is one of the
// first indexed entries, reading the candidates' identities through q.
func (x *indexes) lookupIdentities(ctx context.Context, q querier, ids []store.Hash, found map[store.Hash]uint64) error {
	var cands []uint64
	for i := range ids {
		var err error
		if cands, err = x.identityCandidates(cands, ids[i][:]); err != nil {
			return err
		}
	}
	if len(cands) == 0 {
		return nil
	}
	slices.Sort(cands)
	cands = slices.Compact(cands)
	want := make(map[store.Hash]struct{}, len(ids))
	for _, id := range ids {
		want[id] = struct{}{}
	}
	for chunk := range slices.Chunk(cands, idxPerQuery) {
		err := readColumn(ctx, q, "identity", chunk, func(idx uint64, v []byte) {
			if len(v) != store.HashSize {
				return
			}
			if _, ok := want[store.Hash(v)]; ok {
				found[store.Hash(v)] = idx
			}
		})
		if err != nil {
			return err
		}
	}
	return nil
}
