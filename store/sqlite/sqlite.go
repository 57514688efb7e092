// Package sqlite implements store.Store in one SQLite database file.
//
// The database runs in WAL mode with synchronous=FULL. A commit appends the
// transaction's pages to the write-ahead log and fsyncs the log before it
// returns, so when Append returns nil the batch is on stable storage and
// survives a crash of the process or a power loss of the machine (provided
// the disk honours fsync). That is what lets the caller publish the batch's
// checkpoint as soon as Append returns. Open reads both settings back and
// fails if either is not in effect (for example on a filesystem without the
// shared memory WAL needs) rather than run a log that could lose a published
// checkpoint.
//
// Every write goes through a single connection, and each Append is one
// BEGIN IMMEDIATE transaction that first compares the latest stored
// checkpoint with the batch's Prev. Writers in this process, and in other
// processes using the same file, are therefore serialised, and the
// checkpoint only advances by compare-and-swap. Reads use a separate pool of
// connections: in WAL mode each read sees the last committed batch, and
// reads and the writer do not wait for each other.
//
// The schema (schema.sql) carries a version number. Open creates the schema
// in a new file, migrates a database of version 2 (adding the sample index
// tables) and refuses a database of another version.
//
// # Indexes
//
// The entries table has no index besides its primary key, the log index, so
// every Append writes only at the right edge of the table's B-tree. An
// index on identity, leaf hash or sample would not: those keys are random
// (hashes, sample identifiers in no useful order), so once such an index is
// larger than a batch each new entry dirties about one page of it, and each
// commit writes all of those pages to the WAL. With the three indexes of
// schema version 1 a batch of 1024 entries wrote about 2000 pages (8 MiB)
// to the WAL, and Append managed about 10,000 entries/s at 1M entries;
// without them it writes about 125 pages (500 KiB).
//
// Instead a Store keeps three indexes of its own (see index.go), keyed by
// the first 8 bytes of the identity, of the leaf hash and of SHA-256 of the
// sample. A key finds candidate indexes, and every lookup reads the
// candidates' rows (by primary key, "idx IN (...)") and keeps only those
// whose stored identity, leaf hash or sample is equal: a prefix collision,
// accidental or crafted, costs a read and never gives a wrong answer.
// Append checks that no identity of the batch is in the log the same way,
// inside its transaction, and adds the batch to the indexes only after the
// commit succeeded.
//
// The indexes live on disk beside the database, in PATH.idx (a
// store/runindex: sorted immutable runs merged in the background, with
// their block fences and, for identities, a Bloom filter in memory). They
// are derived data, never fsynced with a commit: the index records how
// many entries it holds durably, and Open reads only the entries after
// that (at most two buffers of 65,536) from the database. Memory is about
// 1.3 bytes an entry for the identity filter plus 0.1 for the fences, and a
// fixed 10 MB or so of buffers; Open takes milliseconds at any size. Open
// also checks the index against the database (the keys of the last entry
// it holds) and rebuilds it from the entries if the database was restored
// from an older copy or replaced. Deleting PATH.idx is always safe: the
// next Open rebuilds it.
//
// The first Store to open a database owns its index directory (a lock
// file); another Store of the same file, in this process or another, keeps
// in-memory tables instead (store/hashindex: about 80 bytes an entry),
// built when it first looks something up, so that tools that only read
// entries and tiles (fsck, mirror, copy's source) pay nothing.
//
// Other Stores, in this process or others, may append to the same file.
// Append brings the indexes up to date inside its transaction before it
// checks identities (the latest checkpoint says how many entries there
// are), and every lookup first compares the largest stored index with the
// number indexed (one B-tree descent, a few microseconds) and reads the
// entries it has not indexed yet.
//
// Measured on a 2-core VM (BenchmarkAppend, batches of 1024 entries of
// about 300 bytes with random-order sample identifiers, each Append an
// fsynced commit; the machine was shared): 174,000 entries/s at 1M
// entries with the on-disk index (120,000 to 170,000 with the in-memory
// tables it replaced). BenchmarkOpen of a 1M-entry log: 12.6 ms and 11.6
// bytes of heap an entry (mostly the fixed buffers; the in-memory tables
// took 1.6 to 2.1 s and 79 bytes an entry). ByIdentity of 1024
// identities: about 0.7 ms; ByLeafHash and Sample: about 50 us.
package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/custodylog/custody/store"
	"github.com/mattn/go-sqlite3"
)

// schemaVersion is the version of schema.sql, stored in schema_version.
// Version 2 had no sample index tables; Open migrates it (migrate2, in
// samplemap.go).
const schemaVersion = 3

