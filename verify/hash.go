package verify

import (
	"crypto/sha256"

	"github.com/custodylog/custody/internal/tiles"
)

// HashSize is the size in bytes of every hash in a custody log (SHA-256).
const HashSize = sha256.Size

// Hash is a SHA-256 hash as the log uses it: a leaf hash, an interior node
// of the tree, a root. It is an alias of [32]byte, so that the result of
// crypto/sha256.Sum256, a [32]byte from another transparency-log library
// and a Hash are interchangeable without conversions.
type Hash = [HashSize]byte

// EmptyRoot is the root hash of the empty tree, SHA-256 of the empty string
// (e3b0c442…b855). A checkpoint of size 0 must carry exactly this root.
var EmptyRoot = tiles.EmptyRoot

// LeafHash returns the RFC 6962 leaf hash of entry, SHA-256(0x00 || entry).
// The entry is the exact bytes stored in the entry bundle, without the
// bundle's length prefix.
func LeafHash(entry []byte) Hash { return tiles.LeafHash(entry) }

// NodeHash returns the RFC 6962 interior node hash of two child hashes,
// SHA-256(0x01 || left || right).
func NodeHash(left, right Hash) Hash { return tiles.NodeHash(left, right) }
