package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/custodylog/custody/sampleindex"
	"github.com/custodylog/custody/store"
	"github.com/jackc/pgx/v5"
)

var _ store.SampleMap = (*Store)(nil)

// sampleMapSQL creates the sample index tables of schema.sql in a schema
// of version 1 or 2 (migrate2).
const sampleMapSQL = `CREATE TABLE IF NOT EXISTS sample_tiles (
    id   BYTEA  PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 33),
    size BIGINT NOT NULL CHECK (size >= 0),
    data BYTEA  NOT NULL
);
CREATE TABLE IF NOT EXISTS sample_map (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    size BIGINT  NOT NULL CHECK (size >= 0)
);
INSERT INTO sample_map (id, size) VALUES (1, 0) ON CONFLICT (id) DO NOTHING`

// migrate2 turns a schema of version 2 into version 3, in tx: it adds the
// (empty) sample index tables.
func migrate2(ctx context.Context, tx pgx.Tx) error {
	for _, q := range []string{
		"SELECT size FROM head WHERE id = 1 FOR UPDATE",
		sampleMapSQL,
		"UPDATE schema_version SET version = " + strconv.Itoa(schemaVersion) + " WHERE id = 1",
	} {
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", strings.SplitN(q, "(", 2)[0], err)
		}
	}
	return nil
}

// ReadSampleTiles returns the stored tiles among ids (store.SampleMap), in
// statements of at most tilesPerStatement tiles; it fails wrapping
// store.ErrConflict if one was written at a map size above maxSize.
func (s *Store) ReadSampleTiles(ctx context.Context, ids []sampleindex.TileID, maxSize uint64) (map[sampleindex.TileID][]byte, error) {
	out := make(map[sampleindex.TileID][]byte, len(ids))
	byKey := make(map[string]sampleindex.TileID, min(len(ids), tilesPerStatement))
	for len(ids) > 0 {
		n := min(len(ids), tilesPerStatement)
		clear(byKey)
		keys := make([][]byte, 0, n)
		for _, id := range ids[:n] {
			k := id.Key()
			byKey[string(k)] = id
			keys = append(keys, k)
		}
		if err := s.readSampleTiles(ctx, keys, byKey, maxSize, out); err != nil {
			return nil, fmt.Errorf("postgres: reading %d sample index tiles (first %s) from %s: %w", len(ids), ids[0], s.name, err)
		}
		ids = ids[n:]
	}
	return out, nil
}

func (s *Store) readSampleTiles(ctx context.Context, keys [][]byte, byKey map[string]sampleindex.TileID, maxSize uint64, out map[sampleindex.TileID][]byte) error {
	rows, err := s.pool.Query(ctx, "SELECT id, size, data FROM sample_tiles WHERE id = ANY($1)", keys)
	if err != nil {
		return err
	}
	var (
		key  []byte
		size int64
		data []byte
	)
	_, err = pgx.ForEachRow(rows, []any{&key, &size, &data}, func() error {
		id, ok := byKey[string(key)]
		if !ok {
			return fmt.Errorf("the database returned tile key %x, which was not asked for", key)
		}
		if size < 0 || uint64(size) > maxSize {
			return fmt.Errorf("%w: tile %s was written at map size %d, after the map size %d being read (the map was flushed since: reopen it)", store.ErrConflict, id, size, maxSize)
		}
		out[id] = append([]byte{}, data...)
		return nil
	})
	return err
}

// SampleMapSize returns the size of the stored sample index
// (store.SampleMap).
func (s *Store) SampleMapSize(ctx context.Context) (uint64, error) {
	var size int64
	err := s.pool.QueryRow(ctx, "SELECT size FROM sample_map WHERE id = 1").Scan(&size)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("postgres: reading the sample index size of %s: the sample_map table has no row: the log is damaged; run custody fsck", s.name)
	}
	if err == nil && size < 0 {
		err = fmt.Errorf("corrupt size %d", size)
	}
	if err != nil {
		return 0, fmt.Errorf("postgres: reading the sample index size of %s: %w", s.name, err)
	}
	return uint64(size), nil
}

