package store

import (
	"context"
	"math"

	"github.com/custodylog/custody/sampleindex"
)

// SampleMap is implemented by stores that keep the node tiles of the
// verifiable sample index (package sampleindex) next to the log; both
// custody backends do. The tiles are derived data: the map of the first
// SampleMapSize entries of the log, written now and then by the log's
// sequencer (off its commit path, see sampleindex.Map.Flush), never part of
// an Append. Whoever opens a map on them replays the entries after
// SampleMapSize, and checks the result against the map root the signed
// checkpoints commit.
//
// Every stored tile remembers the map size it was written at. A tile is
// only ever replaced by a version of a larger map size (WriteSampleMap is a
// compare-and-swap on the map size), except by ResetSampleMap.
type SampleMap interface {
	// ReadSampleTiles returns the stored data of each tile of ids that
	// is stored; tiles not stored are absent from the result (not an
	// error). It fails with an error wrapping ErrConflict if one of them
	// was written at a map size above maxSize: the caller's map, of size
	// maxSize, can no longer read the version it needs (another writer
	// flushed since); it should reopen at SampleMapSize and replay. A
	// maxSize of math.MaxUint64 reads the newest versions unchecked.
	ReadSampleTiles(ctx context.Context, ids []sampleindex.TileID, maxSize uint64) (map[sampleindex.TileID][]byte, error)

	// SampleMapSize returns the number of log entries the stored tiles
	// cover: the size of the last successful WriteSampleMap (0 for a log
	// whose map was never written, or was reset).
	SampleMapSize(ctx context.Context) (uint64, error)

	// WriteSampleMap stores tiles (each replacing the stored tile of the
	// same ID, if any) and sets the map size to size, atomically and
	// durably: all or nothing. It is a compare-and-swap: it fails with an
	// error wrapping ErrConflict, writing nothing, unless the stored map
	// size is prev, and unless size is at least prev and at most the size
	// of the store's latest checkpoint (a map never covers entries the
	// log has not committed). It has the shape of the write function of
	// sampleindex.Map.Flush once prev is bound.
	WriteSampleMap(ctx context.Context, prev, size uint64, tiles []sampleindex.Tile) error

	// ResetSampleMap deletes every stored tile and sets the map size to
	// 0, atomically, so the map can be rebuilt from the log (after the
	// stored one was found not to match the log's checkpoints).
	ResetSampleMap(ctx context.Context) error

	// EachSampleTile calls fn with every stored tile, in storage key
	// order, as stored (the key is not parsed, so that a consistency
	// check sees damaged rows too). It never writes, so it may run next
	// to a server flushing tiles; it reads one snapshot when the backend
	// can (SQLite, PostgreSQL), so the tiles it lists are the map of one
	// size. It stops at the first error of fn and returns it as it is;
	// errors of the store are wrapped. fn must not keep Key or Data after
	// it returns.
	EachSampleTile(ctx context.Context, fn func(SampleTile) error) error
}

// SampleTile is one stored tile of the sample index, as EachSampleTile
// lists it.
type SampleTile struct {
	// Key is the storage key as stored: sampleindex.TileID.Key of the
	// tile's ID in a sound store (sampleindex.ParseTileKey parses it).
	Key []byte
	// Size is the map size the tile was written at.
	Size uint64
	// Data is the tile's encoding (sampleindex.CheckTile checks it).
	Data []byte
}

// SampleTiles returns a sampleindex.TileReader of the tiles of m as of map
// size size (sampleindex.Open(SampleTiles(m, size), size, nil) opens the
// stored map): its reads fail, wrapping ErrConflict, when a tile they need
// was rewritten at a larger size since. With size math.MaxUint64 it reads
// the newest tiles unchecked.
func SampleTiles(m SampleMap, size uint64) sampleindex.TileReader {
	return sampleTiles{m: m, size: size}
}

type sampleTiles struct {
	m    SampleMap
	size uint64
}

func (s sampleTiles) ReadTiles(ctx context.Context, ids []sampleindex.TileID) (map[sampleindex.TileID][]byte, error) {
	return s.m.ReadSampleTiles(ctx, ids, s.size)
}

// AnySampleMapSize is the maxSize of ReadSampleTiles that reads the newest
// tiles without checking the size they were written at.
const AnySampleMapSize = math.MaxUint64
