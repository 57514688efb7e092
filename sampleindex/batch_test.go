package sampleindex

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// TestBatchInclusion checks batch proofs against x/mod's tlog: for one
// index the proof is tlog's record proof hash for hash; for random index
// sets it verifies, and every edit of it (a hash changed, dropped, added,
// an index or leaf changed, another size) is rejected.
func TestBatchInclusion(t *testing.T) {
	ctx := context.Background()
	l := newTestLog()
	for i := range 700 {
		l.append("s" + string(rune('a'+i%26)))
	}
	rng := rand.New(rand.NewPCG(3, 4))
	sizes := []uint64{1, 2, 3, 4, 5, 7, 8, 9, 255, 256, 257, 511, 512, 513, 700}
	for range 20 {
		sizes = append(sizes, 1+rng.Uint64N(700))
	}
	for _, size := range sizes {
		root := l.root(t, size)
		for i := uint64(0); i < size; i += 1 + size/40 {
			p, err := ProveBatchInclusion(ctx, size, []uint64{i}, l.nodes)
			if err != nil {
				t.Fatal(err)
			}
			want, err := tlog.ProveRecord(int64(size), int64(i), l)
			if err != nil {
				t.Fatal(err)
			}
			if len(p) != len(want) {
				t.Fatalf("size %d index %d: %d hashes, tlog %d", size, i, len(p), len(want))
			}
			for j := range p {
				if p[j] != Hash(want[j]) {
					t.Fatalf("size %d index %d: hash %d differs from tlog's", size, i, j)
				}
			}
			if err := VerifyBatchInclusion(size, root, []uint64{i}, []Hash{Hash(l.stored[tlog.StoredHashIndex(0, int64(i))])}, p); err != nil {
				t.Fatalf("size %d index %d: %v", size, i, err)
			}
		}
		for range 10 {
			k := 1 + rng.IntN(int(min(size, 40)))
			set := map[uint64]bool{}
			for len(set) < k {
				set[rng.Uint64N(size)] = true
			}
			var idx []uint64
			for x := range set {
				idx = append(idx, x)
			}
			slices.Sort(idx)
			leaves := make([]Hash, len(idx))
			for i, x := range idx {
				leaves[i] = EntryLeafHash(l.entries[x])
			}
			p, err := ProveBatchInclusion(ctx, size, idx, l.nodes)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyBatchInclusion(size, root, idx, leaves, p); err != nil {
				t.Fatalf("size %d indexes %v: %v", size, idx, err)
			}
			// No duplicates: never more hashes than the separate proofs.
			sum := 0
			for _, x := range idx {
				q, _ := ProveBatchInclusion(ctx, size, []uint64{x}, l.nodes)
				sum += len(q)
			}
			if len(p) > sum {
				t.Fatalf("size %d: batch proof of %d hashes, %d for separate proofs", size, len(p), sum)
			}
			bad := func(what string, size uint64, root Hash, idx []uint64, leaves, p []Hash) {
				t.Helper()
				if err := VerifyBatchInclusion(size, root, idx, leaves, p); !errors.Is(err, errBatch) {
					t.Fatalf("size %d indexes %v, %s: got %v, want rejection", size, idx, what, err)
				}
			}
			if len(p) > 0 {
				q := slices.Clone(p)
				q[rng.IntN(len(q))][rng.IntN(32)] ^= 1
				bad("a hash changed", size, root, idx, leaves, q)
				bad("a hash dropped", size, root, idx, leaves, p[1:])
			}
			bad("a hash added", size, root, idx, leaves, append(slices.Clone(p), Hash{}))
			q := slices.Clone(leaves)
			q[0][0] ^= 1
			bad("a leaf changed", size, root, idx, q, p)
			if size < 700 {
				bad("another size", size+1, l.root(t, size+1), idx, leaves, p)
			}
			if idx[0] > 0 {
				j := slices.Clone(idx)
				j[0]--
				bad("an index moved", size, root, j, leaves, p)
			}
			if len(idx) > 1 {
				bad("a leaf left out", size, root, idx[1:], leaves[1:], p)
				j := slices.Clone(idx)
				j[0], j[1] = j[1], j[0]
				bad("indexes out of order", size, root, j, leaves, p)
			}
		}
	}
	if err := VerifyBatchInclusion(5, l.root(t, 5), nil, nil, nil); err != nil {
		t.Fatalf("no index, no proof: %v", err)
	}
	if err := VerifyBatchInclusion(5, l.root(t, 5), nil, nil, []Hash{{}}); err == nil {
		t.Fatal("no index with a proof hash accepted")
	}
}
