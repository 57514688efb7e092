package verify

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

func testLeaves(n int) [][]byte {
	leaves := make([][]byte, n)
	for i := range leaves {
		leaves[i] = fmt.Appendf(nil, "leaf %d", i)
	}
	return leaves
}

// TestProofsAgainstReference checks CheckInclusion and CheckConsistency
// against proofs built by the naive RFC 6962 reference for every index and
// every pair of sizes up to 70 leaves.
func TestProofsAgainstReference(t *testing.T) {
	const max = 70
	leaves := testLeaves(max)
	roots := make([][32]byte, max+1)
	for n := 0; n <= max; n++ {
		roots[n] = refMTH(leaves[:n])
	}
	for n := 1; n <= max; n++ {
		for m := 0; m < n; m++ {
			proof := refPath(m, leaves[:n])
			if err := CheckInclusion(uint64(m), uint64(n), LeafHash(leaves[m]), proof, roots[n]); err != nil {
				t.Errorf("CheckInclusion(%d, %d, reference proof) = %v, want nil", m, n, err)
			}
			if len(proof) > 0 {
				if err := CheckInclusion(uint64(m), uint64(n), LeafHash(leaves[m]), flipByte(proof, len(proof)-1), roots[n]); !errors.Is(err, ErrRootMismatch) {
					t.Errorf("CheckInclusion(%d, %d, last hash flipped) = %v, want %v", m, n, err, ErrRootMismatch)
				}
			}
		}
		for m := 1; m <= n; m++ {
			proof := refProof(m, leaves[:n])
			if err := CheckConsistency(uint64(m), uint64(n), roots[m], roots[n], proof); err != nil {
				t.Errorf("CheckConsistency(%d, %d, reference proof) = %v, want nil", m, n, err)
			}
			if len(proof) > 0 {
				if err := CheckConsistency(uint64(m), uint64(n), roots[m], roots[n], flipByte(proof, 0)); !errors.Is(err, ErrRootMismatch) {
					t.Errorf("CheckConsistency(%d, %d, first hash flipped) = %v, want %v", m, n, err, ErrRootMismatch)
				}
			}
		}
	}
}

func TestProofLengths(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	sizes := []uint64{1, 2, 3, 255, 256, 257, 1 << 32, 1<<63 - 1, 1 << 63, 1<<64 - 1}
	for range 200 {
		sizes = append(sizes, r.Uint64N(1<<20)+1, r.Uint64()|1)
	}
	for _, n := range sizes {
		for _, m := range []uint64{0, 1, n / 3, n / 2, n - 1, r.Uint64N(n)} {
			if m >= n {
				continue
			}
			if got, want := inclusionProofLen(m, n), refPathLen(m, n); got != want {
				t.Errorf("inclusionProofLen(%d, %d) = %d, want %d", m, n, got, want)
			}
		}
		for _, m := range []uint64{0, 1, n / 3, n / 2, n - 1, n, r.Uint64N(n) + 1} {
			if m > n {
				continue
			}
			if got, want := consistencyProofLen(m, n), refProofLen(m, n); got != want {
				t.Errorf("consistencyProofLen(%d, %d) = %d, want %d", m, n, got, want)
			}
		}
	}
}

func TestProofEdgeCases(t *testing.T) {
	leaves := testLeaves(3)
	root1, root2, root3 := refMTH(leaves[:1]), refMTH(leaves[:2]), refMTH(leaves[:3])
	other := LeafHash([]byte("other"))
	for _, tc := range []struct {
		name    string
		err     error
		wantErr error
	}{
		{"inclusion: single-leaf tree, empty proof", CheckInclusion(0, 1, LeafHash(leaves[0]), nil, root1), nil},
		{"inclusion: single-leaf tree, wrong root", CheckInclusion(0, 1, LeafHash(leaves[0]), nil, other), ErrRootMismatch},
		{"inclusion: single-leaf tree, non-empty proof", CheckInclusion(0, 1, LeafHash(leaves[0]), [][32]byte{other}, root1), ErrProofLength},
		{"inclusion: empty tree", CheckInclusion(0, 0, LeafHash(leaves[0]), nil, EmptyRoot), ErrIndexOutOfRange},
		{"inclusion: index far beyond size", CheckInclusion(1<<63, 3, LeafHash(leaves[0]), nil, root3), ErrIndexOutOfRange},
		{"consistency: 0 to 0, empty proof", CheckConsistency(0, 0, EmptyRoot, EmptyRoot, nil), nil},
		{"consistency: 0 to 3, empty proof", CheckConsistency(0, 3, EmptyRoot, root3, nil), nil},
		{"consistency: 0 to 3, non-empty proof", CheckConsistency(0, 3, EmptyRoot, root3, [][32]byte{root3}), ErrProofLength},
		{"consistency: 0 to 0, non-empty proof", CheckConsistency(0, 0, EmptyRoot, EmptyRoot, [][32]byte{EmptyRoot}), ErrProofLength},
		{"consistency: 2 to 2, same root", CheckConsistency(2, 2, root2, root2, nil), nil},
		{"consistency: 2 to 2, different roots", CheckConsistency(2, 2, root2, other, nil), ErrRootMismatch},
		{"consistency: 2 to 2, non-empty proof", CheckConsistency(2, 2, root2, root2, [][32]byte{root2}), ErrProofLength},
		{"consistency: 3 to 2", CheckConsistency(3, 2, root3, root2, nil), ErrSizeOrder},
		{"consistency: 1 to 0", CheckConsistency(1, 0, root1, EmptyRoot, nil), ErrSizeOrder},
		{"consistency: 1 to 2, empty proof", CheckConsistency(1, 2, root1, root2, nil), ErrProofLength},
		{"consistency: max sizes, empty proof", CheckConsistency(1<<64-2, 1<<64-1, other, other, nil), ErrProofLength},
	} {
		if !errors.Is(tc.err, tc.wantErr) || (tc.wantErr == nil) != (tc.err == nil) {
			t.Errorf("%s: got %v, want %v", tc.name, tc.err, tc.wantErr)
		}
	}
}

func TestProofErrorMessages(t *testing.T) {
	err := CheckInclusion(5, 3, [32]byte{}, nil, [32]byte{})
	if got, want := err.Error(), "inclusion proof for index 5 in tree of size 3: leaf index is not below tree size"; got != want {
		t.Errorf("CheckInclusion(5, 3) error = %q, want %q", got, want)
	}
	err = CheckConsistency(2, 5, [32]byte{}, [32]byte{}, nil)
	if got, want := err.Error(), "consistency proof from tree size 2 to 5: proof has the wrong number of hashes: got 0, want 2"; got != want {
		t.Errorf("CheckConsistency(2, 5, nil) error = %q, want %q", got, want)
	}
	leaves := testLeaves(4)
	err = CheckInclusion(1, 4, LeafHash(leaves[1]), refPath(1, leaves), [32]byte{})
	var ie *inclusionError
	if !errors.As(err, &ie) || ie.Computed == nil || *ie.Computed != refMTH(leaves) {
		t.Errorf("CheckInclusion(wrong root) = %#v, want an *inclusionError carrying the computed root %x", err, refMTH(leaves))
	}
}