//go:embed schema.sql
var schemaSQL string

const (
	// readerConns is the size of the read pool. Reads are short, and in WAL
	// mode they run in parallel with each other and with the writer.
	readerConns = 8

	// writerCacheKiB and readerCacheKiB size the page cache of each
	// connection (PRAGMA cache_size, in KiB). The cache fills up to this
	// bound with the pages the connection has read or written. (Since the
	// entries table lost its indexes on random keys, the writer only
	// touches the right edge of the tables: 16 MiB holds them with room to
	// spare, and a larger cache measured no faster while using more memory.)
	// Readers get 8 MiB each: they read whole tiles and entry bundles,
	// which the operating system's page cache keeps anyway, and 8 readers
	// of 32 MiB held 270 MB of resident memory on a 100 M-entry log.
	writerCacheKiB = 16 << 10
	readerCacheKiB = 8 << 10

	// walAutocheckpoint is how many pages the WAL may hold before a commit
	// copies them into the database file (SQLite's default). An Append of
	// 1024 entries of about 300 bytes adds about 125 pages to the WAL, so
	// this checkpoints about every 8 such batches, 4 MiB at a time. A
	// larger value (10000) measured the same throughput with a p99 Append
	// latency of ~110 ms instead of 25-45 ms: the rare checkpoint is long.
	walAutocheckpoint = 1000

	// stmtCacheSize is how many prepared statements each connection keeps
	// (go-sqlite3's _stmt_cache_size), so the statements of Append and of
	// the reads are compiled once per connection, not once per call.
	stmtCacheSize = 64

	// entriesPerInsert is how many rows one INSERT writes: 5 parameters a
	// row, far below SQLite's limit of 32766 parameters a statement.
	entriesPerInsert = 256
)

// Store is a log stored in one SQLite file. It implements store.Store and is
// safe for concurrent use; see the package documentation for its guarantees.
type Store struct {
	path string
	w    *sql.DB // exactly one connection: every write
	r    *sql.DB // the read pool
	idx  *indexes

	closeOnce sync.Once
	closeErr  error
}

var _ store.Store = (*Store)(nil)

// Open opens the log in the SQLite database at path, creating the file and
// the schema if the file does not exist. It fails if path names a directory
// or a file that is not a custody database, if the database's schema
// version is not the one this package writes, or if SQLite cannot run the
// database in WAL mode with synchronous=FULL.
func Open(path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlite: opening database: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: opening %s: %w", path, err)
	}
	if err := checkPath(abs); err != nil {
		return nil, fmt.Errorf("sqlite: opening %s: %w", abs, err)
	}
	s, err := open(abs)
	if err != nil {
		return nil, fmt.Errorf("sqlite: opening %s: %w", abs, err)
	}
	return s, nil
}

// checkPath turns the usual mistakes into clear errors before SQLite reports
// them as "unable to open database file".
func checkPath(path string) error {
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.IsDir():
		return errors.New("is a directory, want a database file")
	case err == nil && !fi.Mode().IsRegular():
		return fmt.Errorf("is not a regular file (mode %v)", fi.Mode())
	case err == nil:
		return nil
	case !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR):
		return err
	}
	dir := filepath.Dir(path)
	fi, err = os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("directory %s does not exist", dir)
	case err != nil:
		return err
	case !fi.IsDir():
		return fmt.Errorf("%s is not a directory", dir)
	}
	return nil
}

func open(path string) (_ *Store, err error) {
	// The writer's connection sets synchronous=FULL and begins transactions
	// with BEGIN IMMEDIATE, so Append holds the write lock from its first
	// read of the latest checkpoint to its commit.
	w := sql.OpenDB(connector{dsn: dsn(path, url.Values{
		"_journal_mode":    {"WAL"},
		"_synchronous":     {"FULL"},
		"_busy_timeout":    {"5000"},
		"_foreign_keys":    {"on"},
		"_txlock":          {"immediate"},
		"_cache_size":      {fmt.Sprint(-writerCacheKiB)},
		"_stmt_cache_size": {fmt.Sprint(stmtCacheSize)},
	}), pragmas: []string{
		// Multi-row INSERTs need a statement journal (to undo a failed
		// statement); in memory it costs no file writes.
		"PRAGMA temp_store = MEMORY",
		fmt.Sprintf("PRAGMA wal_autocheckpoint = %d", walAutocheckpoint),
	}})
	defer func() {
		if err != nil {
			w.Close()
		}
	}()
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)

	ctx := context.Background()
	if err := checkPragmas(ctx, w); err != nil {
		return nil, err
	}
	if err := initSchema(ctx, w); err != nil {
		return nil, err
	}

	// Readers never write: query_only makes sure of it, and their
	// transactions (none are used today) would not take the write lock.
	r := sql.OpenDB(connector{dsn: dsn(path, url.Values{
		"_journal_mode":    {"WAL"},
		"_synchronous":     {"FULL"},
		"_busy_timeout":    {"5000"},
		"_foreign_keys":    {"on"},
		"_txlock":          {"deferred"},
		"_query_only":      {"true"},
		"_cache_size":      {fmt.Sprint(-readerCacheKiB)},
		"_stmt_cache_size": {fmt.Sprint(stmtCacheSize)},
	}), pragmas: []string{"PRAGMA temp_store = MEMORY"}})
	r.SetMaxOpenConns(readerConns)
	r.SetMaxIdleConns(readerConns)
	r.SetConnMaxLifetime(0)
	r.SetConnMaxIdleTime(0)
	if err := r.PingContext(ctx); err != nil {
		r.Close()
		return nil, err
	}
	idx, err := openIndexes(ctx, path, r)
	if err != nil {
		r.Close()
		return nil, err
	}
	return &Store{path: path, w: w, r: r, idx: idx}, nil
}

