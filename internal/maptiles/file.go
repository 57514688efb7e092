// Package maptiles keeps the tiles of a sample index (package sampleindex)
// in a file, so that a tool rebuilding the index of a big log from its
// entries (custody audit, custody fsck) holds in memory only a small index
// of the file, a bounded cache and the tiles changed since the last flush,
// however many samples the log has. See docs/sample-index.md,
// "Recomputed by auditors".
package maptiles

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/custodylog/custody/sampleindex"
)

// fileMagic starts a tile file (format version 1).
const fileMagic = "custody-audit-sample-index/v1\n"

// Record kinds of an index file.
const (
	recTile   = 'T' // 'T', key length (1 byte), TileID.Key(), data length (uint32 BE), data
	recCommit = 'C' // 'C', map size (uint64 BE): the tiles before it are the map of that size
)

// File is a disk-backed sampleindex.TileReader: an
// append-only file of tile versions and commit records, with an in-memory
// index from tile to the offset and length of its newest committed
// version. It keeps memory small for big logs: about 40 bytes per tile in
// the index (tiles up to depth 56 are keyed by one uint64), whatever the
// size of the tiles, which stay on disk (and in the page cache). Old
// versions are garbage; the file is rewritten with only the live tiles
// (compacted) when garbage exceeds the live bytes.
//
// On open, records after the last commit record (a write interrupted by a
// crash) are cut off; the file is then the map at the last committed size.
type File struct {
	mu   sync.Mutex
	path string
	f    *os.File
	end  int64  // file length: the next record goes here
	size uint64 // map size of the last commit
	live int64  // bytes of the live tiles' data
	idx  map[uint64]uint64
	deep map[sampleindex.TileID]uint64 // tiles deeper than 56 bits
	buf  *bufio.Writer
}

// tileLoc packs a data offset (40 bits) and length (24 bits).
func tileLoc(off int64, n int) uint64 { return uint64(off)<<24 | uint64(n) }

func unpackLoc(l uint64) (int64, int) { return int64(l >> 24), int(l & (1<<24 - 1)) }

// shortKey returns the uint64 key of a tile up to depth 56: the first 7
// bytes of its prefix (the bits after depth are zero) and its depth.
func shortKey(id sampleindex.TileID) (uint64, bool) {
	if id.Depth > 56 {
		return 0, false
	}
	return binary.BigEndian.Uint64(id.Prefix[:8])&^0xff | uint64(id.Depth), true
}

func (f *File) get(id sampleindex.TileID) (uint64, bool) {
	if k, ok := shortKey(id); ok {
		l, ok := f.idx[k]
		return l, ok
	}
	l, ok := f.deep[id]
	return l, ok
}

func (f *File) put(id sampleindex.TileID, loc uint64) {
	if old, ok := f.get(id); ok {
		_, n := unpackLoc(old)
		f.live -= int64(n)
	}
	_, n := unpackLoc(loc)
	f.live += int64(n)
	if k, ok := shortKey(id); ok {
		f.idx[k] = loc
		return
	}
	f.deep[id] = loc
}

// OpenFile opens (or creates) the index file at path. A file that
// does not parse is an error; the caller then starts over with
// CreateFile.
func OpenFile(path string) (*File, error) {
	fh, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	f := &File{path: path, f: fh, idx: map[uint64]uint64{}, deep: map[sampleindex.TileID]uint64{}}
	if err := f.scan(); err != nil {
		fh.Close()
		return nil, fmt.Errorf("sample index file %s: %w", path, err)
	}
	return f, nil
}

// CreateFile creates an empty index file at path (replacing any),
// holding the empty map (size 0).
func CreateFile(path string) (*File, error) {
	fh, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := fh.WriteAt([]byte(fileMagic), 0); err != nil {
		fh.Close()
		return nil, err
	}
	return &File{path: path, f: fh, end: int64(len(fileMagic)), idx: map[uint64]uint64{}, deep: map[sampleindex.TileID]uint64{}}, nil
}

