package tiles

import (
	"testing"

	xtlog "golang.org/x/mod/sumdb/tlog"
)

// xmodSmall builds a tree of n leaves (entry(i) as leaf data) in x/mod's
// sumdb/tlog and returns it with its leaf hashes.
func xmodSmall(t *testing.T, n int) (*xmodTree, []Hash) {
	t.Helper()
	x := &xmodTree{}
	hs := make([]Hash, n)
	for i := range n {
		e := entry(uint64(i))
		x.add(t, e)
		hs[i] = LeafHash(e)
		if Hash(xtlog.RecordHash(e)) != hs[i] {
			t.Fatalf("LeafHash of entry %d differs from x/mod's RecordHash", i)
		}
	}
	return x, hs
}

// TestSmallTreesAgainstXMod checks MemTree, InclusionPath, RootFromPath and
// AppendLeaf against x/mod's TreeHash, ProveRecord and CheckRecord for
// every size 1..300 and every leaf.
func TestSmallTreesAgainstXMod(t *testing.T) {
	for n := 1; n <= 300; n++ {
		x, hs := xmodSmall(t, n)
		want, err := xtlog.TreeHash(int64(n), x)
		if err != nil {
			t.Fatal(err)
		}
		mt := NewMemTree(hs)
		if mt.Root() != Hash(want) || mt.Size() != n {
			t.Fatalf("n=%d: MemTree root %x size %d, x/mod TreeHash %x", n, mt.Root(), mt.Size(), want)
		}
		var rng []Hash
		for i := range hs {
			rng = AppendLeaf(rng, uint64(i), hs[i])
		}
		if FoldRoot(rng) != Hash(want) || len(rng) != popcount(uint64(n)) {
			t.Fatalf("n=%d: AppendLeaf range (%d hashes) root %x, x/mod %x", n, len(rng), FoldRoot(rng), want)
		}
		if r, err := NewRange(uint64(n), rng); err != nil || r.Root() != Hash(want) {
			t.Fatalf("n=%d: NewRange of the AppendLeaf range: %v", n, err)
		}
		for m := range n {
			xp, err := xtlog.ProveRecord(int64(n), int64(m), x)
			if err != nil {
				t.Fatal(err)
			}
			p := mt.Path(m)
			if len(p) != len(xp) {
				t.Fatalf("n=%d m=%d: path of %d hashes, x/mod %d", n, m, len(p), len(xp))
			}
			for i := range p {
				if p[i] != Hash(xp[i]) {
					t.Fatalf("n=%d m=%d: path hash %d differs from x/mod's", n, m, i)
				}
			}
			if m%37 == 0 {
				if q := InclusionPath(hs, m); len(q) != len(p) || (len(q) > 0 && q[0] != p[0]) {
					t.Fatalf("n=%d m=%d: InclusionPath differs from MemTree.Path", n, m)
				}
			}
			// RootFromPath accepts x/mod's path; CheckRecord accepts ours.
			if r, err := RootFromPath(uint64(m), uint64(n), hs[m], p); err != nil || r != Hash(want) {
				t.Fatalf("n=%d m=%d: RootFromPath = %x, %v; want %x", n, m, r, err, want)
			}
			if err := xtlog.CheckRecord(toX(p), int64(n), want, int64(m), xtlog.Hash(hs[m])); err != nil {
				t.Fatalf("n=%d m=%d: x/mod CheckRecord rejects our path: %v", n, m, err)
			}
		}
	}
}

func toX(p []Hash) xtlog.RecordProof {
	out := make(xtlog.RecordProof, len(p))
	for i := range p {
		out[i] = xtlog.Hash(p[i])
	}
	return out
}

func popcount(x uint64) int {
	n := 0
	for ; x != 0; x &= x - 1 {
		n++
	}
	return n
}