// WriteSampleMap stores tiles and the map size in one transaction
// (store.SampleMap), committed like an Append. The compare-and-swap locks
// the sample_map row, so concurrent writers queue on it; it does not lock
// the log's head, so Appends go on meanwhile.
func (s *Store) WriteSampleMap(ctx context.Context, prev, size uint64, tiles []sampleindex.Tile) (err error) {
	if size > math.MaxInt64 || prev > math.MaxInt64 {
		return fmt.Errorf("postgres: writing the sample index at size %d: size out of range", size)
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("postgres: writing %d sample index tiles at map size %d (from %d) to %s: %w", len(tiles), size, prev, s.name, err)
		}
	}()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer rollback(ctx, tx)
	var stored int64
	if err := tx.QueryRow(ctx, "SELECT size FROM sample_map WHERE id = 1 FOR UPDATE").Scan(&stored); err != nil {
		return fmt.Errorf("reading the stored map size: %w", err)
	}
	if stored < 0 || uint64(stored) != prev {
		return fmt.Errorf("%w: the stored map has size %d, not %d (another writer flushed it, or it was reset)", store.ErrConflict, stored, prev)
	}
	var logSize int64
	if err := tx.QueryRow(ctx, "SELECT size FROM head WHERE id = 1").Scan(&logSize); err != nil {
		return fmt.Errorf("reading the log size: %w", err)
	}
	if size < prev || logSize < 0 || uint64(logSize) < size {
		return fmt.Errorf("%w: map size %d is below the stored %d or beyond the log's latest checkpoint (%d)", store.ErrConflict, size, prev, logSize)
	}
	for len(tiles) > 0 {
		n := min(len(tiles), tilesPerStatement)
		var q strings.Builder
		q.WriteString("INSERT INTO sample_tiles (id, size, data) VALUES ")
		args := make([]any, 0, 3*n)
		for i, t := range tiles[:n] {
			if i > 0 {
				q.WriteByte(',')
			}
			fmt.Fprintf(&q, "($%d,$%d,$%d)", 3*i+1, 3*i+2, 3*i+3)
			data := t.Data
			if data == nil {
				data = []byte{}
			}
			args = append(args, t.ID.Key(), int64(size), data)
		}
		q.WriteString(" ON CONFLICT (id) DO UPDATE SET size = excluded.size, data = excluded.data")
		if _, err := tx.Exec(ctx, q.String(), args...); err != nil {
			return fmt.Errorf("writing tiles: %w", err)
		}
		tiles = tiles[n:]
	}
	if _, err := tx.Exec(ctx, "UPDATE sample_map SET size = $1 WHERE id = 1", int64(size)); err != nil {
		return fmt.Errorf("recording the map size: %w", err)
	}
	return tx.Commit(ctx)
}

// ResetSampleMap deletes the stored sample index (store.SampleMap).
func (s *Store) ResetSampleMap(ctx context.Context) error {
	err := func() error {
		tx, err := s.pool.Begin(ctx)
		if err != nil {
			return err
		}
		defer rollback(ctx, tx)
		for _, q := range []string{"SELECT size FROM sample_map WHERE id = 1 FOR UPDATE", "DELETE FROM sample_tiles", "UPDATE sample_map SET size = 0 WHERE id = 1"} {
			if _, err := tx.Exec(ctx, q); err != nil {
				return fmt.Errorf("%s: %w", strings.Fields(q)[0], err)
			}
		}
		return tx.Commit(ctx)
	}()
	if err != nil {
		return fmt.Errorf("postgres: resetting the sample index of %s: %w", s.name, err)
	}
	return nil
}

// EachSampleTile lists the stored tiles in key order (store.SampleMap), in
// one read-only REPEATABLE READ transaction, which sees one snapshot.
func (s *Store) EachSampleTile(ctx context.Context, fn func(store.SampleTile) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly, IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return fmt.Errorf("postgres: listing sample index tiles of %s: beginning a read-only transaction: %w", s.name, err)
	}
	defer rollback(ctx, tx) // read-only: nothing to commit
	rows, err := tx.Query(ctx, "SELECT id, size, data FROM sample_tiles ORDER BY id")
	if err != nil {
		return fmt.Errorf("postgres: listing sample index tiles of %s: %w", s.name, err)
	}
	var (
		t     store.SampleTile
		size  int64
		fnErr error
	)
	_, err = pgx.ForEachRow(rows, []any{&t.Key, &size, &t.Data}, func() error {
		if size < 0 {
			return fmt.Errorf("tile %x has corrupt size %d", t.Key, size)
		}
		t.Size = uint64(size)
		fnErr = fn(t)
		return fnErr
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("postgres: listing sample index tiles of %s: %w", s.name, err)
	}
	return nil
}
