package verify

import (
	"errors"
	"fmt"
	"math/bits"

	merkleproof "github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// Reasons a proof check fails. Every error from CheckInclusion is an
// *inclusionError and every error from CheckConsistency is a
// *consistencyError; each wraps exactly one of these.
var (
	// ErrIndexOutOfRange: the leaf index is not below the tree size.
	ErrIndexOutOfRange = errors.New("leaf index is not below tree size")
	// ErrSizeOrder: the old tree is larger than the new one.
	ErrSizeOrder = errors.New("old tree size is larger than new tree size")
	// ErrProofLength: the proof has the wrong number of hashes for the sizes.
	ErrProofLength = errors.New("proof has the wrong number of hashes")
	// ErrRootMismatch: the proof does not lead to the given root(s).
	ErrRootMismatch = errors.New("proof does not match root hash")
)

// inclusionError reports a failed inclusion proof check with everything
// that was checked, so that a verifier can publish what it saw.
type inclusionError struct {
	Index, Size uint64
	Leaf        Hash
	Proof       []Hash
	Root        Hash
	// Computed is the root the proof leads to, if it got that far.
	Computed *Hash
	Err      error // one of ErrIndexOutOfRange, ErrProofLength, ErrRootMismatch
}

// Error describes the failure: which index, which size, and the reason.
func (e *inclusionError) Error() string {
	return fmt.Sprintf("inclusion proof for index %d in tree of size %d: %v", e.Index, e.Size, e.Err)
}

// Unwrap returns the reason, so errors.Is(err, ErrRootMismatch) and the like
// work.
func (e *inclusionError) Unwrap() error { return e.Err }

// consistencyError reports a failed consistency proof check with everything
// that was checked, so that a verifier can publish what it saw.
type consistencyError struct {
	OldSize, NewSize uint64
	OldRoot, NewRoot Hash
	Proof            []Hash
	Err              error // one of ErrSizeOrder, ErrProofLength, ErrRootMismatch
}

// Error describes the failure: which sizes, and the reason.
func (e *consistencyError) Error() string {
	return fmt.Sprintf("consistency proof from tree size %d to %d: %v", e.OldSize, e.NewSize, e.Err)
}

// Unwrap returns the reason, so errors.Is(err, ErrRootMismatch) and the like
// work.
func (e *consistencyError) Unwrap() error { return e.Err }

// CheckInclusion checks that proof (RFC 6962 PATH, from the leaf's sibling
// up to the root's child) shows a leaf with hash leaf at index in the tree
// of size with root hash root. It returns nil only if index < size, the
// proof has exactly the length those two imply, and it leads to root.
// Otherwise it returns an *inclusionError.
//
// The proof binds leaf, index and root, but not size on its own: sizes whose
// paths have the same shape (index 0 in trees of 7 and of 8 leaves) accept
// the same proof. Take size and root from one verified checkpoint.
func CheckInclusion(index, size uint64, leaf Hash, proof []Hash, root Hash) error {
	fail := func(err error, computed []byte) error {
		e := &inclusionError{Index: index, Size: size, Leaf: leaf, Proof: proof, Root: root, Err: err}
		if len(computed) == HashSize {
			e.Computed = (*Hash)(computed)
		}
		return e
	}
	if index >= size {
		return fail(ErrIndexOutOfRange, nil)
	}
	if got, want := len(proof), inclusionProofLen(index, size); got != want {
		return fail(fmt.Errorf("%w: got %d, want %d", ErrProofLength, got, want), nil)
	}
	computed, err := proofRootFromInclusion(index, size, leaf, proof)
	if err != nil {
		// Unreachable after the checks above; report it as what it is.
		return fail(err, nil)
	}
	if Hash(computed) != root {
		return fail(ErrRootMismatch, computed)
	}
	return nil
}

func proofRootFromInclusion(index, size uint64, leaf Hash, p []Hash) ([]byte, error) {
	return merkleproof.RootFromInclusionProof(rfc6962.DefaultHasher, index, size, leaf[:], hashSlices(p))
}

// CheckConsistency checks that proof (RFC 6962 PROOF) shows that the tree of
// oldSize entries with root oldRoot is a prefix of the tree of newSize
// entries with root newRoot. It returns nil only if oldSize <= newSize, the
// proof has exactly the length the sizes imply, and it leads to both roots.
// When oldSize == newSize the proof must be empty and the roots equal. When
// oldSize is 0 the proof must be empty and the roots are not examined: every
// tree extends the empty one (checkpoints of size 0 are held to EmptyRoot by
// ParseCheckpoint). Otherwise it returns a *consistencyError.
func CheckConsistency(oldSize, newSize uint64, oldRoot, newRoot Hash, proof []Hash) error {
	fail := func(err error) error {
		return &consistencyError{OldSize: oldSize, NewSize: newSize, OldRoot: oldRoot, NewRoot: newRoot, Proof: proof, Err: err}
	}
	if oldSize > newSize {
		return fail(ErrSizeOrder)
	}
	if got, want := len(proof), consistencyProofLen(oldSize, newSize); got != want {
		return fail(fmt.Errorf("%w: got %d, want %d", ErrProofLength, got, want))
	}
	if err := verifyConsistency(oldSize, newSize, oldRoot, newRoot, proof); err != nil {
		var mismatch merkleproof.RootMismatchError
		if errors.As(err, &mismatch) {
			return fail(ErrRootMismatch)
		}
		// Unreachable after the checks above; report it as what it is.
		return fail(err)
	}
	return nil
}

func verifyConsistency(oldSize, newSize uint64, oldRoot, newRoot Hash, p []Hash) error {
	return merkleproof.VerifyConsistency(rfc6962.DefaultHasher, oldSize, newSize, hashSlices(p), oldRoot[:], newRoot[:])
}

// inclusionProofLen is the length of the RFC 6962 inclusion proof for index
// in a tree of size (index < size).
func inclusionProofLen(index, size uint64) int {
	inner := bits.Len64(index ^ (size - 1))
	border := bits.OnesCount64(index >> uint(inner))
	return inner + border
}

// consistencyProofLen is the length of the RFC 6962 consistency proof from
// oldSize to newSize (oldSize <= newSize).
func consistencyProofLen(oldSize, newSize uint64) int {
	if oldSize == 0 || oldSize == newSize {
		return 0
	}
	n := inclusionProofLen(oldSize-1, newSize) - bits.TrailingZeros64(oldSize)
	if oldSize&(oldSize-1) != 0 {
		// Not a power of two: the proof starts with the hash of the old
		// tree's rightmost perfect subtree.
		n++
	}
	return n
}

func hashSlices(p []Hash) [][]byte {
	s := make([][]byte, len(p))
	for i := range p {
		s[i] = p[i][:]
	}
	return s
}
