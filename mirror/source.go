package mirror

import (
	"context"
	"errors"
	"fmt"

	"github.com/custodylog/custody/internal/storetiles"
	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/verify"
)

// StoreSource serves the log in st as a verify.Source, as a custody server
// would: the latest checkpoint, hash tiles cut to the width asked for, and
// entry bundles assembled from entries. Nothing it returns is trusted: the
// verify.Client reading it authenticates everything. A tile or bundle the
// store does not (fully) hold is reported as verify.ErrTileNotFound.
func StoreSource(st store.Store) verify.Source { return storeSource{st} }

type storeSource struct{ st store.Store }

func (s storeSource) ReadCheckpoint(ctx context.Context) ([]byte, error) {
	cp, err := s.st.Latest(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the store's latest checkpoint: %w", err)
	}
	return cp.Note, nil
}

func (s storeSource) ReadTile(ctx context.Context, a verify.TileAddr) ([]byte, error) {
	if err := a.Validate(); err != nil {
		return nil, fmt.Errorf("reading tile: %v", err)
	}
	w := a.Width
	if w == 0 {
		w = verify.TileWidth
	}
	var data []byte
	var err error
	if a.Entries {
		data, err = storetiles.Bundle(ctx, s.st, a.Index, w)
	} else {
		data, err = storetiles.HashTile(ctx, s.st, a.Level, a.Index, w)
	}
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, storetiles.ErrShort) {
		return nil, fmt.Errorf("%w: %w", err, verify.ErrTileNotFound)
	}
	return data, err
}
