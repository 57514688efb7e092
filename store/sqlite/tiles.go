package sqlite

import (
	"context"
	"fmt"

	"github.com/custodylog/custody/store"
)

var _ store.TileLister = (*Store)(nil)

// EachTile calls fn with the address and data length of every stored hash
// tile, in level then index order (store.TileLister). It runs one query on
// the read pool (query_only), which sees one snapshot of the database, so
// it never writes and may run next to a server appending to the log; tiles
// added meanwhile may or may not be listed. It stops at the first error of
// fn and returns it as it is; errors of the database are wrapped.
func (s *Store) EachTile(ctx context.Context, fn func(store.TileInfo) error) error {
	rows, err := s.r.QueryContext(ctx, "SELECT level, idx, length(data) FROM tiles ORDER BY level, idx")
	if err != nil {
		return fmt.Errorf("sqlite: listing tiles of %s: %w", s.path, err)
	}
	defer rows.Close()
	for rows.Next() {
		var t store.TileInfo
		if err := rows.Scan(&t.Level, &t.Index, &t.Length); err != nil {
			return fmt.Errorf("sqlite: listing tiles of %s: %w", s.path, err)
		}
		if err := fn(t); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: listing tiles of %s: %w", s.path, err)
	}
	return nil
}
