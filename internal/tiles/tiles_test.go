package tiles

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	xtlog "golang.org/x/mod/sumdb/tlog"
)

// xmodTree is an independent implementation of the same tree: x/mod's
// sumdb/tlog, storing every hash in a slice.
type xmodTree struct {
	stored []xtlog.Hash
	size   int64
}

func (x *xmodTree) ReadHashes(idx []int64) ([]xtlog.Hash, error) {
	out := make([]xtlog.Hash, len(idx))
	for i, j := range idx {
		if j >= int64(len(x.stored)) {
			return nil, fmt.Errorf("x/mod asked for stored hash %d of %d", j, len(x.stored))
		}
		out[i] = x.stored[j]
	}
	return out, nil
}

func (x *xmodTree) add(t *testing.T, data []byte) {
	t.Helper()
	hs, err := xtlog.StoredHashes(x.size, data, x)
	if err != nil {
		t.Fatal(err)
	}
	x.stored = append(x.stored, hs...)
	x.size++
}

// tiles returns what x/mod says changed between sizes old and new, as
// tiles with their data.
func (x *xmodTree) tiles(t *testing.T, old, new int64) []Tile {
	t.Helper()
	var out []Tile
	for _, xt := range xtlog.NewTiles(Height, old, new) {
		data, err := xtlog.ReadTileData(xt, x)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, Tile{Level: uint8(xt.L), Index: uint64(xt.N), Data: data})
	}
	return out
}

// tileData returns the data of tile (level, index) of width w from x/mod.
func (x *xmodTree) tileData(level uint8, index uint64, w int) ([]byte, error) {
	return xtlog.ReadTileData(xtlog.Tile{H: Height, L: int(level), N: int64(index), W: w}, x)
}

func entry(i uint64) []byte {
	b := binary.BigEndian.AppendUint64([]byte("entry "), i)
	return b
}

func sameTiles(t *testing.T, what string, got, want []Tile) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d tiles, x/mod has %d:\n got %v\nwant %v", what, len(got), len(want), names(got), names(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Level != w.Level || g.Index != w.Index || !bytes.Equal(g.Data, w.Data) {
			t.Fatalf("%s: tile %d is %d/%d (%d hashes), x/mod has %d/%d (%d hashes), data equal %v",
				what, i, g.Level, g.Index, len(g.Data)/HashSize, w.Level, w.Index, len(w.Data)/HashSize, bytes.Equal(g.Data, w.Data))
		}
	}
}

func names(ts []Tile) []string {
	var s []string
	for _, t := range ts {
		s = append(s, fmt.Sprintf("%d/%d.w%d", t.Level, t.Index, len(t.Data)/HashSize))
	}
	return s
}

// TestBuilderAgainstXMod appends in batches whose ends fall on and around
// every tile boundary of levels 0, 1 and 2 (256, 65536) and checks, after
// each batch, the root, the tiles returned, the right edge and a Resume
// from that edge against x/mod's sumdb/tlog.
func TestBuilderAgainstXMod(t *testing.T) {
	ends := []uint64{0, 1, 2, 3, 7, 8, 255, 256, 257, 300, 511, 512, 513, 1000, 65279, 65280, 65535, 65536, 65537, 65792, 65793, 70000}
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20; i++ {
		ends = append(ends, 70000+uint64(rnd.IntN(2000))*uint64(i+1))
	}
	sortU64(ends)
	b := New()
	x := &xmodTree{}
	var size uint64
	for _, end := range ends {
		if end < size {
			continue
		}
		var leaves []Hash
		for ; size < end; size++ {
			e := entry(size)
			leaves = append(leaves, LeafHash(e))
			x.add(t, e)
		}
		old := b.Size()
		got := b.AppendTiles(leaves)
		what := fmt.Sprintf("%d → %d", old, end)
		sameTiles(t, what, got, x.tiles(t, int64(old), int64(end)))
		want, err := xtlog.TreeHash(int64(end), x)
		if err != nil {
			t.Fatal(err)
		}
		if b.Size() != end || b.Root() != Hash(want) {
			t.Fatalf("%s: size %d root %x, x/mod root %x", what, b.Size(), b.Root(), want)
		}
		for _, e := range b.Edges() {
			xd, err := x.tileData(e.Level, e.Index, len(e.Data)/HashSize)
			if err != nil || !bytes.Equal(xd, e.Data) {
				t.Fatalf("%s: edge tile %d/%d differs from x/mod's (%v)", what, e.Level, e.Index, err)
			}
			if w := PartialWidth(e.Level, end); w != len(e.Data)/HashSize {
				t.Fatalf("%s: edge %d/%d has %d hashes, PartialWidth says %d", what, e.Level, e.Index, len(e.Data)/HashSize, w)
			}
		}
		fromEdges := RootFromEdges(end, func(level uint8) []Hash {
			d, err := x.tileData(level, EdgeIndex(level, end), PartialWidth(level, end))
			if err != nil {
				t.Fatal(err)
			}
			return hashesOf(d)
		})
		if fromEdges != Hash(want) {
			t.Fatalf("%s: RootFromEdges %x, x/mod root %x", what, fromEdges, want)
		}
		r, err := Resume(end, func(level uint8, index uint64, w int) ([]byte, error) {
			return x.tileData(level, index, w)
		})
		if err != nil {
			t.Fatalf("%s: Resume: %v", what, err)
		}
		if r.Root() != b.Root() || r.Size() != end {
			t.Fatalf("%s: resumed tree has size %d root %x, want %d %x", what, r.Size(), r.Root(), end, b.Root())
		}
		// The resumed builder goes on exactly as the original would.
		next := []Hash{LeafHash([]byte("next")), LeafHash([]byte("next 2"))}
		c := b.Clone()
		sameTiles(t, what+" resumed then appended", r.AppendTiles(next), c.AppendTiles(next))
		if r.Root() != c.Root() {
			t.Fatalf("%s: resumed and cloned builders disagree after appending", what)
		}
	}
}

// TestCloneIndependent checks that a clone and its original, and the tile
// data either returned, do not change each other.
func TestCloneIndependent(t *testing.T) {
	b := New()
	var leaves []Hash
	for i := range uint64(300) {
		leaves = append(leaves, LeafHash(entry(i)))
	}
	ts := b.AppendTiles(leaves)
	snap := make([][]byte, len(ts))
	for i := range ts {
		snap[i] = bytes.Clone(ts[i].Data)
	}
	edge := bytes.Clone(b.Edge(0))
	rootBefore := b.Root()
	c := b.Clone()
	c.AppendTiles([]Hash{LeafHash([]byte("clone"))})
	b.AppendTiles([]Hash{LeafHash([]byte("original")), LeafHash([]byte("original 2"))})
	for i := range ts {
		if !bytes.Equal(ts[i].Data, snap[i]) {
			t.Fatalf("tile %d/%d returned earlier was changed by a later append", ts[i].Level, ts[i].Index)
		}
	}
	if c.Size() != 301 || b.Size() != 302 || c.Root() == b.Root() || c.Root() == rootBefore {
		t.Fatalf("clone and original not independent: sizes %d %d", c.Size(), b.Size())
	}
	if !bytes.Equal(c.Edge(0)[:len(edge)], edge) || !bytes.Equal(b.Edge(0)[:len(edge)], edge) {
		t.Fatal("the shared prefix of the edge tile changed")
	}
	if bytes.Equal(c.Edge(0)[len(edge):], b.Edge(0)[len(edge):len(edge)+HashSize]) {
		t.Fatal("clone's appended hash equals the original's: they share storage")
	}
}

// mth is RFC 6962 §2.1's recursive definition, written independently as
// the reference for SubtreeRoot and FoldRoot.
func mth(leaves [][]byte) Hash {
	switch n := len(leaves); n {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return sha256.Sum256(append([]byte{0}, leaves[0]...))
	default:
		k := 1
		for k<<1 < n {
			k <<= 1
		}
		l, r := mth(leaves[:k]), mth(leaves[k:])
		return sha256.Sum256(append(append([]byte{1}, l[:]...), r[:]...))
	}
}

