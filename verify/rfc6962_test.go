package verify

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Vectors transcribed from github.com/transparency-dev/merkle@v0.0.2; see
// ../testdata/rfc6962/README.md.

type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	d, err := hex.DecodeString(s)
	*h = d
	return err
}

type hexHash [32]byte

func (h *hexHash) UnmarshalJSON(b []byte) error {
	var d hexBytes
	if err := d.UnmarshalJSON(b); err != nil {
		return err
	}
	if len(d) != 32 {
		return fmt.Errorf("hash %s is %d bytes, want 32", b, len(d))
	}
	copy(h[:], d)
	return nil
}

type rootsFile struct {
	Leaves []hexBytes `json:"leaves"`
	Nodes  []struct {
		Desc  string  `json:"desc"`
		Level uint    `json:"level"`
		Index uint64  `json:"index"`
		Hash  hexHash `json:"hash"`
	} `json:"nodes"`
	Roots []struct {
		Desc string  `json:"desc"`
		Size uint64  `json:"size"`
		Root hexHash `json:"root"`
	} `json:"roots"`
}

type inclusionFile struct {
	Cases []struct {
		Desc      string    `json:"desc"`
		Index     uint64    `json:"index"`
		Size      uint64    `json:"size"`
		LeafInput hexBytes  `json:"leaf_input"`
		Root      hexHash   `json:"root"`
		Proof     []hexHash `json:"proof"`
	} `json:"cases"`
}

type consistencyFile struct {
	Cases []struct {
		Desc    string    `json:"desc"`
		OldSize uint64    `json:"old_size"`
		NewSize uint64    `json:"new_size"`
		OldRoot hexHash   `json:"old_root"`
		NewRoot hexHash   `json:"new_root"`
		Proof   []hexHash `json:"proof"`
	} `json:"cases"`
}

func readVectors(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "rfc6962", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("parsing %s: %v", name, err)
	}
}

func hashes(hs []hexHash) [][32]byte {
	out := make([][32]byte, len(hs))
	for i, h := range hs {
		out[i] = h
	}
	return out
}

// refMTH is a deliberately naive RFC 6962 §2.1 Merkle Tree Hash.
func refMTH(leaves [][]byte) [32]byte {
	n := len(leaves)
	switch n {
	case 0:
		return EmptyRoot
	case 1:
		return LeafHash(leaves[0])
	}
	k := refSplit(n)
	return NodeHash(refMTH(leaves[:k]), refMTH(leaves[k:]))
}

// refSplit is the largest power of two strictly less than n (n > 1).
func refSplit(n int) int {
	return int(refSplit64(uint64(n)))
}

func refSplit64(n uint64) uint64 {
	k := uint64(1)
	for k <= (n-1)/2 { // k*2 < n, without overflow
		k *= 2
	}
	return k
}

// refPath is RFC 6962 §2.1.1 PATH(m, D[n]).
func refPath(m int, leaves [][]byte) [][32]byte {
	n := len(leaves)
	if n <= 1 {
		return nil
	}
	k := refSplit(n)
	if m < k {
		return append(refPath(m, leaves[:k]), refMTH(leaves[k:]))
	}
	return append(refPath(m-k, leaves[k:]), refMTH(leaves[:k]))
}

// refProof is RFC 6962 §2.1.2 PROOF(m, D[n]) for 0 < m <= n.
func refProof(m int, leaves [][]byte) [][32]byte {
	return refSubproof(m, leaves, true)
}

func refSubproof(m int, leaves [][]byte, b bool) [][32]byte {
	n := len(leaves)
	if m == n {
		if b {
			return nil
		}
		return [][32]byte{refMTH(leaves)}
	}
	k := refSplit(n)
	if m <= k {
		return append(refSubproof(m, leaves[:k], b), refMTH(leaves[k:]))
	}
	return append(refSubproof(m-k, leaves[k:], false), refMTH(leaves[:k]))
}

// refPathLen and refProofLen are the lengths of PATH and PROOF, by the same
// recursions, for sizes too large to build.
func refPathLen(m, n uint64) int {
	if n <= 1 {
		return 0
	}
	k := refSplit64(n)
	if m < k {
		return refPathLen(m, k) + 1
	}
	return refPathLen(m-k, n-k) + 1
}

