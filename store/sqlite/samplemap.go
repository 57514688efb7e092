package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/custodylog/custody/sampleindex"
	"github.com/custodylog/custody/store"
)

var _ store.SampleMap = (*Store)(nil)

// sampleMapSQL creates the sample index tables of schema.sql in a
// database of schema version 2 (migrate2).
const sampleMapSQL = `CREATE TABLE sample_tiles (
    id   BLOB    NOT NULL UNIQUE CHECK (length(id) BETWEEN 1 AND 33),
    size INTEGER NOT NULL CHECK (size >= 0),
    data BLOB    NOT NULL
) STRICT;
CREATE TABLE sample_map (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    size INTEGER NOT NULL CHECK (size >= 0)
) STRICT;
INSERT INTO sample_map (id, size) VALUES (1, 0);`

// migrate2 turns a database of schema version 2 into version 3, in tx:
// it adds the (empty) sample index tables.
func migrate2(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, sampleMapSQL); err != nil {
		return fmt.Errorf("creating the sample index tables: %w", err)
	}
	if _, err := tx.ExecContext(ctx, "UPDATE schema_version SET version = ? WHERE id = 1", schemaVersion); err != nil {
		return fmt.Errorf("recording schema version: %w", err)
	}
	return nil
}

// sampleTilesPerStatement bounds the tiles one SELECT or INSERT names (3
// parameters a tile on insert, far below SQLite's 32766).
const sampleTilesPerStatement = 500

// ReadSampleTiles returns the stored tiles among ids (store.SampleMap),
// reading on the read pool, in statements of at most 500 tiles; it fails
// wrapping store.ErrConflict if one was written at a map size above
// maxSize.
func (s *Store) ReadSampleTiles(ctx context.Context, ids []sampleindex.TileID, maxSize uint64) (map[sampleindex.TileID][]byte, error) {
	out := make(map[sampleindex.TileID][]byte, len(ids))
	byKey := make(map[string]sampleindex.TileID, min(len(ids), sampleTilesPerStatement))
	args := make([]any, 0, min(len(ids), sampleTilesPerStatement))
	for len(ids) > 0 {
		n := min(len(ids), sampleTilesPerStatement)
		clear(byKey)
		args = args[:0]
		for _, id := range ids[:n] {
			k := id.Key()
			byKey[string(k)] = id
			args = append(args, k)
		}
		if err := s.readSampleTiles(ctx, args, byKey, maxSize, out); err != nil {
			return nil, fmt.Errorf("sqlite: reading %d sample index tiles (first %s) from %s: %w", len(ids), ids[0], s.path, err)
		}
		ids = ids[n:]
	}
	return out, nil
}

func (s *Store) readSampleTiles(ctx context.Context, args []any, byKey map[string]sampleindex.TileID, maxSize uint64, out map[sampleindex.TileID][]byte) error {
	rows, err := s.r.QueryContext(ctx, "SELECT id, size, data FROM sample_tiles WHERE id IN ("+placeholders(len(args), 1)+")", args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			key  []byte
			size int64
			data []byte
		)
		if err := rows.Scan(&key, &size, &data); err != nil {
			return err
		}
		id, ok := byKey[string(key)]
		if !ok {
			return fmt.Errorf("the database returned tile key %x, which was not asked for", key)
		}
		if size < 0 || uint64(size) > maxSize {
			return fmt.Errorf("%w: tile %s was written at map size %d, after the map size %d being read (the map was flushed since: reopen it)", store.ErrConflict, id, size, maxSize)
		}
		if data == nil {
			data = []byte{}
		}
		out[id] = data
	}
	return rows.Err()
}

// SampleMapSize returns the size of the stored sample index
// (store.SampleMap).
func (s *Store) SampleMapSize(ctx context.Context) (uint64, error) {
	var size int64
	err := s.r.QueryRowContext(ctx, "SELECT size FROM sample_map WHERE id = 1").Scan(&size)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("sqlite: reading the sample index size of %s: the sample_map table has no row: the database is damaged; run custody fsck", s.path)
	}
	if err != nil {
		return 0, fmt.Errorf("sqlite: reading the sample index size of %s: %w", s.path, err)
	}
	if size < 0 {
		return 0, fmt.Errorf("sqlite: reading the sample index size of %s: corrupt size %d", s.path, size)
	}
	return uint64(size), nil
}

