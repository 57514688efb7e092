package store

import (
	"bytes"
	"fmt"
	"math"
)

// The checks below are those every backend makes the same way; the messages
// they return are part of the backends' errors, which tests compare.

// PrevSize returns the size of the checkpoint b extends: b.Prev.Size, or 0
// when b starts the log (b.Prev is nil).
func (b Batch) PrevSize() uint64 {
	if b.Prev == nil {
		return 0
	}
	return b.Prev.Size
}

// CheckBatch checks what every backend must check before writing a batch,
// all of it without the database: that the log stays below 2^63 entries
// (the largest index SQL's 64-bit integers hold), that b.Checkpoint.Size is
// b.PrevSize() plus the number of entries, that a batch without entries
// keeps the root of b.Prev, that the new checkpoint has a note, that the
// entries' indexes run consecutively from b.PrevSize() with no identity
// twice, and that every tile holds 1 to 256 hashes and has an index below
// 2^63. It returns nil if all hold, and otherwise an error describing the
// first that does not, wrapping ErrConflict where Store.Append says so (a
// checkpoint size or root, an index or an identity that does not fit the
// log). It does not compare b.Prev with the stored checkpoint.
func CheckBatch(b Batch) error {
	size := b.PrevSize()
	n := uint64(len(b.Entries))
	if size > math.MaxInt64-n {
		return fmt.Errorf("%d entries after index %d: the log cannot grow beyond 2^63-1 entries", n, size)
	}
	if b.Checkpoint.Size != size+n {
		return fmt.Errorf("new checkpoint has size %d, want %d (%d + %d entries): %w", b.Checkpoint.Size, size+n, size, n, ErrConflict)
	}
	if n == 0 && b.Prev != nil && b.Checkpoint.Root != b.Prev.Root {
		return fmt.Errorf("new checkpoint has the size of the previous one (%d) but root %x, want %x: %w", size, b.Checkpoint.Root, b.Prev.Root, ErrConflict)
	}
	if len(b.Checkpoint.Note) == 0 {
		return fmt.Errorf("new checkpoint of size %d has an empty note", b.Checkpoint.Size)
	}
	seen := make(map[Hash]int, len(b.Entries))
	for i := range b.Entries {
		e := &b.Entries[i]
		if e.Index != size+uint64(i) {
			return fmt.Errorf("entry %d of the batch has index %d, want %d: %w", i, e.Index, size+uint64(i), ErrConflict)
		}
		if j, ok := seen[e.Identity]; ok {
			return fmt.Errorf("entries %d and %d have the same identity %x: %w", size+uint64(j), e.Index, e.Identity, ErrConflict)
		}
		seen[e.Identity] = i
	}
	for _, t := range b.Tiles {
		if len(t.Data) == 0 || len(t.Data) > 256*HashSize || len(t.Data)%HashSize != 0 {
			return fmt.Errorf("tile %d/%d has %d bytes, want 1 to 256 hashes of %d bytes", t.Level, t.Index, len(t.Data), HashSize)
		}
		if t.Index > math.MaxInt64 {
			return fmt.Errorf("tile %d/%d: index out of range", t.Level, t.Index)
		}
	}
	return nil
}

// CheckTileExtends returns nil if t.Data extends old, the stored data of
// the same tile (old is a prefix of t.Data; nil or empty when the tile is
// not stored), and otherwise an error wrapping ErrTileMismatch that says
// whether t.Data is shorter or at which hash it differs.
func CheckTileExtends(t Tile, old []byte) error {
	if len(t.Data) < len(old) {
		return fmt.Errorf("tile %d/%d: new data has %d hashes, the stored tile %d: %w", t.Level, t.Index, len(t.Data)/HashSize, len(old)/HashSize, ErrTileMismatch)
	}
	if !bytes.Equal(t.Data[:len(old)], old) {
		i := 0
		for t.Data[i] == old[i] {
			i++
		}
		return fmt.Errorf("tile %d/%d: new data differs from the stored tile at hash %d: %w", t.Level, t.Index, i/HashSize, ErrTileMismatch)
	}
	return nil
}

// CheckNoteExtends returns nil if note, the new note for the stored
// checkpoint of the given size, extends old, its stored note, byte for byte
// (old is a prefix of note: the new note only adds signature lines, such as
// witnesses' cosignatures, after those already stored), and otherwise an
// error wrapping ErrConflict. So replacing a checkpoint's note can add
// signatures but never drop or change one: storing a cosigned note never
// rolls back what readers may already have seen.
func CheckNoteExtends(size uint64, old, note []byte) error {
	if !bytes.HasPrefix(note, old) {
		return fmt.Errorf("the new note of checkpoint %d does not extend the stored note byte for byte (a note may only gain signature lines): %w", size, ErrConflict)
	}
	return nil
}

// Identities returns the identities of entries, in their order.
func Identities(entries []Entry) []Hash {
	ids := make([]Hash, len(entries))
	for i := range entries {
		ids[i] = entries[i].Identity
	}
	return ids
}

// CheckIdentitiesFree returns nil if no identity of entries is in taken
// (which maps identities already in the log to the indexes of their
// entries, as Store.ByIdentity returns them), and otherwise an error
// wrapping ErrConflict that names the first such entry of entries and the
// entry that has its identity.
func CheckIdentitiesFree(entries []Entry, taken map[Hash]uint64) error {
	for i := range entries {
		if idx, ok := taken[entries[i].Identity]; ok {
			return fmt.Errorf("entry %d has identity %x, already the identity of entry %d: %w", entries[i].Index, entries[i].Identity, idx, ErrConflict)
		}
	}
	return nil
}

// CheckpointFromRow returns the checkpoint stored as the row (size, root,
// note), or an error if no Store could have written that row (a negative
// size, or a root that is not HashSize bytes). The note is never nil: an
// empty one is returned as an empty slice. The checkpoint keeps note; it
// copies root.
func CheckpointFromRow(size int64, root, note []byte) (Checkpoint, error) {
	if size < 0 || len(root) != HashSize {
		return Checkpoint{}, fmt.Errorf("corrupt checkpoint row: size %d, root of %d bytes", size, len(root))
	}
	if note == nil {
		note = []byte{}
	}
	return Checkpoint{Size: uint64(size), Root: Hash(root), Note: note}, nil
}

// EntryFromRow returns the entry stored as the row (index, identity, leaf
// hash, sample, data), or an error if no Store could have written that row
// (a negative index, or an identity or leaf hash that is not HashSize
// bytes). Data is never nil: empty data is returned as an empty slice. The
// entry keeps data; it copies identity and leafHash, which may therefore be
// memory the driver reuses.
func EntryFromRow(index int64, identity, leafHash []byte, sample string, data []byte) (Entry, error) {
	if index < 0 || len(identity) != HashSize || len(leafHash) != HashSize {
		return Entry{}, fmt.Errorf("corrupt entry row at index %d", index)
	}
	if data == nil {
		data = []byte{}
	}
	return Entry{Index: uint64(index), Identity: Hash(identity), LeafHash: Hash(leafHash), Sample: sample, Data: data}, nil
}
