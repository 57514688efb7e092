package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/custodylog/custody/store"
	"github.com/jackc/pgx/v5"
)

var _ store.Aggregator = (*Store)(nil)

// aggregatesSQL creates the aggregates table of schema.sql in a schema of
// version 1 (migrate1).
const aggregatesSQL = `CREATE TABLE IF NOT EXISTS aggregates (
    name TEXT   PRIMARY KEY,
    size BIGINT NOT NULL CHECK (size >= 0),
    data BYTEA  NOT NULL
)`

// SaveAggregate durably replaces the aggregate called name (one upsert,
// committed like an Append: see the package documentation on durability).
// It fails for a size of 2^63 or more, which no log reaches.
func (s *Store) SaveAggregate(ctx context.Context, name string, size uint64, data []byte) error {
	if size > math.MaxInt64 {
		return fmt.Errorf("postgres: saving aggregate %q at size %d: size out of range", name, size)
	}
	if data == nil {
		data = []byte{} // nil would be NULL
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO aggregates (name, size, data) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET size = excluded.size, data = excluded.data`, name, int64(size), data)
	if err != nil {
		return fmt.Errorf("postgres: saving aggregate %q at size %d in %s: %w", name, size, s.name, err)
	}
	return nil
}

// LoadAggregate returns the size and data last saved under name, or an
// error wrapping store.ErrNotFound.
func (s *Store) LoadAggregate(ctx context.Context, name string) (uint64, []byte, error) {
	var (
		size int64
		data []byte
	)
	err := s.pool.QueryRow(ctx, "SELECT size, data FROM aggregates WHERE name = $1", name).Scan(&size, &data)
	if errors.Is(err, pgx.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err == nil && size < 0 {
		err = fmt.Errorf("corrupt aggregate row: size %d", size)
	}
	if err != nil {
		return 0, nil, fmt.Errorf("postgres: loading aggregate %q from %s: %w", name, s.name, err)
	}
	if data == nil {
		data = []byte{}
	}
	return uint64(size), data, nil
}
