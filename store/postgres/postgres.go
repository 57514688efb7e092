// Package postgres implements store.Store in a PostgreSQL database, for
// several custody servers sharing one log (see also store.Leaser, which it
// implements too).
//
// # Schema
//
// Open creates the tables of schema.sql in the first schema of the
// connection's search_path, in one transaction that also records the schema
// version, and refuses a database whose schema has another version. The
// search_path can be given as a DSN parameter, so several logs can share a
// database in separate schemas:
//
//	postgres://custody@db.example:5432/custody?sslmode=verify-full&search_path=log1
//
// # Durability
//
// Each Append is one transaction, and its COMMIT returns once the server has
// flushed the transaction to its write-ahead log: Open sets
// synchronous_commit=on for its connections (unless the DSN sets it) and
// refuses a server that runs with fsync=off or a DSN that sets
// synchronous_commit=off. When Append returns nil the batch survives a crash
// of the database server (and, with synchronous replication, of its
// primary).
//
// # Compare-and-swap
//
// A single-row table, head, holds the size and root of the latest
// checkpoint. Append's first statement is
//
//	UPDATE head SET size = $new, root = $new WHERE size = $prev AND root = $prev
//
// and it returns store.ErrConflict unless that updated one row. The update
// locks the row until the transaction ends, so concurrent writers, in this
// process or in others, are serialised on it: a writer that waited
// re-evaluates the WHERE clause against the committed new head (under READ
// COMMITTED) or fails with a serialization error (under REPEATABLE READ or
// SERIALIZABLE, and on CockroachDB), which Append also reports as
// store.ErrConflict. Everything else the batch writes (entries, tiles, the
// checkpoint) is written in the same transaction after the head is locked.
// The database enforces the uniqueness of entry indexes and identities
// (PRIMARY KEY and UNIQUE), and tiles are read with SELECT ... FOR UPDATE
// and compared before they are replaced.
//
// The package uses only portable SQL (no PL/pgSQL, LISTEN/NOTIFY or
// advisory locks); docs/postgres.md lists what the database must support.
package postgres

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/store/hashindex"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// schemaVersion is the version of schema.sql, stored in schema_version.
// Version 1 had database indexes on entries' identity, leaf hash and
// sample; version 2 had no sample index tables. Open migrates both
// (migrate1, then migrate2 in samplemap.go).
const schemaVersion = 3

//go:embed schema.sql
var schemaSQL string

// tables are the tables of schema.sql.
var tables = []string{"schema_version", "head", "entries", "tiles", "checkpoints", "lease", "aggregates", "sample_tiles", "sample_map"}

const (
	// defaultMaxConns is the pool size when the DSN has no pool_max_conns.
	defaultMaxConns = 16

	// tilesPerStatement bounds the tiles one SELECT or INSERT names (3
	// parameters a tile, far below PostgreSQL's 65535).
	tilesPerStatement = 1000

	// cleanupTimeout bounds a ROLLBACK or COMMIT that runs after the
	// caller's context was canceled.
	cleanupTimeout = 30 * time.Second
)

// Store is a log stored in a PostgreSQL database. It implements store.Store
// and store.Leaser and is safe for concurrent use; see the package
// documentation for its guarantees.
type Store struct {
	dsn  string // as given to Open (for tests that reopen)
	name string // the database, for messages (no password)
	pool *pgxpool.Pool
	idx  *lookups

	closeOnce sync.Once
	closeErr  error
}

var (
	_ store.Store  = (*Store)(nil)
	_ store.Leaser = (*Store)(nil)
)

// Options are the settings of OpenOptions beyond the DSN.
type Options struct {
	// IndexDir is the local directory under which this process keeps the
	// lookup index of the log (by identity, leaf hash and sample; see
	// "Lookups" in the package documentation), in a subdirectory named
	// after the schema, the database and a hash of where it is, so that
	// one IndexDir serves any number of logs. Empty means
	// DefaultIndexDir(). Each server needs its own: a subdirectory that
	// another Store has open (another server on this machine, or a tool
	// next to a running server) is not shared, and that Store keeps its
	// index in a temporary directory instead, built from the entries on
	// first use and removed at Close.
	IndexDir string
}