// scan reads the whole file, indexing the tiles of every committed write,
// and cuts off what follows the last commit.
func (f *File) scan() error {
	r := bufio.NewReaderSize(io.NewSectionReader(f.f, 0, 1<<62), 1<<20)
	magic := make([]byte, len(fileMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != fileMagic {
		return errors.New("not an index file (bad header)")
	}
	off := int64(len(fileMagic))
	type pend struct {
		id  sampleindex.TileID
		loc uint64
	}
	var pending []pend
	committed := off
	var hdr [8]byte
	for {
		kind, err := r.ReadByte()
		if err != nil {
			break // end of file (or a truncated record)
		}
		if kind == recCommit {
			if _, err := io.ReadFull(r, hdr[:8]); err != nil {
				break
			}
			off += 9
			for _, p := range pending {
				f.put(p.id, p.loc)
			}
			pending = pending[:0]
			f.size = binary.BigEndian.Uint64(hdr[:8])
			committed = off
			continue
		}
		if kind != recTile {
			return fmt.Errorf("unknown record kind 0x%02x at byte %d", kind, off)
		}
		kl, err := r.ReadByte()
		if err != nil {
			break
		}
		key := make([]byte, kl)
		if _, err := io.ReadFull(r, key); err != nil {
			break
		}
		if _, err := io.ReadFull(r, hdr[:4]); err != nil {
			break
		}
		n := int(binary.BigEndian.Uint32(hdr[:4]))
		if _, err := r.Discard(n); err != nil {
			break
		}
		id, err := sampleindex.ParseTileKey(key)
		if err != nil {
			return fmt.Errorf("record at byte %d: %w", off, err)
		}
		dataOff := off + 2 + int64(kl) + 4
		pending = append(pending, pend{id, tileLoc(dataOff, n)})
		off = dataOff + int64(n)
	}
	if err := f.f.Truncate(committed); err != nil {
		return err
	}
	f.end = committed
	return nil
}

// ReadTiles implements sampleindex.TileReader: the newest committed
// version of each tile of ids that the file holds.
func (f *File) ReadTiles(ctx context.Context, ids []sampleindex.TileID) (map[sampleindex.TileID][]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[sampleindex.TileID][]byte, len(ids))
	for _, id := range ids {
		l, ok := f.get(id)
		if !ok {
			continue
		}
		off, n := unpackLoc(l)
		b := make([]byte, n)
		if _, err := f.f.ReadAt(b, off); err != nil {
			return nil, fmt.Errorf("reading tile %s from %s: %w", id, f.path, err)
		}
		out[id] = b
	}
	return out, nil
}

// WriteTiles appends tiles and a commit record for size (Map.Flush's
// write), then compacts the file if more than half of it is garbage.
func (f *File) WriteTiles(ctx context.Context, size uint64, tiles []sampleindex.Tile) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.buf == nil {
		f.buf = bufio.NewWriterSize(nil, 1<<20)
	}
	f.buf.Reset(io.NewOffsetWriter(f.f, f.end))
	off := f.end
	locs := make([]uint64, len(tiles))
	var hdr [4]byte
	for i, t := range tiles {
		key := t.ID.Key()
		f.buf.WriteByte(recTile)
		f.buf.WriteByte(byte(len(key)))
		f.buf.Write(key)
		binary.BigEndian.PutUint32(hdr[:], uint32(len(t.Data)))
		f.buf.Write(hdr[:])
		f.buf.Write(t.Data)
		dataOff := off + 2 + int64(len(key)) + 4
		locs[i] = tileLoc(dataOff, len(t.Data))
		off = dataOff + int64(len(t.Data))
	}
	f.buf.WriteByte(recCommit)
	f.buf.Write(binary.BigEndian.AppendUint64(nil, size))
	off += 9
	if err := f.buf.Flush(); err != nil {
		return fmt.Errorf("writing %s: %w", f.path, err)
	}
	for i, t := range tiles {
		f.put(t.ID, locs[i])
	}
	f.end, f.size = off, size
	if f.end > 2*f.live+64<<20 {
		return f.Compact()
	}
	return nil
}

// Compact rewrites the file with only the live tiles, through a new file
// renamed over the old one.
func (f *File) Compact() error {
	tmp, err := os.CreateTemp(filepath.Dir(f.path), ".sample-index-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	nf := &File{path: f.path, f: tmp, end: int64(len(fileMagic)), idx: make(map[uint64]uint64, len(f.idx)), deep: map[sampleindex.TileID]uint64{}}
	if _, err := tmp.WriteAt([]byte(fileMagic), 0); err != nil {
		tmp.Close()
		return err
	}
	var batch []sampleindex.Tile
	var bytes int
	emit := func(force bool) error {
		if len(batch) == 0 || (!force && bytes < 8<<20) {
			return nil
		}
		// Only the last write's commit matters; intermediate commits
		// carry the same size.
		err := nf.writeLocked(batch, f.size)
		batch, bytes = batch[:0], 0
		return err
	}
	add := func(id sampleindex.TileID, l uint64) error {
		off, n := unpackLoc(l)
		b := make([]byte, n)
		if _, err := f.f.ReadAt(b, off); err != nil {
			return err
		}
		batch = append(batch, sampleindex.Tile{ID: id, Data: b})
		bytes += n
		return emit(false)
	}
	for k, l := range f.idx {
		var id sampleindex.TileID
		id.Depth = uint8(k & 0xff)
		binary.BigEndian.PutUint64(id.Prefix[:8], k&^0xff)
		if err := add(id, l); err != nil {
			tmp.Close()
			return err
		}
	}
	for id, l := range f.deep {
		if err := add(id, l); err != nil {
			tmp.Close()
			return err
		}
	}
	if err := emit(true); err != nil {
		tmp.Close()
		return err
	}
	if nf.end == int64(len(fileMagic)) { // the empty map
		if err := nf.writeLocked(nil, f.size); err != nil {
			tmp.Close()
			return err
		}
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := os.Rename(tmp.Name(), f.path); err != nil {
		tmp.Close()
		return err
	}
	f.f.Close()
	f.f, f.end, f.live, f.idx, f.deep = tmp, nf.end, nf.live, nf.idx, nf.deep
	return nil
}

// writeLocked is WriteTiles for a file nobody else uses yet (no locking,
// no compaction).
func (f *File) writeLocked(tiles []sampleindex.Tile, size uint64) error {
	var b []byte
	off := f.end
	locs := make([]uint64, len(tiles))
	for i, t := range tiles {
		key := t.ID.Key()
		b = append(b, recTile, byte(len(key)))
		b = append(b, key...)
		b = binary.BigEndian.AppendUint32(b, uint32(len(t.Data)))
		dataOff := off + int64(len(b))
		b = append(b, t.Data...)
		locs[i] = tileLoc(dataOff, len(t.Data))
	}
	b = append(b, recCommit)
	b = binary.BigEndian.AppendUint64(b, size)
	if _, err := f.f.WriteAt(b, off); err != nil {
		return err
	}
	for i, t := range tiles {
		f.put(t.ID, locs[i])
	}
	f.end += int64(len(b))
	f.size = size
	return nil
}

// Size returns the map size of the last commit.
func (f *File) Size() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.size
}

// Sync makes the file durable.
func (f *File) Sync() error { return f.f.Sync() }

// Close closes the file.
func (f *File) Close() error { return f.f.Close() }

// Len returns the number of tiles the file holds.
func (f *File) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.idx) + len(f.deep)
}