// TestRootFromPathRejects shows that a tampered path, leaf, index or size
// does not lead to the root, and that wrong lengths are errors.
func TestRootFromPathRejects(t *testing.T) {
	_, hs := xmodSmall(t, 13)
	mt := NewMemTree(hs)
	root := mt.Root()
	for m := range 13 {
		p := mt.Path(m)
		for i := range p {
			bad := append([]Hash(nil), p...)
			bad[i][0] ^= 1
			if r, err := RootFromPath(uint64(m), 13, hs[m], bad); err == nil && r == root {
				t.Fatalf("m=%d: path with hash %d flipped still gives the root", m, i)
			}
		}
		other := hs[(m+1)%13]
		if r, err := RootFromPath(uint64(m), 13, other, p); err == nil && r == root {
			t.Fatalf("m=%d: another leaf's hash gives the root", m)
		}
		if r, err := RootFromPath(uint64(m^1), 13, hs[m], p); m^1 < 13 && err == nil && r == root {
			t.Fatalf("m=%d: the path proves leaf %d too", m, m^1)
		}
		if _, err := RootFromPath(uint64(m), 13, hs[m], append(p, root)); err == nil {
			t.Fatalf("m=%d: a path one hash too long accepted", m)
		}
		if _, err := RootFromPath(uint64(m), 13, hs[m], p[:len(p)-1]); err == nil {
			t.Fatalf("m=%d: a path one hash too short accepted", m)
		}
	}
	if _, err := RootFromPath(13, 13, hs[0], nil); err == nil {
		t.Fatal("leaf 13 of 13 accepted")
	}
	if r, err := RootFromPath(0, 1, hs[0], nil); err != nil || r != hs[0] {
		t.Fatalf("a tree of one leaf: %x, %v", r, err)
	}
}

func TestMemTreeEmptyAndPanics(t *testing.T) {
	if NewMemTree(nil).Root() != EmptyRoot {
		t.Fatal("empty MemTree root is not EmptyRoot")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("Path(3) of a tree of 3 leaves did not panic")
		}
	}()
	NewMemTree(make([]Hash, 3)).Path(3)
}

func TestSmallAllocs(t *testing.T) {
	var arr [11]Hash
	leaf := LeafHash([]byte("x"))
	if a := testing.AllocsPerRun(100, func() {
		rng := arr[:0]
		for i := range 1000 {
			rng = AppendLeaf(rng, uint64(i), leaf)
		}
		_ = FoldRoot(rng)
	}); a != 0 {
		t.Errorf("AppendLeaf into a range with room: %v allocations", a)
	}
}

// FuzzSmallTree checks MemTree paths, RootFromPath and AppendLeaf against
// each other and the RFC 6962 definition for a tree of the size and leaf
// the fuzzer picks.
func FuzzSmallTree(f *testing.F) {
	f.Add(uint16(1), uint16(0), uint8(0))
	f.Add(uint16(7), uint16(6), uint8(3))
	f.Add(uint16(256), uint16(255), uint8(200))
	f.Fuzz(func(t *testing.T, n, m uint16, flip uint8) {
		n = n%1100 + 1
		m %= n
		data := make([][]byte, n)
		hs := make([]Hash, n)
		var rng []Hash
		for i := range data {
			data[i] = entry(uint64(i))
			hs[i] = LeafHash(data[i])
			rng = AppendLeaf(rng, uint64(i), hs[i])
		}
		want := mth(data)
		mt := NewMemTree(hs)
		if mt.Root() != want || FoldRoot(rng) != want {
			t.Fatalf("n=%d: MemTree %x, AppendLeaf %x, MTH %x", n, mt.Root(), FoldRoot(rng), want)
		}
		p := mt.Path(int(m))
		if r, err := RootFromPath(uint64(m), uint64(n), hs[m], p); err != nil || r != want {
			t.Fatalf("n=%d m=%d: RootFromPath %x, %v", n, m, r, err)
		}
		if len(p) > 0 {
			p[int(flip)%len(p)][flip%HashSize] ^= 1 << (flip % 8)
			if r, err := RootFromPath(uint64(m), uint64(n), hs[m], p); err == nil && r == want {
				t.Fatalf("n=%d m=%d: a flipped path hash still gives the root", n, m)
			}
		}
	})
}

// TestLeafHashAgainstXMod covers both ways LeafHash hashes (data of up to
// 64 bytes in one stack buffer, longer data streamed).
func TestLeafHashAgainstXMod(t *testing.T) {
	data := make([]byte, 200)
	for i := range data {
		data[i] = byte(i*7 + 3)
	}
	for n := 0; n <= len(data); n++ {
		if LeafHash(data[:n]) != Hash(xtlog.RecordHash(data[:n])) {
			t.Fatalf("LeafHash of %d bytes differs from x/mod's RecordHash", n)
		}
	}
	var id [32]byte
	if a := testing.AllocsPerRun(100, func() { _ = LeafHash(id[:]) }); a != 0 {
		t.Errorf("LeafHash of 32 bytes: %v allocations", a)
	}
}
