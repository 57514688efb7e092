package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"

	"github.com/custodylog/custody/store"
)

var _ store.Aggregator = (*Store)(nil)

// aggregatesSQL creates the aggregates table of schema.sql in a database
// made before the table existed.
const aggregatesSQL = `CREATE TABLE IF NOT EXISTS aggregates (
    name TEXT    PRIMARY KEY,
    size INTEGER NOT NULL CHECK (size >= 0),
    data BLOB    NOT NULL
) STRICT`

// SaveAggregate durably replaces the aggregate called name (one
// transaction on the writer connection, synchronous=FULL like Append's),
// creating the aggregates table in a database made before it existed. It
// fails for a size of 2^63 or more, which no log reaches.
func (s *Store) SaveAggregate(ctx context.Context, name string, size uint64, data []byte) error {
	if size > math.MaxInt64 {
		return fmt.Errorf("sqlite: saving aggregate %q at size %d: size out of range", name, size)
	}
	if data == nil {
		data = []byte{} // nil would be NULL
	}
	err := s.saveAggregate(ctx, name, int64(size), data)
	if err != nil {
		return fmt.Errorf("sqlite: saving aggregate %q at size %d in %s: %w", name, size, s.path, err)
	}
	return nil
}

func (s *Store) saveAggregate(ctx context.Context, name string, size int64, data []byte) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, aggregatesSQL); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO aggregates (name, size, data) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET size = excluded.size, data = excluded.data`, name, size, data); err != nil {
		return err
	}
	return tx.Commit()
}

// LoadAggregate returns the size and data last saved under name, or an
// error wrapping store.ErrNotFound (also when the database has no
// aggregates table yet). It only reads.
func (s *Store) LoadAggregate(ctx context.Context, name string) (uint64, []byte, error) {
	size, data, err := s.loadAggregate(ctx, name)
	if err != nil {
		return 0, nil, fmt.Errorf("sqlite: loading aggregate %q from %s: %w", name, s.path, err)
	}
	return size, data, nil
}

func (s *Store) loadAggregate(ctx context.Context, name string) (uint64, []byte, error) {
	var tables int
	if err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'aggregates'").Scan(&tables); err != nil {
		return 0, nil, err
	}
	if tables == 0 {
		return 0, nil, store.ErrNotFound
	}
	var (
		size int64
		data []byte
	)
	err := s.r.QueryRowContext(ctx, "SELECT size, data FROM aggregates WHERE name = ?", name).Scan(&size, &data)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, store.ErrNotFound
	}
	if err != nil {
		return 0, nil, err
	}
	if size < 0 {
		return 0, nil, fmt.Errorf("corrupt aggregate row: size %d", size)
	}
	if data == nil {
		data = []byte{}
	}
	return uint64(size), data, nil
}
