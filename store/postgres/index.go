package postgres

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/store/hashindex"
	"github.com/custodylog/custody/store/runindex"
	"github.com/jackc/pgx/v5"
)

// The lookups by identity, by leaf hash and by sample do not use indexes
// of the database: B-tree indexes on random 32-byte keys cost the database
// about one dirty page per entry and index, which at millions of entries
// is most of the cost of an append. Each Store keeps them instead in a
// store/runindex (an on-disk multimap from 64-bit key prefixes to entry
// indexes) in a local directory of its own, derived from the shared
// entries table:
//
//   - The index holds exactly the entries 0 to indexed-1, all committed.
//     It is brought up to the log's size (catchUp: reading the keys of the
//     entries past it, in index order) at Open, before each lookup if the
//     head row says the log has grown (another server appended), and
//     inside Append's transaction once the head row is locked: so the
//     identity check before the insert sees every entry of the log, and
//     de-duplication is exact whichever server appended last.
//   - A lookup yields candidates, which are always confirmed against the
//     stored row, so a prefix collision costs a read and never a wrong
//     answer.
//   - The index is derived data and is never fsynced with the log. Its
//     MANIFEST's watermark says how far it is durable; at Open the entries
//     past it are re-read, and an index whose watermark entry does not
//     match the database (restored from a backup, or replaced) is rebuilt.

// Tables of the index.
const (
	tableIdentity = iota
	tableLeaf
	tableSample
)

// indexOptions are the index's settings: a Bloom filter for identities
// only, which are looked up for every appended entry and are almost
// always absent.
var indexOptions = runindex.Options{Tables: 3, Bloom: []bool{true, false, false}}

// catchUpChunk is how many entries catchUp adds to the index at a time.
const catchUpChunk = 4096

// idxPerQuery bounds the candidate indexes one confirming query sends.
const idxPerQuery = 8192

// indexDirName is the name, under Options.IndexDir (or the default
// directory), of the index of the log in schema of database db at
// host:port. It is readable (the schema and the database first) and
// unique (a hash of all four).
func indexDirName(host string, port uint16, db, schema string) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%d\x00%s\x00%s", host, port, db, schema)))
	return fmt.Sprintf("%s-%s-%x", sanitize(schema), sanitize(db), h[:6])
}

// sanitize keeps the letters, digits, '.', '_' and '-' of s, at most 64
// of them, so that it is a safe file name.
func sanitize(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= 64 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.' || r == '_' || r == '-':
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 || strings.Trim(b.String(), ".") == "" {
		return "x"
	}
	return b.String()
}

// DefaultIndexDir returns the directory under which Open keeps the
// lookup indexes when Options.IndexDir is empty: custody/postgres-index
// in the user's cache directory (os.UserCacheDir: $XDG_CACHE_HOME or
// ~/.cache on Linux). It returns an error if there is no cache directory
// (neither variable set); Open then keeps the index in a temporary
// directory, rebuilt at every start.
func DefaultIndexDir() (string, error) {
	c, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(c, "custody", "postgres-index"), nil
}

// lookups is a Store's index of its log (see above).
type lookups struct {
	dir  string // the index's directory
	temp bool   // dir is a temporary directory, removed by close

	mu      sync.Mutex    // serialises adding (catchUp, add, open, close)
	indexed atomic.Uint64 // entries [0, indexed) are in disk; written only under mu
	disk    atomic.Pointer[runindex.Index]
	opened  bool        // disk was opened (or failed to): see ensure; under mu
	ready   atomic.Bool // opened, without openErr
	openErr error       // why opening failed; under mu
}