// Open is OpenOptions with the default Options.
func Open(ctx context.Context, dsn string) (*Store, error) {
	return OpenOptions(ctx, dsn, Options{})
}

// OpenOptions connects to the PostgreSQL database named by dsn (a
// postgres:// URL or a "key=value ..." string, as pgx accepts them,
// optionally with a search_path parameter) and returns the log stored in
// it, creating the schema if the tables do not exist and migrating a
// schema of version 1 (see the package documentation). It opens the
// lookup index under opts.IndexDir and brings it up to the log's size. It
// fails if the server is unreachable, if the database's schema version is
// neither this package's nor 1, if some but not all of the tables exist,
// if commits would not be durable (fsync=off, synchronous_commit=off), or
// if the lookup index cannot be opened or built.
func OpenOptions(ctx context.Context, dsn string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: parsing DSN: %w (want postgres://USER@HOST:PORT/DATABASE?sslmode=...)", err)
	}
	name := describe(cfg)
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = defaultMaxConns
	}
	// Statements are described once per connection but planned at every
	// execution (the unnamed prepared statement), for their parameters: a
	// cached generic plan made while the log was small (a sequential scan
	// comparing every row with every identity of ByIdentity's array) turns
	// quadratic once it is large.
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe
	params := cfg.ConnConfig.RuntimeParams
	if _, ok := params["synchronous_commit"]; !ok {
		params["synchronous_commit"] = "on"
	}
	if _, ok := params["application_name"]; !ok {
		params["application_name"] = "custody"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: opening %s: %w", name, err)
	}
	schema, err := initialize(ctx, pool)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: opening %s: %w", name, err)
	}
	dir := opts.IndexDir
	if dir == "" {
		dir, _ = DefaultIndexDir() // none: a temporary index
	}
	if dir != "" {
		dir = filepath.Join(dir, indexDirName(cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, schema))
	}
	idx, err := openLookups(ctx, pool, dir)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: opening %s: %w", name, err)
	}
	return &Store{dsn: dsn, name: name, pool: pool, idx: idx}, nil
}

// describe names the database of cfg for messages, without the password.
func describe(cfg *pgxpool.Config) string {
	c := cfg.ConnConfig
	s := fmt.Sprintf("postgres://%s@%s/%s", c.User, hostPort(c.Host, c.Port), c.Database)
	if sp := c.RuntimeParams["search_path"]; sp != "" {
		s += " (search_path " + sp + ")"
	}
	return s
}

