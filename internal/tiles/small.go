package tiles

import (
	"fmt"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// AppendLeaf appends leaf to rng, the compact range of a tree of size
// leaves (one hash per 1 bit of size, the largest subtree first, as
// [Range.Hashes] returns), and returns the compact range of the tree of
// size+1 leaves; [FoldRoot] of it is that tree's root. It combines the
// hashes the new leaf completes into their subtree roots, so it reuses
// rng's array and allocates only when rng has no spare capacity (a range
// never holds more than 64 hashes). len(rng) must be the number of 1 bits
// of size; otherwise the result is wrong (or it panics).
func AppendLeaf(rng []Hash, size uint64, leaf Hash) []Hash {
	h := leaf
	for s := size; s&1 == 1; s >>= 1 {
		h = NodeHash(rng[len(rng)-1], h)
		rng = rng[:len(rng)-1]
	}
	return append(rng, h)
}

// MemTree is a whole tree of up to a few thousand leaves held in memory:
// every level of it, so that the inclusion path of any leaf costs no hashing.
// A site's attestation (a tree over the identities of the events it
// signs) is one. It is read-only once made and safe for concurrent use.
type MemTree struct {
	// levels[0] holds the leaf hashes; node k of levels[h] is the root of
	// leaves [k·2^h, min((k+1)·2^h, n)): a node with no right child is its
	// left child carried up unchanged, which gives the RFC 6962 tree.
	levels [][]Hash
}

// NewMemTree returns the tree whose leaf hashes are leaves (not copied:
// the caller must not modify them afterwards). It hashes len(leaves)-1
// nodes.
func NewMemTree(leaves []Hash) *MemTree {
	level := leaves
	t := &MemTree{levels: [][]Hash{level}}
	for len(level) > 1 {
		up := make([]Hash, (len(level)+1)/2)
		for i := range up {
			if 2*i+1 == len(level) {
				up[i] = level[2*i]
				continue
			}
			up[i] = NodeHash(level[2*i], level[2*i+1])
		}
		t.levels = append(t.levels, up)
		level = up
	}
	return t
}

// Size returns the number of leaves.
func (t *MemTree) Size() int { return len(t.levels[0]) }

// Root returns the tree's RFC 6962 root: EmptyRoot for no leaves.
func (t *MemTree) Root() Hash {
	top := t.levels[len(t.levels)-1]
	if len(top) == 0 {
		return EmptyRoot
	}
	return top[0]
}

// Path returns the RFC 6962 inclusion path of leaf m (PATH(m, D[n]) of RFC
// 6962 §2.1.1, the sibling next to the leaf first), which [RootFromPath]
// takes: at most log2(n)+1 hashes. It panics if m is not a leaf index.
func (t *MemTree) Path(m int) []Hash {
	if m < 0 || m >= t.Size() {
		panic(fmt.Sprintf("tiles: inclusion path of leaf %d in a tree of %d leaves", m, t.Size()))
	}
	var path []Hash
	for h := 0; h < len(t.levels)-1; h++ {
		if sib := (m >> h) ^ 1; sib < len(t.levels[h]) {
			path = append(path, t.levels[h][sib])
		}
	}
	return path
}

// InclusionPath returns the inclusion path of leaf m in the tree whose
// leaf hashes are hs: NewMemTree(hs).Path(m). To take the paths of many
// leaves of one tree, make the MemTree once.
func InclusionPath(hs []Hash, m int) []Hash { return NewMemTree(hs).Path(m) }

// RootFromPath returns the root of a tree of n leaves whose leaf m has the
// leaf hash leaf and the inclusion path path (as [MemTree.Path] and RFC
// 6962 §2.1.1 give it). The caller compares it with the root it trusts. It
// fails if m is not below n or the path does not have the length a path of
// leaf m in a tree of n leaves has. It is the inclusion check of
// github.com/transparency-dev/merkle/proof, which the verifier's log
// inclusion proofs use too: custody has one.
func RootFromPath(m, n uint64, leaf Hash, path []Hash) (Hash, error) {
	ps := make([][]byte, len(path))
	for i := range path {
		ps[i] = path[i][:]
	}
	r, err := proof.RootFromInclusionProof(rfc6962.DefaultHasher, m, n, leaf[:], ps)
	if err != nil {
		return Hash{}, fmt.Errorf("tiles: inclusion path of leaf %d in a tree of %d leaves (%d hashes): %w", m, n, len(path), err)
	}
	return Hash(r), nil
}
