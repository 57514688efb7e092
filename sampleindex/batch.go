package sampleindex

import (
	"context"
	"errors"
	"fmt"
	"math/bits"

	"github.com/custodylog/custody/internal/tiles"
	"github.com/transparency-dev/merkle/compact"
)

// NodeFunc reads hashes of perfect subtrees of the log tree: for each id,
// the RFC 6962 hash of leaves [id.Index<<id.Level, (id.Index+1)<<id.Level),
// 32 bytes, in the order of ids. Level 0 hashes are entry leaf hashes. The
// log's tile store provides it.
type NodeFunc func(ctx context.Context, ids []compact.NodeID) ([][]byte, error)

// A batch inclusion proof proves that several leaves (at sorted, distinct
// indexes) are in a tree of a given size with one set of hashes, without
// duplicates. It is defined by the verifier's walk of the RFC 6962 MTH
// recursion over [0, size): a range of width 1 holding a requested index
// is that leaf's hash; otherwise the range splits at k, the largest power
// of two smaller than its width; a half holding requested indexes is
// walked (the left half first when both do), and a half holding none takes
// the next proof hash, after the other half has been walked. For a single
// index the proof is exactly the RFC 6962 / RFC 9162 inclusion proof
// (leaf's sibling first). No index: the proof is empty and proves nothing.

// batchRanges calls fn for each range of the batch proof of idx in a tree
// of size leaves, in proof order.
func batchRanges(lo, hi uint64, idx []uint64, fn func(lo, hi uint64)) {
	if hi-lo == 1 {
		return
	}
	k := uint64(1) << (bits.Len64(hi-lo-1) - 1)
	mid := lo + k
	split := 0
	for split < len(idx) && idx[split] < mid {
		split++
	}
	l, r := idx[:split], idx[split:]
	switch {
	case len(l) > 0 && len(r) > 0:
		batchRanges(lo, mid, l, fn)
		batchRanges(mid, hi, r, fn)
	case len(l) > 0:
		batchRanges(lo, mid, l, fn)
		fn(mid, hi)
	default:
		batchRanges(mid, hi, r, fn)
		fn(lo, mid)
	}
}

// checkIndexes reports whether idx is strictly increasing and below size.
func checkIndexes(size uint64, idx []uint64) error {
	for i, x := range idx {
		if x >= size {
			return fmt.Errorf("index %d is not in a tree of size %d", x, size)
		}
		if i > 0 && x <= idx[i-1] {
			return fmt.Errorf("indexes %d and %d are not strictly increasing", idx[i-1], x)
		}
	}
	return nil
}

// rangeNodes returns the perfect subtrees that make up [lo, hi), a range
// of the MTH recursion (lo is a multiple of the largest of them), largest
// first.
func rangeNodes(lo, hi uint64) []compact.NodeID {
	var ids []compact.NodeID
	for w := hi - lo; w > 0; {
		l := uint(bits.Len64(w) - 1)
		ids = append(ids, compact.NewNodeID(l, lo>>l))
		lo += 1 << l
		w -= 1 << l
	}
	return ids
}

// ProveBatchInclusion returns the batch inclusion proof of the leaves at
// indexes (strictly increasing, each below size) in the log tree of size
// leaves, reading the subtree hashes it needs with one call of nodes.
func ProveBatchInclusion(ctx context.Context, size uint64, indexes []uint64, nodes NodeFunc) ([]Hash, error) {
	if err := checkIndexes(size, indexes); err != nil {
		return nil, fmt.Errorf("sampleindex: batch inclusion proof: %v", err)
	}
	if len(indexes) == 0 {
		return nil, nil
	}
	var ids []compact.NodeID
	var counts []int
	batchRanges(0, size, indexes, func(lo, hi uint64) {
		ns := rangeNodes(lo, hi)
		ids = append(ids, ns...)
		counts = append(counts, len(ns))
	})
	if len(ids) == 0 {
		return nil, nil
	}
	hs, err := nodes(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("sampleindex: reading %d log tree hashes for a batch inclusion proof in size %d: %w", len(ids), size, err)
	}
	if len(hs) != len(ids) {
		return nil, fmt.Errorf("sampleindex: log tree returned %d hashes for %d nodes", len(hs), len(ids))
	}
	proof := make([]Hash, 0, len(counts))
	off := 0
	for _, c := range counts {
		part := make([]Hash, c)
		for i := range part {
			if len(hs[off+i]) != HashSize {
				return nil, fmt.Errorf("sampleindex: log tree hash of node %d/%d has %d bytes, want %d", ids[off+i].Level, ids[off+i].Index, len(hs[off+i]), HashSize)
			}
			part[i] = Hash(hs[off+i])
		}
		off += c
		proof = append(proof, tiles.FoldRoot(part))
	}
	return proof, nil
}

// errBatch is wrapped by every error of VerifyBatchInclusion.
var errBatch = errors.New("batch inclusion proof does not verify")

// VerifyBatchInclusion checks that the leaves with leafHashes are at
// indexes (strictly increasing, each below size) in the tree of size
// leaves with the given root, using exactly all of proof. With no index
// the proof must be empty, and nothing is proved.
func VerifyBatchInclusion(size uint64, root Hash, indexes []uint64, leafHashes []Hash, proof []Hash) error {
	if len(indexes) != len(leafHashes) {
		return fmt.Errorf("%w: %d indexes but %d leaf hashes", errBatch, len(indexes), len(leafHashes))
	}
	if err := checkIndexes(size, indexes); err != nil {
		return fmt.Errorf("%w: %v", errBatch, err)
	}
	if len(indexes) == 0 {
		if len(proof) != 0 {
			return fmt.Errorf("%w: %d proof hashes for no leaf, want none", errBatch, len(proof))
		}
		return nil
	}
	v := batchVerifier{idx: indexes, leaves: leafHashes, proof: proof}
	got := v.node(0, size, 0, len(indexes))
	if v.short {
		return fmt.Errorf("%w: proof has %d hashes, fewer than the tree of size %d needs for %d leaves", errBatch, len(proof), size, len(indexes))
	}
	if v.used != len(proof) {
		return fmt.Errorf("%w: proof has %d hashes, %d more than the tree of size %d needs for %d leaves", errBatch, len(proof), len(proof)-v.used, size, len(indexes))
	}
	if got != root {
		return fmt.Errorf("%w: the leaves and proof give root %x, the tree of size %d has root %x", errBatch, got[:], size, root[:])
	}
	return nil
}

type batchVerifier struct {
	idx    []uint64
	leaves []Hash
	proof  []Hash
	used   int
	short  bool
}

func (v *batchVerifier) next() Hash {
	if v.used >= len(v.proof) {
		v.short = true
		return Hash{}
	}
	v.used++
	return v.proof[v.used-1]
}

// node returns the hash of [lo, hi), which holds the requested indexes
// idx[i:j] (at least one).
func (v *batchVerifier) node(lo, hi uint64, i, j int) Hash {
	if hi-lo == 1 {
		return v.leaves[i]
	}
	k := uint64(1) << (bits.Len64(hi-lo-1) - 1)
	mid := lo + k
	s := i
	for s < j && v.idx[s] < mid {
		s++
	}
	var l, r Hash
	switch {
	case s > i && s < j:
		l = v.node(lo, mid, i, s)
		r = v.node(mid, hi, s, j)
	case s > i:
		l = v.node(lo, mid, i, s)
		r = v.next()
	default:
		r = v.node(mid, hi, s, j)
		l = v.next()
	}
	return tiles.NodeHash(l, r)
}
