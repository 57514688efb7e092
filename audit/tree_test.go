package audit

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/custodylog/custody/verify"
)

func popcount(n uint64) int {
	c := 0
	for ; n > 0; n &= n - 1 {
		c++
	}
	return c
}

// TestTreeBuilder: the builder's root is RFC 6962's at every size (reference
// hashing), whole subtrees appended by their root give the same tree, and
// its state survives marshalling and rejects damage.
func TestTreeBuilder(t *testing.T) {
	var zero treeBuilder
	if zero.size() != 0 || zero.root() != verify.EmptyRoot {
		t.Errorf("zero treeBuilder: %d %x", zero.size(), zero.root())
	}
	var leaves [][32]byte
	b := newTreeBuilder()
	for i := range 300 {
		e := []byte(fmt.Sprintf("entry %d", i))
		leaves = append(leaves, refLeafHash(e))
		b.append(e)
		if n := uint64(i + 1); n <= 20 || n%37 == 0 {
			if b.root() != refTreeHash(leaves) {
				t.Fatalf("root at %d wrong", n)
			}
			state, _ := b.marshalBinary()
			if want := 4 + 8 + 32*popcount(n); len(state) != want {
				t.Fatalf("state at %d is %d bytes, want %d", n, len(state), want)
			}
			var r treeBuilder
			if err := r.unmarshalBinary(state); err != nil || r.root() != b.root() || r.size() != n {
				t.Fatalf("restored at %d: %v", n, err)
			}
		}
	}
	// A whole bundle appended as its subtree root, after a restore.
	sub := newTreeBuilder()
	sub.appendSubtree(verify.TileHeight, refTreeHash(leaves[:256]))
	state, _ := sub.marshalBinary()
	var r treeBuilder
	if err := r.unmarshalBinary(state); err != nil {
		t.Fatal(err)
	}
	for _, h := range leaves[256:] {
		r.appendLeafHash(h)
	}
	if r.size() != b.size() || r.root() != b.root() {
		t.Errorf("subtree then leaves: size %d root %x, want %d %x", r.size(), r.root(), b.size(), b.root())
	}

	empty, _ := newTreeBuilder().marshalBinary()
	state, _ = b.marshalBinary()
	for name, bad := range map[string][]byte{
		"nil":            nil,
		"magic":          append([]byte("ctb2"), state[4:]...),
		"short":          state[:len(state)-1],
		"long":           append(bytes.Clone(state), 0),
		"no size":        []byte("ctb1"),
		"size no hashes": append([]byte("ctb1"), 0, 0, 0, 0, 0, 0, 0, 1),
	} {
		var r treeBuilder
		if err := r.unmarshalBinary(bad); err == nil {
			t.Errorf("%s: unmarshalBinary accepted %x", name, bad)
		}
	}
	if err := r.unmarshalBinary(empty); err != nil || r.size() != 0 || r.root() != verify.EmptyRoot {
		t.Errorf("empty state: %v", err)
	}
}

// TestTreeBuilderCheckCheckpoint: entries that do not make the signed root
// are a root-mismatch VerificationError with the signed note, the signed
// root and the recomputed one as evidence; a size mismatch is the caller's
// error, not evidence.
func TestTreeBuilderCheckCheckpoint(t *testing.T) {
	b := newTreeBuilder()
	var leaves [][32]byte
	for i := range 10 {
		e := []byte(fmt.Sprintf("entry %d", i))
		b.append(e)
		leaves = append(leaves, refLeafHash(e))
	}
	good := verify.Checkpoint{Origin: "example.com/tree", Size: 10, Root: refTreeHash(leaves)}
	if err := b.checkCheckpoint(good, []byte("note")); err != nil {
		t.Fatalf("true root: %v", err)
	}
	bad := good
	bad.Root = refTreeHash(leaves[:9])
	err := b.checkCheckpoint(bad, []byte("signed note"))
	ve, ok := verify.IsVerificationError(err)
	if !ok || ve.Evidence.Kind != verify.EvidenceRootMismatch {
		t.Fatalf("other root: %v", err)
	}
	if ve.Evidence.NewCheckpoint != "signed note" || ve.Evidence.Expected != b64(bad.Root) || ve.Evidence.Computed != b64(good.Root) || ve.Evidence.NewSize != 10 {
		t.Errorf("evidence %+v", ve.Evidence)
	}
	short := good
	short.Size = 11
	if err := b.checkCheckpoint(short, nil); err == nil {
		t.Error("size mismatch accepted")
	} else if _, ok := verify.IsVerificationError(err); ok {
		t.Errorf("size mismatch is evidence: %v", err)
	}
}
