package log

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/verify"
	"github.com/transparency-dev/merkle/proof"
)

// inclusion returns the RFC 6962 inclusion proof of index in the tree of the
// given size, which must not exceed snap's.
func (l *Log) inclusion(ctx context.Context, snap *snapshot, index, size uint64) ([][]byte, error) {
	if size > snap.cp.Size {
		return nil, fmt.Errorf("tree size %d: %w of size %d", size, ErrBeyondTree, snap.cp.Size)
	}
	if index >= size {
		return nil, fmt.Errorf("index %d: %w of size %d", index, ErrBeyondTree, size)
	}
	n, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, err
	}
	hashes, err := snap.src.nodes(ctx, n.IDs)
	if err != nil {
		return nil, fmt.Errorf("%w: inclusion proof of %d in %d: %w", ErrUnavailable, index, size, err)
	}
	return n.Rehash(hashes, hashChildren)
}

// InclusionProof returns the proof that entry index is in the tree of the
// given size (at most the published size), leaf's sibling first.
func (l *Log) InclusionProof(ctx context.Context, index, size uint64) ([][]byte, error) {
	return l.inclusion(ctx, l.snap.Load(), index, size)
}

// ConsistencyProof returns the RFC 6962 proof that the tree of size from is
// a prefix of the tree of size to (at most the published size).
func (l *Log) ConsistencyProof(ctx context.Context, from, to uint64) ([][]byte, error) {
	snap := l.snap.Load()
	if to > snap.cp.Size {
		return nil, fmt.Errorf("tree size %d: %w of size %d", to, ErrBeyondTree, snap.cp.Size)
	}
	if from > to {
		return nil, fmt.Errorf("consistency from size %d to smaller size %d: %w", from, to, ErrBeyondTree)
	}
	n, err := proof.Consistency(from, to)
	if err != nil {
		return nil, err
	}
	hashes, err := snap.src.nodes(ctx, n.IDs)
	if err != nil {
		return nil, fmt.Errorf("%w: consistency proof %d to %d: %w", ErrUnavailable, from, to, err)
	}
	return n.Rehash(hashes, hashChildren)
}

// LeafIndex returns the index of the entry with leaf hash h, if it is in the
// published tree.
func (l *Log) LeafIndex(ctx context.Context, h store.Hash) (uint64, error) {
	idx, err := l.st.ByLeafHash(ctx, h)
	if err != nil {
		return 0, err
	}
	if idx >= l.snap.Load().cp.Size {
		return 0, store.ErrNotFound
	}
	return idx, nil
}

// Entries returns the published entries in [start, end).
func (l *Log) Entries(ctx context.Context, start, end uint64) ([]store.Entry, error) {
	size := l.snap.Load().cp.Size
	if end > size {
		end = size
	}
	if start >= end {
		return nil, nil
	}
	return l.st.Entries(ctx, start, end)
}

// SampleIndexes returns the indexes of a sample's published entries.
func (l *Log) SampleIndexes(ctx context.Context, sample string) ([]uint64, error) {
	size := l.snap.Load().cp.Size
	idx, err := l.st.Sample(ctx, sample)
	if err != nil {
		return nil, err
	}
	for i, x := range idx {
		if x >= size {
			return idx[:i], nil
		}
	}
	return idx, nil
}

// ReadTile returns the bytes of a c2sp.org/tlog-tiles resource (hash tile or
// entry bundle) of the published tree. It returns an error wrapping
// store.ErrNotFound for a tile the published tree does not contain.
func (l *Log) ReadTile(ctx context.Context, a verify.TileAddr) ([]byte, error) {
	snap := l.snap.Load()
	size := snap.cp.Size
	w := uint64(a.Width)
	if w == 0 {
		w = tileWidth
	}
	if a.Entries {
		// Compare without overflow: the bundle needs start+w <= size.
		if a.Index > size/tileWidth || size-a.Index*tileWidth < w {
			return nil, fmt.Errorf("entry bundle %s: %w", a.Path(), store.ErrNotFound)
		}
		start := a.Index * tileWidth
		es, err := l.st.Entries(ctx, start, start+w)
		if err != nil {
			return nil, err
		}
		if uint64(len(es)) != w {
			// The store lost entries the published tree holds. Serve what is
			// stored, as stored: hiding it would only turn the auditors'
			// proof of the damage into an outage.
			l.logger.Error("entries missing from the store", "bundle", a.Path(), "have", len(es), "want", w)
		}
		var b []byte
		for _, e := range es {
			if b, err = verify.AppendBundleEntry(b, e.Data); err != nil {
				return nil, err
			}
		}
		return b, nil
	}
	// Hash tile (L, N) of width w exists when the tree has N*256+w hashes
	// at tile level L.
	if uint(a.Level)*tileHeight >= 64 {
		return nil, fmt.Errorf("tile %s: %w", a.Path(), store.ErrNotFound)
	}
	have := size >> (tileHeight * uint(a.Level))
	if a.Index > have/tileWidth || have-a.Index*tileWidth < w {
		return nil, fmt.Errorf("tile %s: %w", a.Path(), store.ErrNotFound)
	}
	k := tileKey{level: a.Level, index: a.Index}
	if t, ok := snap.src.edges[k]; ok {
		return t.Data(int(w)), nil
	}
	data, err := l.st.Tile(ctx, a.Level, a.Index)
	if err != nil {
		return nil, err
	}
	if uint64(len(data)) < w*hashSize {
		return nil, fmt.Errorf("%w: stored tile %s has %d bytes, want at least %d", errCorrupt, a.Path(), len(data), w*hashSize)
	}
	return bytes.Clone(data[:w*hashSize]), nil
}

// IsNotFound reports whether err means the thing asked for does not exist.
func IsNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }
