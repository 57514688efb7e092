package verify

import "crypto/sha256"

// HashSize is the size in bytes of every hash in a custody log (SHA-256).
const HashSize = sha256.Size

// EmptyRoot is the root hash of the empty tree, SHA-256 of the empty string
// (e3b0c442…b855). A checkpoint of size 0 must carry exactly this root.
var EmptyRoot = sha256.Sum256(nil)

// LeafHash returns the RFC 6962 leaf hash of entry, SHA-256(0x00 || entry).
// The entry is the exact bytes stored in the entry bundle, without the
// bundle's length prefix.
func LeafHash(entry []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte{0x00})
	h.Write(entry)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// NodeHash returns the RFC 6962 interior node hash of two child hashes,
// SHA-256(0x01 || left || right).
func NodeHash(left, right [32]byte) [32]byte {
	var buf [1 + 2*HashSize]byte
	buf[0] = 0x01
	copy(buf[1:], left[:])
	copy(buf[1+HashSize:], right[:])
	return sha256.Sum256(buf[:])
}
