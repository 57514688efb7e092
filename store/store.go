// Package store defines the one persistence interface every custody backend
// implements, and the errors callers may rely on.
//
// A Store keeps three things: the log's entries (with the indexes needed to
// find them by identity, by leaf hash and by sample), the RFC 6962 hash tiles
// of c2sp.org/tlog-tiles (height 8), and the signed checkpoints. The only way
// to change a Store is Append, which commits a whole batch in one durable
// transaction and advances the checkpoint by compare-and-swap, so two writers
// can never fork the log. Entry bundles are not stored: they are assembled
// from entries on read.
package store

import (
	"context"
	"errors"
	"time"
)

// HashSize is the size of every hash the store keeps (SHA-256).
const HashSize = 32

// Hash is a SHA-256 digest.
type Hash = [HashSize]byte

// ErrNotFound is returned (possibly wrapped) when the requested tile, entry,
// checkpoint or hash does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned by Append when the store's latest checkpoint is not
// the one the batch extends (another writer advanced the log), or when an
// entry's index or identity is already taken. Nothing was written.
var ErrConflict = errors.New("conflict: the log was changed by another writer")

// ErrTileMismatch is returned by Append when a tile would be written with data
// that does not extend the stored tile byte for byte. Nothing was written.
var ErrTileMismatch = errors.New("tile does not extend the stored tile")

// Entry is one leaf of the log.
type Entry struct {
	// Index is the entry's position in the log, from 0.
	Index uint64
	// Identity is the hash that de-duplicates submissions (see record.Event.Identity).
	Identity Hash
	// LeafHash is SHA-256(0x00 || Data).
	LeafHash Hash
	// Sample is the sample identifier of the event, for the per-sample index.
	Sample string
	// Data is the exact leaf bytes (the canonical event).
	Data []byte
}

// Tile is a hash tile of c2sp.org/tlog-tiles: up to 256 hashes of one level.
// Data is width*32 bytes; a stored tile only ever grows, and every stored
// version is a prefix of the next.
type Tile struct {
	Level uint8
	Index uint64
	Data  []byte
}

// Checkpoint is a signed tree head as stored: size, root and the signed note.
type Checkpoint struct {
	Size uint64
	Root Hash
	// Note is the complete signed note (checkpoint text, blank line, signatures).
	Note []byte
}

// Batch is what Append commits in one transaction.
type Batch struct {
	// Prev is the checkpoint this batch extends. It must be the store's latest
	// checkpoint, or nil for the first (size 0) checkpoint of an empty store.
	Prev *Checkpoint
	// Entries are the new leaves, with consecutive indexes from Prev.Size.
	Entries []Entry
	// Tiles are the hash tiles the entries changed, each with its full new data.
	Tiles []Tile
	// Checkpoint is the new checkpoint, of size Prev.Size+len(Entries). A
	// batch with no entries may carry a new note for the same size and root
	// (the same tree head with more cosignatures): it replaces the stored
	// note if it extends it byte for byte (see CheckNoteExtends), so a note
	// only ever gains signature lines. A note that does not extend the
	// stored one, or a different root for the same size, is refused with
	// ErrConflict. Prev is the latest checkpoint here too: only the newest
	// tree head's note can change.
	Checkpoint Checkpoint
}

// Store persists a log. Implementations must be safe for concurrent use.
type Store interface {
	// Append writes the batch atomically: all of it or none of it. When Append
	// returns nil the batch is durable (it survives a crash or power loss of
	// the machine that ran the store); only then may its checkpoint be
	// published. It returns an error wrapping ErrConflict if b.Prev is not the
	// latest checkpoint (compare-and-swap on size and root), or an entry's index
	// or identity already exists, and one wrapping ErrTileMismatch if a tile
	// would not extend the stored one.
	Append(ctx context.Context, b Batch) error

	// Latest returns the newest checkpoint, or ErrNotFound if there is none.
	Latest(ctx context.Context) (Checkpoint, error)

	// Checkpoint returns the stored checkpoint of the given size, or
	// ErrNotFound.
	Checkpoint(ctx context.Context, size uint64) (Checkpoint, error)

	// Checkpoints returns up to limit stored checkpoints of size >= from, in
	// increasing size order (empty, not an error, when there are none). It
	// lets a copy or an auditor walk every tree head the log ever stored.
	Checkpoints(ctx context.Context, from uint64, limit int) ([]Checkpoint, error)

	// Tile returns the newest data of hash tile (level, index), or ErrNotFound.
	// The data may be wider than any given checkpoint needs; callers cut it.
	Tile(ctx context.Context, level uint8, index uint64) ([]byte, error)

	// Entries returns the entries with indexes in [start, end) that exist, in
	// index order. It returns fewer than end-start entries only when the log
	// is shorter than end. It holds the whole range in memory: callers page
	// through large ranges.
	Entries(ctx context.Context, start, end uint64) ([]Entry, error)

	// ByLeafHash returns the index of the first entry with that leaf hash, or
	// ErrNotFound.
	ByLeafHash(ctx context.Context, h Hash) (uint64, error)

	// ByIdentity returns, for each given identity that is in the log, the
	// index of its entry. Identities not in the log are absent from the map.
	ByIdentity(ctx context.Context, ids []Hash) (map[Hash]uint64, error)

	// Sample returns the indexes of the sample's entries in increasing order
	// (empty, not an error, for an unknown sample).
	Sample(ctx context.Context, sample string) ([]uint64, error)

	// Close releases the store. It does not lose committed data. Calling it
	// again is harmless.
	Close() error
}

// Lease is the sequencer lease of a store shared by several servers: only its
// holder may append. Expiry is judged by the database's clock.
type Lease struct {
	Holder  string    // an id unique to the holding process
	Addr    string    // where the holder accepts writes (its base URL), for forwarding
	Expires time.Time // when the lease lapses unless renewed
	Epoch   uint64    // incremented every time the lease changes hands
}

// Leaser is implemented by stores that several servers can share.
type Leaser interface {
	// TryLease takes the lease for holder if it is free, expired or already
	// held by holder (then it renews it), for ttl from now. It returns the
	// lease as it stands afterwards and whether holder holds it.
	TryLease(ctx context.Context, holder, addr string, ttl time.Duration) (Lease, bool, error)
	// ReleaseLease gives the lease up if holder holds it (so another server
	// can take over at once); otherwise it does nothing.
	ReleaseLease(ctx context.Context, holder string) error
}

// TileInfo is one stored hash tile as a consistency check sees it: its
// address and the length of its data, as stored. The values are the raw
// stored ones, not checked against the range of a valid tile: in a sound
// store Level is 0 to 255, Index >= 0 and Length a multiple of 32 from 32
// to 8192, but a damaged one may hold anything.
type TileInfo struct {
	Level  int64
	Index  int64
	Length int64 // bytes of data
}

// TileLister is implemented by stores that can enumerate their hash tiles
// (both custody backends do). It is for consistency checks (custody fsck)
// that must see tiles no entry accounts for, which Store's Tile cannot
// enumerate.
type TileLister interface {
	// EachTile calls fn with every stored hash tile, in level then index
	// order, without reading the tiles' data. It never writes, so it may
	// run next to writers appending to the log; tiles added meanwhile may
	// or may not be listed. It stops at the first error of fn and returns
	// it as it is; errors of the store are wrapped.
	EachTile(ctx context.Context, fn func(TileInfo) error) error
}
