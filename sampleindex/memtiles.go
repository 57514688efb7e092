package sampleindex

import (
	"context"
	"sync"
)

// MemTiles is a [TileReader] that keeps tiles in memory, for tests,
// benchmarks and tools. WriteTiles has the signature [Map.Flush] takes.
type MemTiles struct {
	mu    sync.Mutex
	tiles map[TileID][]byte
	size  uint64
	bytes int
}

// NewMemTiles returns an empty MemTiles (the tiles of the empty map).
func NewMemTiles() *MemTiles { return &MemTiles{tiles: make(map[TileID][]byte)} }

// ReadTiles returns copies of the stored tiles among ids.
func (s *MemTiles) ReadTiles(ctx context.Context, ids []TileID) (map[TileID][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[TileID][]byte, len(ids))
	for _, id := range ids {
		if d, ok := s.tiles[id]; ok {
			out[id] = append([]byte(nil), d...)
		}
	}
	return out, nil
}

// WriteTiles stores tiles (replacing older versions) and the map size.
func (s *MemTiles) WriteTiles(ctx context.Context, size uint64, tiles []Tile) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range tiles {
		s.bytes += len(t.Data) - len(s.tiles[t.ID])
		s.tiles[t.ID] = append([]byte(nil), t.Data...)
	}
	s.size = size
	return nil
}

// Size returns the map size of the last WriteTiles.
func (s *MemTiles) Size() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size
}

// Usage returns the number of stored tiles and their total bytes.
func (s *MemTiles) Usage() (tiles, bytes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.tiles), s.bytes
}