// openLookups opens the index in dir and brings it up to the log's size.
// If another Store (in this process or another) has dir open, the index is
// kept in a new temporary directory instead, built on first use from the
// entries (so that tools that never look anything up, such as a
// consistency check next to a running server, pay nothing).
func openLookups(ctx context.Context, q querier, dir string) (*lookups, error) {
	x := &lookups{dir: dir}
	if dir == "" {
		x.temp = true
		return x, nil
	}
	disk, err := runindex.Open(dir, indexOptions)
	if errors.Is(err, runindex.ErrLocked) {
		x.temp, x.dir = true, ""
		return x, nil
	}
	if err != nil {
		// Another layout, or a damaged index: it is derived data, so it
		// is rebuilt from the entries.
		if disk, err = rebuildIndex(dir); err != nil {
			return nil, fmt.Errorf("opening the lookup index %s: %w (remove the directory, or give another one)", dir, err)
		}
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if err := x.attach(ctx, q, disk); err != nil {
		return nil, err
	}
	return x, nil
}

// attach makes disk the index, after checking it against the log (and
// rebuilding it if it belongs to another log), and catches it up. The
// caller holds x.mu. On error disk is closed.
func (x *lookups) attach(ctx context.Context, q querier, disk *runindex.Index) error {
	ok, err := indexMatches(ctx, q, disk)
	if err != nil {
		disk.Close()
		return err
	}
	if !ok {
		disk.Close()
		if disk, err = rebuildIndex(x.dir); err != nil {
			return fmt.Errorf("rebuilding the lookup index %s: %w", x.dir, err)
		}
	}
	x.indexed.Store(disk.Next())
	x.disk.Store(disk)
	if err := x.catchUp(ctx, q); err != nil {
		x.disk.Store(nil)
		disk.Close()
		return err
	}
	x.opened = true
	x.ready.Store(true)
	return nil
}

// ensure opens the temporary index on first use. The caller holds x.mu.
func (x *lookups) ensure(ctx context.Context, q querier) error {
	if x.opened {
		return x.openErr
	}
	dir, err := os.MkdirTemp("", "custody-postgres-index-")
	if err != nil {
		return fmt.Errorf("creating a temporary directory for the lookup index: %w (set TMPDIR to a writable directory)", err)
	}
	disk, err := runindex.Open(dir, indexOptions)
	if err != nil {
		os.RemoveAll(dir)
		x.opened, x.openErr = true, fmt.Errorf("opening the lookup index %s: %w", dir, err)
		return x.openErr
	}
	x.dir = dir
	if err := x.attach(ctx, q, disk); err != nil {
		os.RemoveAll(dir)
		x.dir = ""
		return err
	}
	return nil
}

// rebuildIndex removes the index in dir and opens an empty one.
func rebuildIndex(dir string) (*runindex.Index, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	return runindex.Open(dir, indexOptions)
}

// indexMatches reports whether disk was built from this log: the log has
// at least its watermark's entries, and entry watermark-1 has the keys
// the index recorded for it.
func indexMatches(ctx context.Context, q querier, disk *runindex.Index) (bool, error) {
	wm := disk.Watermark()
	if wm == 0 {
		return true, nil
	}
	rows, err := q.Query(ctx, "SELECT identity, leaf_hash, sample FROM entries WHERE idx = $1", int64(wm-1))
	if err != nil {
		return false, fmt.Errorf("checking the lookup index against entry %d: %w", wm-1, err)
	}
	var (
		identity, leaf []byte
		sample         string
		found          bool
	)
	_, err = pgx.ForEachRow(rows, []any{&identity, &leaf, &sample}, func() error { found = true; return nil })
	if err != nil {
		return false, fmt.Errorf("checking the lookup index against entry %d: %w", wm-1, err)
	}
	if !found || len(identity) != store.HashSize || len(leaf) != store.HashSize {
		return false, nil
	}
	return slices.Equal(disk.WatermarkKeys(), entryKeys(identity, leaf, sample)), nil
}

// entryKeys are the index keys of an entry, one per table.
func entryKeys(identity, leaf []byte, sample string) []uint64 {
	return []uint64{uint64(hashindex.KeyOf(identity)), uint64(hashindex.KeyOf(leaf)), sampleKey(sample)}
}

// sampleKey is the index key of a sample identifier.
func sampleKey(sample string) uint64 {
	h := sha256.Sum256([]byte(sample))
	return uint64(hashindex.KeyOf(h[:]))
}

// close writes the index's buffers, so that the next Open reads no
// entries, and removes a temporary index.
func (x *lookups) close() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	var err error
	if disk := x.disk.Swap(nil); disk != nil {
		err = disk.Close()
	}
	x.opened, x.openErr = true, errors.New("the store is closed")
	x.ready.Store(false)
	if x.temp && x.dir != "" {
		if e := os.RemoveAll(x.dir); err == nil {
			err = e
		}
	}
	return err
}

