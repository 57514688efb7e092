package sampleindex

import (
	"math/bits"

	"github.com/custodylog/custody/internal/tiles"
)

// ListElement is one element of a sample's list: the log index of one of
// the sample's entries and that entry's RFC 6962 leaf hash.
type ListElement struct {
	Index    uint64
	LeafHash Hash
}

// ListState is a sample's list reduced to what the map commits: its size
// (number of elements) and its RFC 6962 root. The zero ListState is the
// empty list (size 0; its Root is not used).
type ListState struct {
	Size uint64
	Root Hash
}

// ListRoot returns the RFC 6962 root of the list leaves of elems
// ([ListLeafHash] of each), in order; for no elements it returns the
// RFC 6962 empty root, SHA-256 of the empty string (a map never holds an
// empty list).
func ListRoot(elems []ListElement) Hash {
	var rng []Hash
	for i, e := range elems {
		rng = rangeAppend(rng, uint64(i), ListLeafHash(e.Index, e.LeafHash))
	}
	return rangeRoot(rng)
}

// rangeAppend appends leaf to the compact range rng of a tree of size
// leaves (one hash per 1 bit of size, largest subtree first) and returns
// the compact range of the tree of size+1 leaves: tiles.AppendLeaf.
func rangeAppend(rng []Hash, size uint64, leaf Hash) []Hash {
	return tiles.AppendLeaf(rng, size, leaf)
}

// rangeRoot returns the RFC 6962 root of a tree from its compact range.
func rangeRoot(rng []Hash) Hash { return tiles.FoldRoot(rng) }

// rangeLen is the number of hashes in the compact range of a tree of
// size leaves.
func rangeLen(size uint64) int { return bits.OnesCount64(size) }