func hostPort(host string, port uint16) string {
	if strings.HasPrefix(host, "/") {
		return host // a Unix socket directory
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(int(port))
}

// initialize checks the connection and the durability settings, and creates
// or checks the schema.
func initialize(ctx context.Context, pool *pgxpool.Pool) (schema string, err error) {
	if err := pool.Ping(ctx); err != nil {
		return "", fmt.Errorf("connecting: %w (is the server running, and are the DSN's host, port, user and database right?)", err)
	}
	if err := checkDurability(ctx, pool); err != nil {
		return "", err
	}
	// Two processes creating the schema at once: the second one's CREATE
	// TABLE fails once the first commits; then it finds the schema made.
	for range 3 {
		if schema, err = initSchema(ctx, pool); err == nil || !isCreateRace(err) {
			return schema, err
		}
	}
	return "", err
}

// checkDurability fails unless a commit waits for the server's WAL flush.
// (current_setting(name, true) is NULL for a setting the server does not
// have, as on engines that are always durable.)
func checkDurability(ctx context.Context, pool *pgxpool.Pool) error {
	var syncCommit, fsync *string
	err := pool.QueryRow(ctx, "SELECT current_setting('synchronous_commit', true), current_setting('fsync', true)").Scan(&syncCommit, &fsync)
	if err != nil {
		return fmt.Errorf("reading synchronous_commit and fsync: %w", err)
	}
	if fsync != nil && strings.EqualFold(*fsync, "off") {
		return errors.New("the server runs with fsync=off, so a crash could lose committed batches after their checkpoint was published: set fsync=on in postgresql.conf")
	}
	if syncCommit != nil && strings.EqualFold(*syncCommit, "off") {
		return errors.New("synchronous_commit is off (set by the DSN, the role or the database), so a crash could lose committed batches: remove that setting or set synchronous_commit=on")
	}
	return nil
}

// initSchema creates the schema if none of its tables exists, checks the
// version of an existing one, or migrates one of version 1, in one
// transaction. It returns the name of the schema.
func initSchema(ctx context.Context, pool *pgxpool.Pool) (_ string, err error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return "", fmt.Errorf("beginning schema transaction: %w", err)
	}
	defer func() {
		if err != nil {
			rollback(ctx, tx)
		}
	}()

	var schema *string
	if err := tx.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return "", fmt.Errorf("reading current schema: %w", err)
	}
	if schema == nil {
		return "", errors.New("no schema of the search_path exists, so there is nowhere to create the tables: create the schema (CREATE SCHEMA name) or fix the search_path parameter of the DSN")
	}
	rows, err := tx.Query(ctx, "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_name = ANY($2)", *schema, tables)
	if err != nil {
		return "", fmt.Errorf("reading schema %s: %w", *schema, err)
	}
	existing, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", fmt.Errorf("reading schema %s: %w", *schema, err)
	}
	if slices.Contains(existing, "schema_version") {
		var version int64
		err := tx.QueryRow(ctx, "SELECT version FROM schema_version WHERE id = 1").Scan(&version)
		if errors.Is(err, pgx.ErrNoRows) {
			return "", fmt.Errorf("schema %s: schema_version table has no row: the log is damaged or was not created by custody; use another database or schema (search_path)", *schema)
		}
		if err != nil {
			return "", fmt.Errorf("reading schema version: %w", err)
		}
		if version == 1 {
			if err := migrate1(ctx, tx); err != nil {
				return "", fmt.Errorf("schema %s: migrating from version 1 to %d: %w", *schema, schemaVersion, err)
			}
			version = 2
		}
		if version == 2 {
			if err := migrate2(ctx, tx); err != nil {
				return "", fmt.Errorf("schema %s: migrating from version 2 to %d: %w", *schema, schemaVersion, err)
			}
		} else if version != schemaVersion {
			return "", fmt.Errorf("schema %s: schema version is %d, want %d: the log was created by another version of custody; run that version, or give a new database or schema (search_path)", *schema, version, schemaVersion)
		}
		if err := tx.Commit(ctx); err != nil {
			return "", fmt.Errorf("committing schema in %s: %w", *schema, err)
		}
		return *schema, nil
	}
	if len(existing) != 0 {
		slices.Sort(existing)
		return "", fmt.Errorf("schema %s has tables %s but no schema_version: it is not a custody log, or a damaged one; use another database or schema (search_path)", *schema, strings.Join(existing, ", "))
	}
	if _, err := tx.Exec(ctx, schemaSQL); err != nil {
		return "", fmt.Errorf("creating schema in %s: %w", *schema, err)
	}
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{"INSERT INTO schema_version (id, version) VALUES (1, $1)", []any{schemaVersion}},
		{"INSERT INTO head (id, size, root) VALUES (1, -1, $1)", []any{[]byte{}}},
		{"INSERT INTO lease (id, holder, addr, expires, epoch) VALUES (1, '', '', $1, 0)", []any{time.Unix(0, 0).UTC()}},
	} {
		if _, err := tx.Exec(ctx, q.sql, q.args...); err != nil {
			return "", fmt.Errorf("initialising schema in %s: %w", *schema, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return "", fmt.Errorf("committing schema in %s: %w", *schema, err)
	}
	return *schema, nil
}

// migrate1 turns a schema of version 1 into the current one, in tx: it
// drops the database indexes on entries' identity (the UNIQUE constraint),
// leaf hash and sample, which the lookup index replaces, and adds the
// aggregates table. It first locks the head row, so it waits for an
// Append in flight and none starts until the migration commits. (A server
// of version 1 still running refuses nothing at that point, but its next
// Open refuses version 2: upgrade all servers of a log together.)
func migrate1(ctx context.Context, tx pgx.Tx) error {
	for _, q := range []string{
		"SELECT size FROM head WHERE id = 1 FOR UPDATE",
		"ALTER TABLE entries DROP CONSTRAINT IF EXISTS entries_identity_key",
		"DROP INDEX IF EXISTS entries_leaf_hash",
		"DROP INDEX IF EXISTS entries_sample",
		aggregatesSQL,
		"UPDATE schema_version SET version = " + strconv.Itoa(schemaVersion) + " WHERE id = 1",
	} {
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", strings.SplitN(q, "(", 2)[0], err)
		}
	}
	return nil
}

// isCreateRace reports whether err is what CREATE TABLE returns when another
// session created the same table concurrently: duplicate_table (42P07),
// unique_violation (23505, on the catalog), serialization_failure (40001),
// or duplicate_object (42710: "type schema_version already exists", the
// table's row type, seen in TestConcurrentOpen).
func isCreateRace(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "42P07" || pe.Code == "23505" || pe.Code == "40001" || pe.Code == "42710")
}

