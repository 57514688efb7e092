package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// TileSize is one row of the tiles table as a consistency check sees it:
// the tile's address and the length of its data, as stored. The values are
// the raw columns, not checked against the range of a valid tile.
type TileSize struct {
	Level  int64 // level column (0 to 255 in a sound database)
	Index  int64 // idx column (>= 0 in a sound database)
	Length int64 // bytes of data (a multiple of 32, 32 to 8192, in a sound database)
}

// TileSizes calls fn with the address and data length of every stored hash
// tile, in level then index order. It stops at the first error of fn and
// returns it as it is; errors of the database are wrapped. It reads in one
// read-only transaction, so it never writes and may run next to servers
// appending to the log; tiles they add meanwhile may or may not be listed.
//
// It is for consistency checks (custody fsck) that must see tiles no entry
// accounts for, which store.Store's Tile cannot enumerate. The data itself
// is not read.
func (s *Store) TileSizes(ctx context.Context, fn func(TileSize) error) error {
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
		t     TileSize
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
