package maptiles

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/custodylog/custody/sampleindex"
)

// FlushEvery is how many entries a Builder applies between two writes of
// its dirty tiles to its file: it bounds the memory of the dirty tiles.
const FlushEvery = 1 << 14

// Builder recomputes a log's sample index (a sampleindex.Map) from its
// entries, in log order, with its tiles in a File so that memory stays
// bounded however many samples the log holds.
type Builder struct {
	m       *sampleindex.Map
	file    *File
	tmpDir  string // removed by Close, if set
	changes []sampleindex.Change
	pending int
	// size is the number of log entries added (events or not): the
	// size the file's commits record.
	size uint64
}

// OpenBuilder opens the recomputed index kept in the file name in dir (a
// new temporary directory, removed by Close, when dir is ""). It continues
// from the file if that holds the map of exactly from entries, and starts
// over (an empty file) otherwise; it returns the size it starts at: from,
// or 0.
func OpenBuilder(dir, name string, from uint64) (*Builder, uint64, error) {
	b := &Builder{}
	if dir == "" {
		tmp, err := os.MkdirTemp("", "custody-index-")
		if err != nil {
			return nil, 0, err
		}
		dir, b.tmpDir = tmp, tmp
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, 0, err
	}
	path := filepath.Join(dir, name)
	if from > 0 {
		if f, err := OpenFile(path); err == nil {
			if f.Size() == from {
				b.file = f
			} else {
				f.Close()
			}
		}
	}
	if b.file == nil {
		f, err := CreateFile(path)
		if err != nil {
			b.Close()
			return nil, 0, err
		}
		b.file = f
	}
	b.size = b.file.Size()
	b.m = sampleindex.Open(b.file, b.size, &sampleindex.Options{CacheTiles: 1 << 15, PinnedDepth: 16})
	return b, b.size, nil
}

// Add records the entry at index, an event of sample with leaf hash leaf.
// Indexes must increase.
func (b *Builder) Add(index uint64, sample string, leaf sampleindex.Hash) {
	b.changes = append(b.changes, sampleindex.Change{Key: sampleindex.KeyOf(sample), Index: index, LeafHash: leaf})
	b.size = max(b.size, index+1)
}

// SkipTo records that the log has size entries (the last ones may be
// entries of no sample).
func (b *Builder) SkipTo(size uint64) { b.size = max(b.size, size) }

// Size returns the number of entries added or skipped.
func (b *Builder) Size() uint64 { return b.size }

// Apply applies the entries added since the last Apply to the map, and
// writes the dirty tiles to the file every FlushEvery entries.
func (b *Builder) Apply(ctx context.Context) error {
	if len(b.changes) == 0 {
		return nil
	}
	if _, err := b.m.Update(ctx, b.changes); err != nil {
		return fmt.Errorf("recomputing the sample index: %w", err)
	}
	b.pending += len(b.changes)
	b.changes = b.changes[:0]
	if b.pending >= FlushEvery {
		return b.flush(ctx)
	}
	return nil
}

func (b *Builder) flush(ctx context.Context) error {
	b.pending = 0
	write := func(ctx context.Context, _ uint64, tiles []sampleindex.Tile) error {
		return b.file.WriteTiles(ctx, b.size, tiles)
	}
	if err := b.m.Flush(ctx, write); err != nil {
		return fmt.Errorf("writing the recomputed sample index: %w", err)
	}
	return nil
}

// Root applies what is left and returns the map root over the entries
// so far.
func (b *Builder) Root(ctx context.Context) (sampleindex.Hash, error) {
	if err := b.Apply(ctx); err != nil {
		return sampleindex.Hash{}, err
	}
	return b.m.Root(ctx)
}

// Finish applies what is left, writes every tile and makes the file
// durable at Size, and returns the map root. The Builder may be used
// again afterwards.
func (b *Builder) Finish(ctx context.Context) (sampleindex.Hash, error) {
	if err := b.Apply(ctx); err != nil {
		return sampleindex.Hash{}, err
	}
	if err := b.flush(ctx); err != nil {
		return sampleindex.Hash{}, err
	}
	if err := b.file.Sync(); err != nil {
		return sampleindex.Hash{}, fmt.Errorf("writing the recomputed sample index: %w", err)
	}
	return b.m.Root(ctx)
}

// File returns the builder's file: after Finish, the tiles of the map of
// Size entries.
func (b *Builder) File() *File { return b.file }

// Close closes the file and removes a temporary directory.
func (b *Builder) Close() {
	if b.file != nil {
		b.file.Close()
	}
	if b.tmpDir != "" {
		os.RemoveAll(b.tmpDir)
	}
}