func refProofLen(m, n uint64) int {
	if m == 0 || m == n {
		return 0
	}
	var sub func(m, n uint64, b bool) int
	sub = func(m, n uint64, b bool) int {
		if m == n {
			if b {
				return 0
			}
			return 1
		}
		k := refSplit64(n)
		if m <= k {
			return sub(m, k, b) + 1
		}
		return sub(m-k, n-k, false) + 1
	}
	return sub(m, n, true)
}

func TestRFC6962Roots(t *testing.T) {
	var v rootsFile
	readVectors(t, "roots.json", &v)
	leaves := make([][]byte, len(v.Leaves))
	for i, l := range v.Leaves {
		leaves[i] = l
	}
	if len(v.Roots) != 9 || len(v.Nodes) != 15 {
		t.Fatalf("roots.json has %d roots and %d nodes, want 9 and 15", len(v.Roots), len(v.Nodes))
	}
	for _, r := range v.Roots {
		if got := refMTH(leaves[:r.Size]); got != r.Root {
			t.Errorf("%s: MTH(D[0:%d]) = %x, want %x", r.Desc, r.Size, got, r.Root)
		}
	}
	if v.Roots[0].Root != EmptyRoot {
		t.Errorf("EmptyRoot = %x, want %x", EmptyRoot, v.Roots[0].Root)
	}
	for _, n := range v.Nodes {
		lo, hi := n.Index<<n.Level, (n.Index+1)<<n.Level
		if got := refMTH(leaves[lo:hi]); got != n.Hash {
			t.Errorf("%s: MTH(D[%d:%d]) = %x, want %x", n.Desc, lo, hi, got, n.Hash)
		}
		// Interior nodes are NodeHash of the two nodes below.
		if n.Level == 0 {
			if got := LeafHash(leaves[n.Index]); got != n.Hash {
				t.Errorf("%s: LeafHash(%x) = %x, want %x", n.Desc, leaves[n.Index], got, n.Hash)
			}
			continue
		}
		var left, right [32]byte
		for _, c := range v.Nodes {
			if c.Level == n.Level-1 && c.Index == 2*n.Index {
				left = c.Hash
			}
			if c.Level == n.Level-1 && c.Index == 2*n.Index+1 {
				right = c.Hash
			}
		}
		if got := NodeHash(left, right); got != n.Hash {
			t.Errorf("%s: NodeHash(children) = %x, want %x", n.Desc, got, n.Hash)
		}
	}
}

func flipByte(proof [][32]byte, i int) [][32]byte {
	p := append([][32]byte(nil), proof...)
	p[i][0] ^= 0x10
	return p
}

func withAppended(proof [][32]byte, h [32]byte) [][32]byte {
	return append(append([][32]byte(nil), proof...), h)
}

func withPrepended(proof [][32]byte, h [32]byte) [][32]byte {
	return append([][32]byte{h}, proof...)
}

type inclusionProbe struct {
	name        string
	index, size uint64
	leaf        [32]byte
	proof       [][32]byte
	root        [32]byte
	wantErr     error
}