// WriteSampleMap stores tiles and the map size in one transaction on the
// writer connection (store.SampleMap), committed and fsynced like an
// Append. It waits for an Append in flight, and Appends wait for it.
func (s *Store) WriteSampleMap(ctx context.Context, prev, size uint64, tiles []sampleindex.Tile) error {
	if size > math.MaxInt64 {
		return fmt.Errorf("sqlite: writing the sample index at size %d: size out of range", size)
	}
	if err := s.writeSampleMap(ctx, prev, size, tiles); err != nil {
		return fmt.Errorf("sqlite: writing %d sample index tiles at map size %d (from %d) to %s: %w", len(tiles), size, prev, s.path, err)
	}
	return nil
}

func (s *Store) writeSampleMap(ctx context.Context, prev, size uint64, tiles []sampleindex.Tile) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var stored int64
	if err := tx.QueryRowContext(ctx, "SELECT size FROM sample_map WHERE id = 1").Scan(&stored); err != nil {
		return fmt.Errorf("reading the stored map size: %w", err)
	}
	if stored < 0 || uint64(stored) != prev {
		return fmt.Errorf("%w: the stored map has size %d, not %d (another writer flushed it, or it was reset)", store.ErrConflict, stored, prev)
	}
	var logSize sql.NullInt64
	if err := tx.QueryRowContext(ctx, "SELECT max(size) FROM checkpoints").Scan(&logSize); err != nil {
		return fmt.Errorf("reading the log size: %w", err)
	}
	if size < prev || !logSize.Valid || uint64(logSize.Int64) < size {
		return fmt.Errorf("%w: map size %d is below the stored %d or beyond the log's latest checkpoint (%d)", store.ErrConflict, size, prev, logSize.Int64)
	}
	var stmt *sql.Stmt
	defer func() {
		if stmt != nil {
			stmt.Close()
		}
	}()
	args := make([]any, 0, 3*min(len(tiles), sampleTilesPerStatement))
	for len(tiles) > 0 {
		n := min(len(tiles), sampleTilesPerStatement)
		args = args[:0]
		for _, t := range tiles[:n] {
			data := t.Data
			if data == nil {
				data = []byte{}
			}
			args = append(args, t.ID.Key(), int64(size), data)
		}
		q := "INSERT INTO sample_tiles (id, size, data) VALUES " + placeholders(n, 3) +
			" ON CONFLICT (id) DO UPDATE SET size = excluded.size, data = excluded.data"
		if n == sampleTilesPerStatement {
			if stmt == nil {
				if stmt, err = tx.PrepareContext(ctx, q); err != nil {
					return err
				}
			}
			_, err = stmt.ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, q, args...)
		}
		if err != nil {
			return fmt.Errorf("writing tiles: %w", err)
		}
		tiles = tiles[n:]
	}
	if _, err := tx.ExecContext(ctx, "UPDATE sample_map SET size = ? WHERE id = 1", int64(size)); err != nil {
		return fmt.Errorf("recording the map size: %w", err)
	}
	return tx.Commit()
}

// ResetSampleMap deletes the stored sample index (store.SampleMap).
func (s *Store) ResetSampleMap(ctx context.Context) error {
	err := func() error {
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		for _, q := range []string{"DELETE FROM sample_tiles", "UPDATE sample_map SET size = 0 WHERE id = 1"} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("%s: %w", strings.Fields(q)[0], err)
			}
		}
		return tx.Commit()
	}()
	if err != nil {
		return fmt.Errorf("sqlite: resetting the sample index of %s: %w", s.path, err)
	}
	return nil
}

// EachSampleTile lists the stored tiles in key order (store.SampleMap),
// in one query on the read pool, which sees one snapshot.
func (s *Store) EachSampleTile(ctx context.Context, fn func(store.SampleTile) error) error {
	rows, err := s.r.QueryContext(ctx, "SELECT id, size, data FROM sample_tiles ORDER BY id")
	if err != nil {
		return fmt.Errorf("sqlite: listing sample index tiles of %s: %w", s.path, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			t    store.SampleTile
			size int64
		)
		if err := rows.Scan(&t.Key, &size, &t.Data); err != nil {
			return fmt.Errorf("sqlite: listing sample index tiles of %s: %w", s.path, err)
		}
		if size < 0 {
			return fmt.Errorf("sqlite: listing sample index tiles of %s: tile %x has corrupt size %d", s.path, t.Key, size)
		}
		t.Size = uint64(size)
		if err := fn(t); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: listing sample index tiles of %s: %w", s.path, err)
	}
	return nil
}
