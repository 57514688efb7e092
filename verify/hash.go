package verify

import (
	"crypto/sha256"

	"github.com/custodylog/custody/internal/tiles"
)

// HashSize is the size in bytes of every hash in a custody log (SHA-256).
const HashSize = sha256.Size

// EmptyRoot is the root hash of the empty tree, SHA-256 of the empty string
// (e3b0c442…b855). A checkpoint of size 0 must carry exactly this root.
var EmptyRoot = tiles.EmptyRoot

// LeafHash returns the RFC 6962 leaf hash of entry, SHA-256(0x00 || entry).
// The entry is the exact bytes stored in the entry bundle, without the
// bundle's length prefix.
func LeafHash(entry []byte) [32]byte { return tiles.LeafHash(entry) }

// NodeHash returns the RFC 6962 interior node hash of two child hashes,
// SHA-256(0x01 || left || right).
func NodeHash(left, right [32]byte) [32]byte { return tiles.NodeHash(left, right) }