// connector opens go-sqlite3 connections to dsn and runs pragmas on each,
// for the settings go-sqlite3 has no DSN parameter for. (Using it avoids
// registering a driver under a global name.)
type connector struct {
	dsn     string
	pragmas []string
}

func (c connector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Driver().Open(c.dsn)
	if err != nil {
		return nil, err
	}
	for _, p := range c.pragmas {
		if _, err := conn.(*sqlite3.SQLiteConn).ExecContext(ctx, p, nil); err != nil {
			conn.Close()
			return nil, fmt.Errorf("%s: %w", p, err)
		}
	}
	return conn, nil
}

func (c connector) Driver() driver.Driver { return &sqlite3.SQLiteDriver{} }

// dsn returns a file: URI for path with the given go-sqlite3 parameters. The
// path is escaped, so names containing '?', '#' or '%' open the right file.
func dsn(path string, params url.Values) string {
	return "file:" + (&url.URL{Path: filepath.ToSlash(path)}).EscapedPath() + "?" + params.Encode()
}

// checkPragmas fails unless the writer's connection runs in WAL mode with
// synchronous=FULL, the two settings that make a commit durable.
func checkPragmas(ctx context.Context, db *sql.DB) error {
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("reading journal_mode: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal_mode is %q, want \"wal\" (SQLite needs a local filesystem with shared memory support for WAL)", mode)
	}
	var sync int
	if err := db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
		return fmt.Errorf("reading synchronous: %w", err)
	}
	if sync != 2 {
		return fmt.Errorf("synchronous is %d, want 2 (FULL)", sync)
	}
	return nil
}

// initSchema creates the schema in an empty database, or checks the version
// of an existing one. It runs in one IMMEDIATE transaction, so two processes
// creating the same new file do not both create the schema.
func initSchema(ctx context.Context, db *sql.DB) (err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning schema transaction: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()

	var tables int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_version'").Scan(&tables); err != nil {
		return fmt.Errorf("reading schema: %w", err)
	}
	if tables == 1 {
		var version int64
		err := tx.QueryRowContext(ctx, "SELECT version FROM schema_version WHERE id = 1").Scan(&version)
		if errors.Is(err, sql.ErrNoRows) {
			return errors.New("schema_version table has no row: the database is damaged or was not created by custody")
		}
		if err != nil {
			return fmt.Errorf("reading schema version: %w", err)
		}
		if version == 2 {
			if err := migrate2(ctx, tx); err != nil {
				return fmt.Errorf("migrating schema version 2 to %d: %w", schemaVersion, err)
			}
		} else if version != schemaVersion {
			return fmt.Errorf("schema version is %d, want %d: the database was created by another version of custody", version, schemaVersion)
		}
		return tx.Commit()
	}

	var objects int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&objects); err != nil {
		return fmt.Errorf("reading schema: %w", err)
	}
	if objects != 0 {
		return errors.New("the database has tables but no schema_version: it is not a custody log")
	}
	if _, err := tx.ExecContext(ctx, schemaSQL); err != nil {
		return fmt.Errorf("creating schema: %w", err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO schema_version (id, version) VALUES (1, ?)", schemaVersion); err != nil {
		return fmt.Errorf("recording schema version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing schema: %w", err)
	}
	return nil
}

// Close closes the database. Everything Append committed stays in the file.
// Close is idempotent; the Store must not be used after it.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		// The writer last: closing the last connection checkpoints the WAL
		// into the main file.
		s.closeErr = errors.Join(s.idx.close(), s.r.Close(), s.w.Close())
		if s.closeErr != nil {
			s.closeErr = fmt.Errorf("sqlite: closing %s: %w", s.path, s.closeErr)
		}
	})
	return s.closeErr
}

