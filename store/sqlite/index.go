package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/store/hashindex"
)

// indexes are the in-memory lookup structures of a Store: for each entry,
// the 64-bit prefix of its identity, of its leaf hash and of SHA-256 of its
// sample, mapped to its index. A lookup yields candidates, which are always
// confirmed against the stored row, so a prefix collision costs a read and
// never a wrong answer.
//
// Identities are unique and leaf hashes nearly so (equal leaves have equal
// identities), so those two are plain hashindex tables. A sample has many
// entries, and a hash table with m pairs of one key makes every insert of
// that key probe all m; so the sample index is a chain per sample instead
// (see sampleIndex).
//
// The indexes hold exactly the entries 0 to indexed-1, all committed. They
// grow in two ways, both under mu: Append adds its batch after the commit,
// and catchUp reads entries that another Store (or process) committed.
type indexes struct {
	mu      sync.Mutex
	indexed atomic.Uint64 // written only under mu

	ids, leaves *hashindex.Index
	samples     sampleIndex
}

func newIndexes(n uint64) *indexes {
	size := int(min(n, 1<<40))
	return &indexes{
		ids:    hashindex.New(size),
		leaves: hashindex.New(size),
		// A guess of 8 entries a sample; heads grows if there are more samples.
		samples: sampleIndex{heads: hashindex.New(size / 8), prev: make([]uint64, 0, size)},
	}
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
	flush := func() {
		x.ids.AddMany(ids, idxs)
		x.leaves.AddMany(leaves, idxs)
		x.samples.add(samples)
		x.indexed.Store(next)
		ids, leaves, samples, idxs = ids[:0], leaves[:0], samples[:0], idxs[:0]
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
			flush()
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("indexing entries from %d: %w", from, err)
	}
	flush()
	return nil
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
// transaction rules out), nothing is added: catchUp will read them all.
func (x *indexes) add(entries []store.Entry, sampleKeys []hashindex.Key) {
	if len(entries) == 0 {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	first, end, indexed := entries[0].Index, entries[0].Index+uint64(len(entries)), x.indexed.Load()
	if indexed < first || indexed >= end {
		return
	}
	skip := indexed - first
	entries, sampleKeys = entries[skip:], sampleKeys[skip:]
	ids := make([]hashindex.Key, len(entries))
	leaves := make([]hashindex.Key, len(entries))
	idxs := make([]uint64, len(entries))
	for i := range entries {
		ids[i] = hashindex.KeyOf(entries[i].Identity[:])
		leaves[i] = hashindex.KeyOf(entries[i].LeafHash[:])
		idxs[i] = entries[i].Index
	}
	x.ids.AddMany(ids, idxs)
	x.leaves.AddMany(leaves, idxs)
	x.samples.add(sampleKeys)
	x.indexed.Store(end)
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
		cands = x.ids.Lookup(cands, hashindex.KeyOf(ids[i][:]))
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