// rollback ends tx, even when ctx is already canceled.
func rollback(ctx context.Context, tx pgx.Tx) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	tx.Rollback(ctx)
}

// Close closes the store's connections. Everything Append committed stays in
// the database. Close is idempotent; the Store must not be used after it.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.pool.Close()
		if err := s.idx.close(); err != nil {
			s.closeErr = fmt.Errorf("postgres: closing the lookup index of %s: %w (it is rebuilt from the entries at the next Open)", s.name, err)
		}
	})
	return s.closeErr
}

// Latest returns the checkpoint of the largest size, or an error wrapping
// store.ErrNotFound if the log has none yet.
func (s *Store) Latest(ctx context.Context) (store.Checkpoint, error) {
	row := s.pool.QueryRow(ctx, "SELECT size, root, note FROM checkpoints ORDER BY size DESC LIMIT 1")
	c, err := scanCheckpoint(row)
	if err != nil {
		return store.Checkpoint{}, fmt.Errorf("postgres: reading latest checkpoint: %w", err)
	}
	return c, nil
}

// Checkpoint returns the checkpoint of the given size, or an error wrapping
// store.ErrNotFound.
func (s *Store) Checkpoint(ctx context.Context, size uint64) (store.Checkpoint, error) {
	if size > math.MaxInt64 {
		return store.Checkpoint{}, fmt.Errorf("postgres: reading checkpoint %d: %w", size, store.ErrNotFound)
	}
	row := s.pool.QueryRow(ctx, "SELECT size, root, note FROM checkpoints WHERE size = $1", int64(size))
	c, err := scanCheckpoint(row)
	if err != nil {
		return store.Checkpoint{}, fmt.Errorf("postgres: reading checkpoint %d: %w", size, err)
	}
	return c, nil
}

// Checkpoints returns up to limit stored checkpoints of size >= from, in
// increasing size order.
func (s *Store) Checkpoints(ctx context.Context, from uint64, limit int) ([]store.Checkpoint, error) {
	if from > math.MaxInt64 || limit <= 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, "SELECT size, root, note FROM checkpoints WHERE size >= $1 ORDER BY size LIMIT $2", int64(from), int64(limit))
	if err != nil {
		return nil, fmt.Errorf("postgres: listing checkpoints from %d: %w", from, err)
	}
	defer rows.Close()
	var out []store.Checkpoint
	for rows.Next() {
		c, err := scanCheckpoint(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: listing checkpoints from %d: %w", from, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: listing checkpoints from %d: %w", from, err)
	}
	return out, nil
}

func scanCheckpoint(row pgx.Row) (store.Checkpoint, error) {
	var (
		size       int64
		root, note []byte
	)
	err := row.Scan(&size, &root, &note)
	if errors.Is(err, pgx.ErrNoRows) {
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
		return nil, fmt.Errorf("postgres: reading tile %d/%d: %w", level, index, store.ErrNotFound)
	}
	var data []byte
	err := s.pool.QueryRow(ctx, "SELECT data FROM tiles WHERE level = $1 AND idx = $2", int32(level), int64(index)).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: reading tile %d/%d: %w", level, index, err)
	}
	return data, nil
}