func TestRootsAgainstRFC6962Definition(t *testing.T) {
	var data [][]byte
	for n := 0; n <= 300; n++ {
		b := New()
		var hs []Hash
		for i := range data {
			hs = append(hs, LeafHash(data[i]))
		}
		b.Append(hs...)
		if got, want := b.Root(), mth(data); got != want {
			t.Fatalf("size %d: Builder root %x, RFC 6962 MTH %x", n, got, want)
		}
		if n > 0 && n&(n-1) == 0 {
			if got, want := SubtreeRoot(hs), mth(data); got != want {
				t.Fatalf("size %d: SubtreeRoot %x, MTH %x", n, got, want)
			}
			if got, want := SubtreeRootInPlace(append([]Hash(nil), hs...)), mth(data); got != want {
				t.Fatalf("size %d: SubtreeRootInPlace %x, MTH %x", n, got, want)
			}
		}
		// FoldRoot over the perfect subtrees of n's binary expansion.
		var subs []Hash
		off := 0
		for k := 1 << 10; k > 0; k >>= 1 {
			if n&k != 0 {
				subs = append(subs, SubtreeRoot(hs[off:off+k]))
				off += k
			}
		}
		if got, want := FoldRoot(subs), mth(data); got != want {
			t.Fatalf("size %d: FoldRoot %x, MTH %x", n, got, want)
		}
		data = append(data, entry(uint64(n)))
	}
}

func TestSubtreeRootRejectsNonPowerOfTwo(t *testing.T) {
	for _, n := range []int{0, 3, 5, 6, 255} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("SubtreeRoot of %d hashes did not panic", n)
				}
			}()
			SubtreeRoot(make([]Hash, n))
		}()
	}
}

func TestWidthsAndCounts(t *testing.T) {
	for _, size := range []uint64{0, 1, 255, 256, 257, 65535, 65536, 65537, 16777216, 16777217, 1<<40 + 3, ^uint64(0)} {
		var count uint64
		for L := uint8(0); L < Levels; L++ {
			n := LevelSize(L, size)
			if want := size >> (8 * uint(L)); n != want {
				t.Fatalf("LevelSize(%d, %d) = %d, want %d", L, size, n, want)
			}
			tilesAt := (n + Width - 1) / Width
			count += tilesAt
			for _, idx := range []uint64{0, tilesAt - 1, tilesAt, tilesAt + 1} {
				if tilesAt == 0 && idx != 0 {
					continue
				}
				want := 0
				switch {
				case idx < n/Width:
					want = Width
				case idx == n/Width:
					want = int(n % Width)
				}
				if got := TileWidth(L, idx, size); got != want {
					t.Fatalf("TileWidth(%d, %d, %d) = %d, want %d", L, idx, size, got, want)
				}
			}
			if w := PartialWidth(L, size); w != int(n%Width) {
				t.Fatalf("PartialWidth(%d, %d) = %d", L, size, w)
			}
		}
		if got := TileCount(size); got != count {
			t.Fatalf("TileCount(%d) = %d, want %d", size, got, count)
		}
	}
	if TileWidth(0, ^uint64(0), 1000) != 0 {
		t.Fatal("TileWidth with a huge index must be 0, not overflow")
	}
}

func TestResumeRejectsShortEdge(t *testing.T) {
	_, err := Resume(300, func(level uint8, index uint64, w int) ([]byte, error) {
		return make([]byte, (w-1)*HashSize), nil
	})
	if err == nil {
		t.Fatal("Resume accepted an edge tile with too few hashes")
	}
	_, err = Resume(300, func(level uint8, index uint64, w int) ([]byte, error) {
		return nil, fmt.Errorf("disk on fire")
	})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("disk on fire")) {
		t.Fatalf("Resume did not pass on the read error: %v", err)
	}
}

