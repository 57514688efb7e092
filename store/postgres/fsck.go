package postgres

import (
	"context"
	"fmt"

	"github.com/custodylog/custody/store"
	"github.com/jackc/pgx/v5"
)

var _ store.TileLister = (*Store)(nil)

// EachTile calls fn with the address and data length of every stored hash
// tile, in level then index order (store.TileLister). It reads in one
// read-only transaction, so it never writes and may run next to servers
// appending to the log; tiles they add meanwhile may or may not be listed.
// It stops at the first error of fn and returns it as it is; errors of the
// database are wrapped.
func (s *Store) EachTile(ctx context.Context, fn func(store.TileInfo) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("postgres: listing tiles of %s: beginning a read-only transaction: %w", s.name, err)
	}
	defer rollback(ctx, tx) // read-only: nothing to commit
	rows, err := tx.Query(ctx, "SELECT level, idx, length(data) FROM tiles ORDER BY level, idx")
	if err != nil {
		return fmt.Errorf("postgres: listing tiles of %s: %w", s.name, err)
	}
	var (
		t     store.TileInfo
		fnErr error
	)
	_, err = pgx.ForEachRow(rows, []any{&t.Level, &t.Index, &t.Length}, func() error {
		fnErr = fn(t)
		return fnErr
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("postgres: listing tiles of %s: %w", s.name, err)
	}
	return nil
}