// catchUp adds to the index every entry q can see from index indexed on,
// up to the end of the log. The caller holds x.mu.
func (x *lookups) catchUp(ctx context.Context, q querier) error {
	for {
		from := x.indexed.Load()
		if err := x.catchUpPage(ctx, q); err != nil {
			return err
		}
		if x.indexed.Load()-from < catchUpRows {
			return nil
		}
	}
}

// catchUpRows is how many entries one query of catchUp reads. The LIMIT
// also keeps the planner on the primary key: with an open range and no
// statistics yet (a table just bulk-loaded, before autovacuum analysed
// it), PostgreSQL 15 chose to sort the whole table, 3.6 s at 10 M rows.
var catchUpRows uint64 = 1 << 16

// catchUpPage adds to the index up to catchUpRows entries from indexed on.
func (x *lookups) catchUpPage(ctx context.Context, q querier) error {
	from := x.indexed.Load()
	rows, err := q.Query(ctx, "SELECT idx, identity, leaf_hash, sample FROM entries WHERE idx >= $1 ORDER BY idx LIMIT $2", int64(from), catchUpRows)
	if err != nil {
		return fmt.Errorf("indexing entries from %d: %w", from, err)
	}
	defer rows.Close()
	keys := [3][]uint64{make([]uint64, 0, catchUpChunk), make([]uint64, 0, catchUpChunk), make([]uint64, 0, catchUpChunk)}
	first, next := from, from
	flush := func() error {
		if len(keys[0]) == 0 {
			return nil
		}
		if err := x.disk.Load().Add(first, keys[:]); err != nil {
			return fmt.Errorf("indexing entries from %d: %w", first, err)
		}
		x.indexed.Store(next)
		first = next
		for t := range keys {
			keys[t] = keys[t][:0]
		}
		return nil
	}
	var (
		idx                int64
		identity, leafHash []byte
		sample             string
	)
	for rows.Next() {
		// The driver's buffers: only the keys are kept.
		if err := rows.Scan(&idx, &identity, &leafHash, &sample); err != nil {
			return fmt.Errorf("indexing entries from %d: %w", from, err)
		}
		if idx < 0 || uint64(idx) != next {
			return fmt.Errorf("indexing entries from %d: found entry %d where entry %d should be: the database is damaged", from, idx, next)
		}
		if len(identity) != store.HashSize || len(leafHash) != store.HashSize {
			return fmt.Errorf("indexing entries from %d: corrupt entry row at index %d", from, idx)
		}
		keys[tableIdentity] = append(keys[tableIdentity], uint64(hashindex.KeyOf(identity)))
		keys[tableLeaf] = append(keys[tableLeaf], uint64(hashindex.KeyOf(leafHash)))
		keys[tableSample] = append(keys[tableSample], sampleKey(sample))
		next++
		if len(keys[0]) == catchUpChunk {
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

// refresh makes sure the index holds every entry committed before it was
// called: it reads the log's size from the head row and catches up if the
// log has more entries than are indexed (another server appended, or the
// temporary index is not built yet).
func (s *Store) refresh(ctx context.Context) error {
	x := s.idx
	var size int64
	if err := s.pool.QueryRow(ctx, "SELECT size FROM head WHERE id = 1").Scan(&size); err != nil {
		return fmt.Errorf("reading the size of the log: %w", err)
	}
	size = max(size, 0)
	if x.ready.Load() && uint64(size) <= x.indexed.Load() {
		return nil
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.upTo(ctx, s.pool, uint64(size))
}

// upTo opens the index if need be, and catches it up unless it already
// holds size entries. The caller holds x.mu.
func (x *lookups) upTo(ctx context.Context, q querier, size uint64) error {
	if !x.opened {
		return x.ensure(ctx, q)
	}
	if x.openErr != nil {
		return x.openErr
	}
	if x.indexed.Load() >= size {
		return nil
	}
	return x.catchUp(ctx, q)
}

// add records entries, just committed at consecutive indexes, in the
// index. Entries that catchUp already read are skipped. If catchUp has
// not reached the first of them (which Append's catching up inside its
// transaction rules out), nothing is added: catchUp will read them all. An
// error means the index failed: lookups fail from then on, and reopening
// the store rebuilds what is missing.
func (x *lookups) add(entries []store.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	disk := x.disk.Load()
	if disk == nil {
		return nil // not built yet (or closed): catchUp will read them
	}
	first, end, indexed := entries[0].Index, entries[0].Index+uint64(len(entries)), x.indexed.Load()
	if indexed < first || indexed >= end {
		return nil
	}
	entries = entries[indexed-first:]
	var keys [3][]uint64
	for t := range keys {
		keys[t] = make([]uint64, len(entries))
	}
	for i := range entries {
		e := &entries[i]
		keys[tableIdentity][i] = uint64(hashindex.KeyOf(e.Identity[:]))
		keys[tableLeaf][i] = uint64(hashindex.KeyOf(e.LeafHash[:]))
		keys[tableSample][i] = sampleKey(e.Sample)
	}
	if err := disk.Add(indexed, keys[:]); err != nil {
		return err
	}
	x.indexed.Store(end)
	return nil
}

// candidates appends to dst the indexes that may hold key k of table t.
func (x *lookups) candidates(t int, k uint64, dst []uint64) ([]uint64, error) {
	disk := x.disk.Load()
	if disk == nil {
		return dst, errors.New("the lookup index is not open")
	}
	return disk.Lookup(t, k, dst)
}

// byIdentity adds to found the index of each of ids that is in the log's
// first indexed entries, confirming the candidates through q.
func (x *lookups) byIdentity(ctx context.Context, q querier, ids []store.Hash, found map[store.Hash]uint64) error {
	var cands []uint64
	for i := range ids {
		var err error
		if cands, err = x.candidates(tableIdentity, uint64(hashindex.KeyOf(ids[i][:])), cands); err != nil {
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
		rows, err := q.Query(ctx, "SELECT idx, identity FROM entries WHERE idx = ANY($1)", toInt64s(chunk))
		if err != nil {
			return err
		}
		var (
			idx int64
			id  []byte
		)
		_, err = pgx.ForEachRow(rows, []any{&idx, &id}, func() error {
			if len(id) != store.HashSize || idx < 0 {
				return fmt.Errorf("corrupt entry row at index %d", idx)
			}
			if _, ok := want[store.Hash(id)]; ok {
				found[store.Hash(id)] = uint64(idx)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// matching returns, in increasing order, those of the candidate indexes
// cands whose column col equals v, read through q; with first, only the
// smallest. col must be a column name, never user input.
func matching(ctx context.Context, q querier, cands []uint64, col string, v any, first bool) ([]uint64, error) {
	slices.Sort(cands)
	cands = slices.Compact(cands)
	out := []uint64{}
	for chunk := range slices.Chunk(cands, idxPerQuery) {
		sql := "SELECT idx FROM entries WHERE idx = ANY($1) AND " + col + " = $2 ORDER BY idx"
		if first {
			sql += " LIMIT 1"
		}
		rows, err := q.Query(ctx, sql, toInt64s(chunk), v)
		if err != nil {
			return nil, err
		}
		var idx int64
		_, err = pgx.ForEachRow(rows, []any{&idx}, func() error {
			out = append(out, uint64(idx))
			return nil
		})
		if err != nil {
			return nil, err
		}
		if first && len(out) > 0 {
			break // the chunks go up in index order
		}
	}
	return out, nil
}

func toInt64s(idxs []uint64) []int64 {
	out := make([]int64, len(idxs))
	for i, v := range idxs {
		out[i] = int64(v)
	}
	return out
}
