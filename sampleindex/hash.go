package sampleindex

import (
	"crypto/sha256"
	"encoding/binary"

	"github.com/custodylog/custody/internal/tiles"
)

// HashSize is the size of every hash in the index: SHA-256.
const HashSize = sha256.Size

// Hash is a SHA-256 digest: a key, a leaf hash, a list root, a map node or
// the map root.
type Hash = [HashSize]byte

// EmptyMapRoot is the root of the map with no keys (and the hash of every
// empty subtree): 32 zero bytes.
var EmptyMapRoot Hash

// Domain separation bytes of the map's hashes. The log tree uses 0x00
// (leaf) and 0x01 (interior), so no map hash can be taken for a log hash
// or the other way round.
const (
	mapLeafPrefix = 0x10
	mapNodePrefix = 0x11
)

// KeyOf returns the map key of a sample: SHA-256 of the sample identifier's
// bytes, exactly as the entry's "sample" field holds it.
func KeyOf(sample string) Hash {
	return sha256.Sum256([]byte(sample))
}

// EntryLeafHash returns the RFC 6962 leaf hash of a log entry,
// SHA-256(0x00 || entry): the hash the log tree and the sample's list both
// use for it.
func EntryLeafHash(entry []byte) Hash { return tiles.LeafHash(entry) }

// ListLeafHash returns the leaf hash of one element of a sample's list:
// the RFC 6962 leaf hash of the 40 bytes index (big-endian) || leafHash,
// that is SHA-256(0x00 || index || leafHash).
func ListLeafHash(index uint64, leafHash Hash) Hash {
	var buf [8 + HashSize]byte
	binary.BigEndian.PutUint64(buf[:8], index)
	copy(buf[8:], leafHash[:])
	return tiles.LeafHash(buf[:])
}

// MapLeafHash returns the hash of the map leaf for key whose list has n
// elements and root listRoot: SHA-256(0x10 || key || n (8 bytes
// big-endian) || listRoot). The leaf stands at the top of the highest
// subtree that holds no other key.
func MapLeafHash(key Hash, n uint64, listRoot Hash) Hash {
	var buf [1 + HashSize + 8 + HashSize]byte
	buf[0] = mapLeafPrefix
	copy(buf[1:], key[:])
	binary.BigEndian.PutUint64(buf[1+HashSize:], n)
	copy(buf[1+HashSize+8:], listRoot[:])
	return sha256.Sum256(buf[:])
}

// MapNodeHash returns the hash of a map subtree holding two keys or more
// from its two halves: SHA-256(0x11 || left || right), where an empty half
// is [EmptyMapRoot].
func MapNodeHash(left, right Hash) Hash {
	var buf [1 + 2*HashSize]byte
	buf[0] = mapNodePrefix
	copy(buf[1:], left[:])
	copy(buf[1+HashSize:], right[:])
	return sha256.Sum256(buf[:])
}

// bit returns bit i (0 = most significant bit of k[0]) of k.
func bit(k *Hash, i int) int {
	return int(k[i>>3]>>(7-uint(i&7))) & 1
}

// commonPrefix returns the number of leading bits a and b share (256 when
// they are equal).
func commonPrefix(a, b *Hash) int {
	for i := 0; i < HashSize; i++ {
		if x := a[i] ^ b[i]; x != 0 {
			n := 0
			for x&0x80 == 0 {
				x <<= 1
				n++
			}
			return i*8 + n
		}
	}
	return 256
}