// inclusionMutations derives named negative cases from a valid inclusion
// proof. The size mutations are *2 and /2, as upstream's: a size off by one
// can give the same path shape (index 0 in trees of 7 and 8 leaves), and
// then the proof alone cannot tell the sizes apart (see
// TestInclusionSizeComesFromCheckpoint). Where a mutation changes the index or size, the expected failure
// follows from the naive PATH length: a proof of the wrong length must fail
// as such, one of the right length must fail to reach the root.
func inclusionMutations(index, size uint64, leaf [32]byte, proof [][32]byte, root [32]byte) []inclusionProbe {
	expect := func(i, s uint64, p [][32]byte) error {
		switch {
		case i >= s:
			return ErrIndexOutOfRange
		case len(p) != refPathLen(i, s):
			return ErrProofLength
		}
		return ErrRootMismatch
	}
	var ps []inclusionProbe
	add := func(name string, i, s uint64, l [32]byte, p [][32]byte, r [32]byte, want error) {
		ps = append(ps, inclusionProbe{name, i, s, l, p, r, want})
	}
	for i := range proof {
		add(fmt.Sprintf("byte flipped in proof[%d]", i), index, size, leaf, flipByte(proof, i), root, ErrRootMismatch)
	}
	if len(proof) > 0 {
		add("truncated proof", index, size, leaf, proof[:len(proof)-1], root, ErrProofLength)
	}
	if len(proof) > 1 && proof[0] != proof[1] {
		p := append([][32]byte(nil), proof...)
		p[0], p[1] = p[1], p[0]
		add("proof[0] and proof[1] swapped", index, size, leaf, p, root, ErrRootMismatch)
	}
	add("extra element appended (root)", index, size, leaf, withAppended(proof, root), root, ErrProofLength)
	add("extra element prepended (leaf)", index, size, leaf, withPrepended(proof, leaf), root, ErrProofLength)
	add("wrong leaf hash", index, size, LeafHash([]byte("wrong leaf")), proof, root, ErrRootMismatch)
	add("wrong root", index, size, leaf, proof, NodeHash(root, root), ErrRootMismatch)
	add("empty-tree root", index, size, leaf, proof, EmptyRoot, ErrRootMismatch)
	add("index = size", size, size, leaf, proof, root, ErrIndexOutOfRange)
	add("index + 1", index+1, size, leaf, proof, root, expect(index+1, size, proof))
	if index > 0 {
		add("index - 1", index-1, size, leaf, proof, root, expect(index-1, size, proof))
	}
	add("index ^ 2", index^2, size, leaf, proof, root, expect(index^2, size, proof))
	add("size * 2", index, size*2, leaf, proof, root, expect(index, size*2, proof))
	add("size / 2", index, size/2, leaf, proof, root, expect(index, size/2, proof))
	add("size 0", index, 0, leaf, proof, root, ErrIndexOutOfRange)
	return ps
}

func TestRFC6962Inclusion(t *testing.T) {
	var v inclusionFile
	readVectors(t, "inclusion.json", &v)
	if len(v.Cases) != 5 {
		t.Fatalf("inclusion.json has %d cases, want 5", len(v.Cases))
	}
	for _, c := range v.Cases {
		leaf := LeafHash(c.LeafInput)
		proof := hashes(c.Proof)
		t.Run(c.Desc, func(t *testing.T) {
			if err := CheckInclusion(c.Index, c.Size, leaf, proof, c.Root); err != nil {
				t.Fatalf("CheckInclusion(valid vector) = %v, want nil", err)
			}
			for _, p := range inclusionMutations(c.Index, c.Size, leaf, proof, c.Root) {
				err := CheckInclusion(p.index, p.size, p.leaf, p.proof, p.root)
				if !errors.Is(err, p.wantErr) {
					t.Errorf("%s: CheckInclusion(%d, %d, …) = %v, want %v", p.name, p.index, p.size, err, p.wantErr)
				}
				var ie *inclusionError
				if err != nil && (!errors.As(err, &ie) || ie.Index != p.index || ie.Size != p.size || ie.Root != p.root || ie.Leaf != p.leaf) {
					t.Errorf("%s: error %v does not carry the evidence as an *inclusionError", p.name, err)
				}
			}
		})
	}
}

type consistencyProbe struct {
	name             string
	oldSize, newSize uint64
	oldRoot, newRoot [32]byte
	proof            [][32]byte
	wantErr          error
}