// Latest returns the checkpoint of the largest size, or an error wrapping
// store.ErrNotFound if the log has none yet.
func (s *Store) Latest(ctx context.Context) (store.Checkpoint, error) {
	row := s.r.QueryRowContext(ctx, "SELECT size, root, note FROM checkpoints ORDER BY size DESC LIMIT 1")
	c, err := scanCheckpoint(row)
	if err != nil {
		return store.Checkpoint{}, fmt.Errorf("sqlite: reading latest checkpoint: %w", err)
	}
	return c, nil
}

// Checkpoint returns the checkpoint of the given size, or an error wrapping
// store.ErrNotFound.
func (s *Store) Checkpoint(ctx context.Context, size uint64) (store.Checkpoint, error) {
	if size > math.MaxInt64 {
		return store.Checkpoint{}, fmt.Errorf("sqlite: reading checkpoint %d: %w", size, store.ErrNotFound)
	}
	row := s.r.QueryRowContext(ctx, "SELECT size, root, note FROM checkpoints WHERE size = ?", int64(size))
	c, err := scanCheckpoint(row)
	if err != nil {
		return store.Checkpoint{}, fmt.Errorf("sqlite: reading checkpoint %d: %w", size, err)
	}
	return c, nil
}

// Checkpoints implements store.Store.
func (s *Store) Checkpoints(ctx context.Context, from uint64, limit int) ([]store.Checkpoint, error) {
	if from > math.MaxInt64 || limit <= 0 {
		return nil, nil
	}
	rows, err := s.r.QueryContext(ctx, "SELECT size, root, note FROM checkpoints WHERE size >= ? ORDER BY size LIMIT ?", int64(from), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: listing checkpoints from %d: %w", from, err)
	}
	defer rows.Close()
	var out []store.Checkpoint
	for rows.Next() {
		c, err := scanCheckpoint(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: listing checkpoints from %d: %w", from, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: listing checkpoints from %d: %w", from, err)
	}
	return out, nil
}

func scanCheckpoint(row interface{ Scan(...any) error }) (store.Checkpoint, error) {
	var (
		size       int64
		root, note []byte
	)
	err := row.Scan(&size, &root, &note)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Checkpoint{}, store.ErrNotFound
	}
	if err != nil {
		return store.Checkpoint{}, err
	}
	return store.CheckpointFromRow(size, root, note)
}

// Tile returns the newest data of tile (level, index), or an error wrapping
// store.ErrNotFound.
func (s *Store) Tile(ctx context.Context, level uint8, index uint64) ([]byte, error) {
	if index > math.MaxInt64 {
		return nil, fmt.Errorf("sqlite: reading tile %d/%d: %w", level, index, store.ErrNotFound)
	}
	var data []byte
	err := s.r.QueryRowContext(ctx, "SELECT data FROM tiles WHERE level = ? AND idx = ?", int64(level), int64(index)).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: reading tile %d/%d: %w", level, index, err)
	}
	return data, nil
}