// Entries returns the entries with indexes in [start, end), in index order;
// fewer than end-start only when the log is shorter than end. Because a
// batch commits atomically, entries below the size of any checkpoint
// returned earlier are all present.
func (s *Store) Entries(ctx context.Context, start, end uint64) ([]store.Entry, error) {
	end = min(end, math.MaxInt64)
	if start >= end {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, "SELECT idx, identity, leaf_hash, sample, data FROM entries WHERE idx >= $1 AND idx < $2 ORDER BY idx", int64(start), int64(end))
	if err != nil {
		return nil, fmt.Errorf("postgres: reading entries [%d, %d): %w", start, end, err)
	}
	defer rows.Close()
	entries := make([]store.Entry, 0, min(end-start, 1024))
	for rows.Next() {
		var (
			idx                int64
			identity, leafHash []byte
			sample             string
			data               []byte
		)
		if err := rows.Scan(&idx, &identity, &leafHash, &sample, &data); err != nil {
			return nil, fmt.Errorf("postgres: reading entries [%d, %d): %w", start, end, err)
		}
		e, err := store.EntryFromRow(idx, identity, leafHash, sample, data)
		if err != nil {
			return nil, fmt.Errorf("postgres: reading entries [%d, %d): %w", start, end, err)
		}
		entries = append(entries, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: reading entries [%d, %d): %w", start, end, err)
	}
	return entries, nil
}

// ByLeafHash returns the smallest index of an entry with leaf hash h, or an
// error wrapping store.ErrNotFound. It finds the candidates in the lookup
// index and confirms them against the stored rows.
func (s *Store) ByLeafHash(ctx context.Context, h store.Hash) (uint64, error) {
	idx, err := s.byLeafHash(ctx, h)
	if err != nil {
		return 0, fmt.Errorf("postgres: looking up leaf hash %x: %w", h, err)
	}
	return idx, nil
}

func (s *Store) byLeafHash(ctx context.Context, h store.Hash) (uint64, error) {
	if err := s.refresh(ctx); err != nil {
		return 0, err
	}
	cands, err := s.idx.candidates(tableLeaf, uint64(hashindex.KeyOf(h[:])), nil)
	if err != nil {
		return 0, err
	}
	found, err := matching(ctx, s.pool, cands, "leaf_hash", h[:], true)
	if err != nil {
		return 0, err
	}
	if len(found) == 0 {
		return 0, store.ErrNotFound
	}
	return found[0], nil
}

// ByIdentity returns the index of each given identity that is in the log.
// It finds the candidates in the lookup index and confirms them against
// the stored rows, up to 8192 a query.
func (s *Store) ByIdentity(ctx context.Context, ids []store.Hash) (map[store.Hash]uint64, error) {
	found := make(map[store.Hash]uint64, len(ids))
	if len(ids) == 0 {
		return found, nil
	}
	err := s.refresh(ctx)
	if err == nil {
		err = s.idx.byIdentity(ctx, s.pool, ids, found)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: looking up %d identities: %w", len(ids), err)
	}
	return found, nil
}

// querier is what the lookups need of a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Sample returns the indexes of the sample's entries in increasing order,
// and an empty slice for a sample with no entries. It finds the
// candidates in the lookup index and confirms them against the stored
// rows.
func (s *Store) Sample(ctx context.Context, sample string) ([]uint64, error) {
	indexes, err := s.sample(ctx, sample)
	if err != nil {
		return nil, fmt.Errorf("postgres: reading sample %q: %w", sample, err)
	}
	return indexes, nil
}

func (s *Store) sample(ctx context.Context, sample string) ([]uint64, error) {
	if err := s.refresh(ctx); err != nil {
		return nil, err
	}
	cands, err := s.idx.candidates(tableSample, sampleKey(sample), nil)
	if err != nil {
		return nil, err
	}
	return matching(ctx, s.pool, cands, "sample", sample, false)
}

// sqlState returns the SQLSTATE of err, or "".
func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// isRetryable reports whether err is a serialization failure or a deadlock:
// another transaction won, and this one wrote nothing.
func isRetryable(err error) bool {
	switch sqlState(err) {
	case "40001", "40P01":
		return true
	}
	return false
}

// placeholders returns rows groups of width numbered parameters from $first,
// separated by commas: "($1,$2),($3,$4)" for (2, 2, 1).
func placeholders(rows, width, first int) string {
	var b strings.Builder
	n := first
	for i := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for j := range width {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			n++
		}
		b.WriteByte(')')
	}
	return b.String()
}