// FuzzBuilder appends batches of the sizes the fuzzer picks and checks the
// root against the RFC 6962 definition and the tiles against a rebuild
// from scratch and a Resume.
func FuzzBuilder(f *testing.F) {
	f.Add([]byte{1, 255, 0, 1})
	f.Add([]byte{200, 56, 1, 255, 255})
	f.Fuzz(func(t *testing.T, batches []byte) {
		if len(batches) > 8 {
			batches = batches[:8]
		}
		b := New()
		var data [][]byte
		stored := map[[2]uint64][]byte{}
		for _, n := range batches {
			var hs []Hash
			for range int(n) {
				e := entry(uint64(len(data)))
				data = append(data, e)
				hs = append(hs, LeafHash(e))
			}
			for _, tl := range b.AppendTiles(hs) {
				k := [2]uint64{uint64(tl.Level), tl.Index}
				if old := stored[k]; !bytes.HasPrefix(tl.Data, old) {
					t.Fatalf("tile %d/%d rewritten, not extended", tl.Level, tl.Index)
				}
				stored[k] = tl.Data
			}
			r, err := Resume(b.Size(), func(level uint8, index uint64, w int) ([]byte, error) {
				return stored[[2]uint64{uint64(level), index}], nil
			})
			if err != nil || r.Root() != b.Root() {
				t.Fatalf("Resume at %d: %v", b.Size(), err)
			}
		}
		if b.Root() != mth(data) {
			t.Fatalf("root after %d leaves differs from RFC 6962 MTH", len(data))
		}
		if got := uint64(len(stored)); got != TileCount(b.Size()) {
			t.Fatalf("%d tiles stored, TileCount says %d", got, TileCount(b.Size()))
		}
	})
}

func sortU64(s []uint64) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func TestExpanded(t *testing.T) {
	var data []byte
	var hs []Hash
	for i := range uint64(Width) {
		h := LeafHash(entry(i))
		hs = append(hs, h)
		data = append(data, h[:]...)
	}
	full := Expand(data)
	if r, ok := full.Root(); !ok || r != SubtreeRoot(hs) {
		t.Fatalf("full tile root %x (ok %v), want %x", r, ok, SubtreeRoot(hs))
	}
	for r := uint8(0); r < Height; r++ {
		for i := uint64(0); i < Width>>r; i++ {
			got, ok := full.Node(r, i)
			if !ok || got != SubtreeRoot(hs[i<<r:(i+1)<<r]) {
				t.Fatalf("node %d/%d of a full tile wrong (ok %v)", r, i, ok)
			}
		}
		if _, ok := full.Node(r, Width>>r); ok {
			t.Fatalf("node %d/%d is past the tile but was found", r, Width>>r)
		}
	}
	part := Expand(data[:100*HashSize])
	if _, ok := part.Root(); ok {
		t.Fatal("a partial tile has no root, but Root said ok")
	}
	if _, ok := part.Node(2, 25); ok {
		t.Fatal("node 2/25 needs hashes 100..103 of a 100-hash tile")
	}
	if got, ok := part.Node(2, 24); !ok || got != SubtreeRoot(hs[96:100]) {
		t.Fatal("node 2/24 of a 100-hash tile wrong")
	}
	if part.Width() != 100 || !bytes.Equal(part.Data(37), data[:37*HashSize]) {
		t.Fatal("Width or Data wrong")
	}
}

func TestRange(t *testing.T) {
	var data [][]byte
	var r Range // the zero value is the empty tree
	if r.Root() != EmptyRoot || r.Size() != 0 {
		t.Fatal("zero Range is not the empty tree")
	}
	for n := 1; n <= 600; n++ {
		e := entry(uint64(n))
		data = append(data, e)
		r.Append(LeafHash(e))
		if r.Root() != mth(data) {
			t.Fatalf("size %d: Range root differs from MTH", n)
		}
		if n%97 == 0 { // save and restore
			c, err := NewRange(r.Size(), r.Hashes())
			if err != nil || c.Root() != r.Root() {
				t.Fatalf("size %d: restored range: %v", n, err)
			}
			r = *c
		}
	}
	// A subtree appended by its root equals its leaves appended.
	var a, b Range
	for i := range 512 {
		a.Append(LeafHash(entry(uint64(i))))
	}
	var hs []Hash
	for i := 512; i < 768; i++ {
		hs = append(hs, LeafHash(entry(uint64(i))))
		a.Append(hs[len(hs)-1])
	}
	for i := range 512 {
		b.Append(LeafHash(entry(uint64(i))))
	}
	b.AppendSubtree(8, SubtreeRoot(hs))
	if a.Root() != b.Root() || a.Size() != b.Size() {
		t.Fatal("AppendSubtree differs from appending the leaves")
	}
	if _, err := NewRange(5, []Hash{{}}); err == nil {
		t.Fatal("NewRange accepted 1 hash for size 5")
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("a misaligned subtree was accepted")
			}
		}()
		b.Append(EmptyRoot)
		b.AppendSubtree(8, EmptyRoot)
	}()
}