// consistencyMutations derives named negative cases from a valid
// consistency proof with 0 < oldSize <= newSize.
func consistencyMutations(oldSize, newSize uint64, oldRoot, newRoot [32]byte, proof [][32]byte) []consistencyProbe {
	expect := func(m, n uint64, p [][32]byte) error {
		switch {
		case m > n:
			return ErrSizeOrder
		case len(p) != refProofLen(m, n):
			return ErrProofLength
		}
		return ErrRootMismatch
	}
	var ps []consistencyProbe
	add := func(name string, m, n uint64, r1, r2 [32]byte, p [][32]byte, want error) {
		ps = append(ps, consistencyProbe{name, m, n, r1, r2, p, want})
	}
	for i := range proof {
		add(fmt.Sprintf("byte flipped in proof[%d]", i), oldSize, newSize, oldRoot, newRoot, flipByte(proof, i), ErrRootMismatch)
	}
	if len(proof) > 0 {
		add("truncated proof", oldSize, newSize, oldRoot, newRoot, proof[:len(proof)-1], ErrProofLength)
		add("empty proof", oldSize, newSize, oldRoot, newRoot, nil, ErrProofLength)
		add("extra element prepended (proof[0])", oldSize, newSize, oldRoot, newRoot, withPrepended(proof, proof[0]), ErrProofLength)
	}
	add("extra element appended (old root)", oldSize, newSize, oldRoot, newRoot, withAppended(proof, oldRoot), ErrProofLength)
	add("extra element appended (new root)", oldSize, newSize, oldRoot, newRoot, withAppended(proof, newRoot), ErrProofLength)
	add("wrong old root", oldSize, newSize, NodeHash(oldRoot, oldRoot), newRoot, proof, ErrRootMismatch)
	add("wrong new root", oldSize, newSize, oldRoot, NodeHash(newRoot, newRoot), proof, ErrRootMismatch)
	if oldRoot != newRoot {
		add("roots swapped", oldSize, newSize, newRoot, oldRoot, proof, ErrRootMismatch)
	}
	add("old size + 1", oldSize+1, newSize, oldRoot, newRoot, proof, expect(oldSize+1, newSize, proof))
	if oldSize > 1 {
		add("old size - 1", oldSize-1, newSize, oldRoot, newRoot, proof, expect(oldSize-1, newSize, proof))
	}
	add("old size ^ 2", oldSize^2, newSize, oldRoot, newRoot, proof, expect(oldSize^2, newSize, proof))
	add("new size * 2", oldSize, newSize*2, oldRoot, newRoot, proof, expect(oldSize, newSize*2, proof))
	add("new size / 2", oldSize, newSize/2, oldRoot, newRoot, proof, expect(oldSize, newSize/2, proof))
	if oldSize != newSize {
		add("sizes swapped", newSize, oldSize, newRoot, oldRoot, proof, ErrSizeOrder)
	}
	return ps
}

func TestRFC6962Consistency(t *testing.T) {
	var v consistencyFile
	readVectors(t, "consistency.json", &v)
	if len(v.Cases) != 5 {
		t.Fatalf("consistency.json has %d cases, want 5", len(v.Cases))
	}
	for _, c := range v.Cases {
		proof := hashes(c.Proof)
		t.Run(c.Desc, func(t *testing.T) {
			if err := CheckConsistency(c.OldSize, c.NewSize, c.OldRoot, c.NewRoot, proof); err != nil {
				t.Fatalf("CheckConsistency(valid vector) = %v, want nil", err)
			}
			for _, p := range consistencyMutations(c.OldSize, c.NewSize, c.OldRoot, c.NewRoot, proof) {
				err := CheckConsistency(p.oldSize, p.newSize, p.oldRoot, p.newRoot, p.proof)
				if !errors.Is(err, p.wantErr) {
					t.Errorf("%s: CheckConsistency(%d, %d, …) = %v, want %v", p.name, p.oldSize, p.newSize, err, p.wantErr)
				}
				var ce *consistencyError
				if err != nil && (!errors.As(err, &ce) || ce.OldSize != p.oldSize || ce.NewSize != p.newSize) {
					t.Errorf("%s: error %v does not carry the evidence as a *consistencyError", p.name, err)
				}
			}
		})
	}
}

// TestInclusionSizeComesFromCheckpoint records why a verifier must take the
// tree size from the same signed checkpoint as the root: an inclusion proof
// binds the leaf, index and root, but sizes whose paths have the same shape
// are indistinguishable to it.
func TestInclusionSizeComesFromCheckpoint(t *testing.T) {
	var v inclusionFile
	readVectors(t, "inclusion.json", &v)
	c := v.Cases[1] // index 0 in tree of size 8
	if c.Index != 0 || c.Size != 8 {
		t.Fatalf("inclusion.json case 1 is index %d size %d, want 0 and 8", c.Index, c.Size)
	}
	if err := CheckInclusion(0, 7, LeafHash(c.LeafInput), hashes(c.Proof), c.Root); err != nil {
		t.Errorf("CheckInclusion(0, 7, size-8 proof, size-8 root) = %v, want nil (same path shape)", err)
	}
}
