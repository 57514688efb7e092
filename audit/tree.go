package audit

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"time"

	"github.com/custodylog/custody/internal/tiles"
	"github.com/custodylog/custody/verify"
)

// treeBuilder recomputes a tree's root by appending its entries one by one,
// holding only the O(log n) hashes of a compact range (internal/tiles
// Range). Its state can be saved with marshalBinary and restored with
// unmarshalBinary (AuditState.Tree), so an audit can resume where it
// stopped and prove consistency with a new checkpoint by appending only
// the new entries and comparing roots. The zero value is an empty tree.
type treeBuilder struct {
	r tiles.Range
}

// newTreeBuilder returns a treeBuilder for the empty tree.
func newTreeBuilder() *treeBuilder { return &treeBuilder{} }

// append adds entry (the exact entry bytes, without a bundle length prefix)
// as the next leaf.
func (b *treeBuilder) append(entry []byte) { b.r.Append(verify.LeafHash(entry)) }

// appendLeafHash adds a leaf by its RFC 6962 leaf hash.
func (b *treeBuilder) appendLeafHash(leaf verify.Hash) { b.r.Append(leaf) }

// appendSubtree adds the 2^height leaves of a perfect subtree by its root
// hash. The builder's size must be a multiple of 2^height.
func (b *treeBuilder) appendSubtree(height uint, root verify.Hash) { b.r.AppendSubtree(height, root) }

// size returns the number of leaves appended (including those of a
// restored state).
func (b *treeBuilder) size() uint64 { return b.r.Size() }

// root returns the RFC 6962 root hash of the leaves so far: verify.EmptyRoot
// for none.
func (b *treeBuilder) root() verify.Hash { return b.r.Root() }

// treeBuilderMagic starts a marshalled treeBuilder (format version 1).
const treeBuilderMagic = "ctb1"

// marshalBinary returns the builder's state: "ctb1", the size as an 8-byte
// big-endian number, and the compact range's hashes (one per 1 bit of the
// size, left to right), 32 bytes each.
func (b *treeBuilder) marshalBinary() ([]byte, error) {
	hs := b.r.Hashes()
	out := make([]byte, 0, len(treeBuilderMagic)+8+len(hs)*verify.HashSize)
	out = append(out, treeBuilderMagic...)
	out = binary.BigEndian.AppendUint64(out, b.r.Size())
	for _, h := range hs {
		out = append(out, h[:]...)
	}
	return out, nil
}

// unmarshalBinary restores a state written by marshalBinary. It rejects
// data of the wrong version or length for the size it records. It cannot
// tell whether the hashes are right: a resumed audit learns that when the
// root it reaches fails to match a signed checkpoint.
func (b *treeBuilder) unmarshalBinary(data []byte) error {
	rest, ok := bytes.CutPrefix(data, []byte(treeBuilderMagic))
	if !ok || len(rest) < 8 {
		return errors.New("tree builder state: not a version 1 state")
	}
	size := binary.BigEndian.Uint64(rest)
	rest = rest[8:]
	n := bits.OnesCount64(size)
	if len(rest) != n*verify.HashSize {
		return fmt.Errorf("tree builder state: %d bytes of hashes for size %d, want %d", len(rest), size, n*verify.HashSize)
	}
	hs := make([]verify.Hash, n)
	for i := range hs {
		hs[i] = verify.Hash(rest[i*verify.HashSize : (i+1)*verify.HashSize])
	}
	r, err := tiles.NewRange(size, hs)
	if err != nil {
		return fmt.Errorf("tree builder state: %v", err)
	}
	b.r = *r
	return nil
}

// checkCheckpoint compares the builder's root with the signed checkpoint
// cp (signedNote is its note, for the evidence). The builder must have
// exactly cp.Size leaves, or it is a plain error. A different root is a
// *VerificationError of kind root-mismatch: the entries the log served do
// not make the tree it signed.
func (b *treeBuilder) checkCheckpoint(cp verify.Checkpoint, signedNote []byte) error {
	if b.size() != cp.Size {
		return fmt.Errorf("checking recomputed tree against checkpoint: have %d entries, checkpoint has %d", b.size(), cp.Size)
	}
	if root := b.root(); root != cp.Root {
		return &verify.VerificationError{Evidence: verify.Evidence{
			Kind:   verify.EvidenceRootMismatch,
			What:   fmt.Sprintf("the log's %d entries recompute to a root other than the one in its signed checkpoint", cp.Size),
			Origin: cp.Origin, NewCheckpoint: string(signedNote), NewSize: cp.Size,
			Expected: b64(cp.Root), Computed: b64(root), Time: time.Now().UTC(),
		}}
	}
	return nil
}

// b64 is the standard base64 of a hash, as used in Evidence.
func b64(h verify.Hash) string { return base64.StdEncoding.EncodeToString(h[:]) }