// Entries returns the entries with indexes in [start, end), in index order;
// fewer than end-start only when the log is shorter than end. Because a
// batch commits atomically, entries below the size of any checkpoint
// returned earlier are all present. The Data of the entries returned by one
// call are consecutive parts of one buffer, each with its capacity cut to
// its length, so appending to one never changes another.
func (s *Store) Entries(ctx context.Context, start, end uint64) ([]store.Entry, error) {
	end = min(end, math.MaxInt64)
	if start >= end {
		return nil, nil
	}
	rows, err := s.r.QueryContext(ctx, "SELECT idx, identity, leaf_hash, sample, data FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx", int64(start), int64(end))
	if err != nil {
		return nil, fmt.Errorf("sqlite: reading entries [%d, %d): %w", start, end, err)
	}
	defer rows.Close()
	n := int(min(end-start, 1024))
	entries := make([]store.Entry, 0, n)
	// The entries' data and samples are copied back to back into one
	// buffer and one string rather than allocated one by one: an entry
	// bundle is 256 entries, and serving bundles is most of an audit's
	// load on the server.
	var (
		buf     = make([]byte, 0, n*entryBufGuess)
		samples strings.Builder
		ends    = make([]int, 0, n) // end of each entry's sample in samples
	)
	samples.Grow(n * sampleGuess)
	for rows.Next() {
		var (
			idx                              int64
			identity, leafHash, sample, data sql.RawBytes
		)
		if err := rows.Scan(&idx, &identity, &leafHash, &sample, &data); err != nil {
			return nil, fmt.Errorf("sqlite: reading entries [%d, %d): %w", start, end, err)
		}
		if len(data) > cap(buf)-len(buf) {
			// Entries returned before keep the old buffer.
			buf = make([]byte, 0, max(len(data), cap(buf)))
		}
		off := len(buf)
		buf = append(buf, data...)
		e, err := store.EntryFromRow(idx, identity, leafHash, "", buf[off:len(buf):len(buf)])
		if err != nil {
			return nil, fmt.Errorf("sqlite: reading entries [%d, %d): %w", start, end, err)
		}
		samples.Write(sample)
		ends = append(ends, samples.Len())
		entries = append(entries, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: reading entries [%d, %d): %w", start, end, err)
	}
	all, from := samples.String(), 0
	for i := range entries {
		entries[i].Sample = all[from:ends[i]]
		from = ends[i]
	}
	return entries, nil
}

// Sizes Entries starts its buffers with, per entry: a custody event is
// about 260 bytes, its sample identifier about 30.
const (
	entryBufGuess = 320
	sampleGuess   = 32
)

// ByLeafHash returns the smallest index of an entry with leaf hash h, or an
// error wrapping store.ErrNotFound.
func (s *Store) ByLeafHash(ctx context.Context, h store.Hash) (uint64, error) {
	idx, err := s.byLeafHash(ctx, h)
	if err != nil {
		return 0, fmt.Errorf("sqlite: looking up leaf hash %x: %w", h, err)
	}
	return idx, nil
}

func (s *Store) byLeafHash(ctx context.Context, h store.Hash) (uint64, error) {
	if err := s.refresh(ctx); err != nil {
		return 0, err
	}
	cands, err := s.idx.leafCandidates(nil, h[:])
	if err != nil {
		return 0, err
	}
	slices.Sort(cands)
	// The chunks go up in index order, so the first chunk with a match
	// holds the smallest.
	for chunk := range slices.Chunk(cands, idxPerQuery) {
		first, ok := uint64(0), false
		err := readColumn(ctx, s.r, "leaf_hash", chunk, func(idx uint64, v []byte) {
			if bytes.Equal(v, h[:]) && (!ok || idx < first) {
				first, ok = idx, true
			}
		})
		if err != nil {
			return 0, err
		}
		if ok {
			return first, nil
		}
	}
	return 0, store.ErrNotFound
}

// ByIdentity returns the index of each given identity that is in the log.
// It reads the stored identities of the in-memory index's candidates, up to
// 1024 of them a query.
func (s *Store) ByIdentity(ctx context.Context, ids []store.Hash) (map[store.Hash]uint64, error) {
	found := make(map[store.Hash]uint64, len(ids))
	if len(ids) == 0 {
		return found, nil
	}
	err := s.refresh(ctx)
	if err == nil {
		err = s.idx.lookupIdentities(ctx, s.r, ids, found)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: looking up %d identities: %w", len(ids), err)
	}
	return found, nil
}

// querier is what the lookups need of a *sql.DB or *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Sample returns the indexes of the sample's entries in increasing order,
// and an empty slice for a sample with no entries.
func (s *Store) Sample(ctx context.Context, sample string) ([]uint64, error) {
	indexes, err := s.sample(ctx, sample)
	if err != nil {
		return nil, fmt.Errorf("sqlite: reading sample %q: %w", sample, err)
	}
	return indexes, nil
}

func (s *Store) sample(ctx context.Context, sample string) ([]uint64, error) {
	if err := s.refresh(ctx); err != nil {
		return nil, err
	}
	cands, err := s.idx.sampleCandidates(nil, []byte(sample))
	if err != nil {
		return nil, err
	}
	slices.Sort(cands)
	indexes := make([]uint64, 0, len(cands))
	for chunk := range slices.Chunk(cands, idxPerQuery) {
		err := readColumn(ctx, s.r, "sample", chunk, func(idx uint64, v []byte) {
			if string(v) == sample {
				indexes = append(indexes, idx)
			}
		})
		if err != nil {
			return nil, err
		}
	}
	slices.Sort(indexes)
	return indexes, nil
}

// placeholders returns rows groups of width '?' separated by commas:
// "?,?" for (2, 1), "(?,?),(?,?)" for (2, 2).
func placeholders(rows, width int) string {
	group := "?"
	if width > 1 {
		group = "(" + strings.TrimSuffix(strings.Repeat("?,", width), ",") + ")"
	}
	var b strings.Builder
	b.Grow(rows * (len(group) + 1))
	for i := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(group)
	}
	return b.String()
}
