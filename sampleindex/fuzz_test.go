package sampleindex

import (
	"bytes"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/custodylog/custody/internal/fuzzseeds"
)

var update = flag.Bool("update", false, "rewrite testdata: fuzz seeds and test vectors")

type seed struct {
	name string
	id   TileID
	data []byte
}

// seedLog is the small log the seeds and vectors are made from: samples
// a (5 events), b (2), c (1) and d (40), interleaved, 60 entries.
func seedLog(t testing.TB) (*testLog, *Map, *MemTiles) {
	l := newTestLog()
	for i := range 60 {
		switch {
		case i%12 == 0 && i < 60:
			l.append("a")
		case i == 7 || i == 31:
			l.append("b")
		case i == 13:
			l.append("c")
		case i < 53:
			l.append("d")
		default:
			l.append(fmt.Sprintf("e-%d", i))
		}
	}
	store := NewMemTiles()
	m := Open(store, 0, nil)
	l.flushChanges(t, m)
	if err := m.Flush(context.Background(), store.WriteTiles); err != nil {
		t.Fatal(err)
	}
	return l, m, store
}

// tileSeeds returns valid tiles of the seed log and edits of them that
// CheckTile must reject, each named after what it does.
func tileSeeds() []seed {
	l, _, store := seedLog(&testing.T{})
	_ = l
	var root, deep TileID
	var deepData []byte
	for id, d := range store.tiles {
		if id.Depth > deep.Depth || deepData == nil {
			deep, deepData = id, d
		}
	}
	rootData := store.tiles[root]
	var out []seed
	add := func(name string, id TileID, d []byte) { out = append(out, seed{name, id, d}) }
	cp := func(b []byte) []byte { return append([]byte(nil), b...) }
	add("valid-root", root, rootData)
	add("valid-deepest", deep, deepData)
	add("truncated", root, rootData[:len(rootData)-1])
	add("trailing-byte", root, append(cp(rootData), 0))
	add("empty", root, nil)
	add("no-slot", root, []byte{0, 0})
	add("wrong-tile-id", TileID{Depth: Stride}, rootData)
	// The first slot of the root tile, whatever it is, turned into a
	// leaf with bad fields.
	one := func(slotIdx int, body []byte) []byte {
		b := make([]byte, bitmapBytes)
		b[slotIdx/8] |= 0x80 >> (slotIdx % 8)
		return append(b, body...)
	}
	k := KeyOf("a")
	s := slotOf(&k, 0)
	leafBody := func(key Hash, n, last uint64, hashes int) []byte {
		b := append([]byte{slotLeaf}, key[:]...)
		b = binary.BigEndian.AppendUint64(b, n)
		b = binary.BigEndian.AppendUint64(b, last)
		return append(b, make([]byte, hashes*HashSize)...)
	}
	add("valid-single-leaf-root", root, one(s, leafBody(k, 3, 9, 2)))
	add("leaf-n-zero", root, one(s, leafBody(k, 0, 9, 0)))
	add("leaf-last-too-small", root, one(s, leafBody(k, 3, 1, 2)))
	add("leaf-range-short", root, one(s, leafBody(k, 3, 9, 1)))
	add("leaf-wrong-slot", root, one((s+1)%SlotsPerTile, leafBody(k, 3, 9, 2)))
	add("single-leaf-below-root", tileIDOf(&k, Stride), one(slotOf(&k, Stride), leafBody(k, 3, 9, 2)))
	add("bad-kind", root, one(s, []byte{7}))
	add("child-empty-hash", root, one(s, append([]byte{slotChild}, make([]byte, 32)...)))
	add("child-below-max-depth", tileIDOf(&k, MaxTileDepth), one(slotOf(&k, MaxTileDepth), append([]byte{slotChild}, k[:]...)))
	return out
}

// proofSeed is a named proof encoding for the proof fuzz seeds.
type proofSeed struct {
	name string
	data []byte
}

func proofSeeds(t testing.TB) []proofSeed {
	l, m, _ := seedLog(t)
	member := l.prove(t, m, "a", 0)
	since := l.prove(t, m, "d", 30)
	var empty, other []byte
	for i := 0; empty == nil || other == nil; i++ {
		s := fmt.Sprintf("absent-%d", i)
		p, _ := m.Prove(context.Background(), KeyOf(s))
		if p.Kind == AbsentEmpty && empty == nil {
			empty = l.prove(t, m, s, 0)
		}
		if p.Kind == AbsentOther && other == nil {
			other = l.prove(t, m, s, 0)
		}
	}
	cp := func(b []byte) []byte { return append([]byte(nil), b...) }
	set := func(b []byte, off int, v ...byte) []byte { b = cp(b); copy(b[off:], v); return b }
	h := len(ProofHeader)
	sizeOff := h + 1 + 1 // header, length byte, sample "a"
	out := []proofSeed{
		{"valid-membership", member},
		{"valid-since", since},
		{"valid-absent-empty", empty},
		{"valid-absent-other", other},
		{"empty", nil},
		{"header-only", []byte(ProofHeader)},
		{"wrong-header", set(member, 0, 'C')},
		{"truncated", member[:len(member)-1]},
		{"trailing-byte", append(cp(member), 0)},
		{"sample-empty", set(member, h, 0)},
		{"sample-bad-char", set(member, h+1, ' ')},
		{"since-beyond-size", set(member, sizeOff+8, 0xff)},
		{"list-beyond-size", set(member, sizeOff+16, 0xff)},
		{"old-list-with-since-0", set(member, sizeOff+24+32+7, 1)},
		{"map-depth-257", deep257(t, empty)},
		{"kind-unknown", set(empty, len(empty)-1, 3)},
		{"kind-member-without-list", set(empty, len(empty)-1, 1)},
		{"kind-absent-with-list", set(member, len(member)-1, 0)},
	}
	return out
}

// deep257 returns the absence proof with a map path of 257 siblings.
func deep257(t testing.TB, data []byte) []byte {
	p, err := ParseProof(data)
	if err != nil {
		t.Fatal(err)
	}
	p.Map.Siblings = make([]Hash, 257)
	for i := range p.Map.Siblings {
		p.Map.Siblings[i] = Hash{1}
	}
	return p.Marshal()
}

func writeSeed(t *testing.T, target, name string, args ...any) {
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.WriteString("go test fuzz v1\n")
	for _, a := range args {
		switch v := a.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%s)\n", strconv.Quote(string(v)))
		case string:
			fmt.Fprintf(&b, "string(%s)\n", strconv.Quote(v))
		}
	}
	if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestWriteSeeds rewrites the fuzz seed corpora with -update.
func TestWriteSeeds(t *testing.T) {
	if !*update {
		return
	}
	for _, s := range tileSeeds() {
		writeSeed(t, "FuzzCheckTile", s.name, s.id.Key(), s.data)
	}
	for _, s := range proofSeeds(t) {
		writeSeed(t, "FuzzParseProof", s.name, s.data)
	}
	root := Hash{1, 2, 3}
	for name, line := range map[string]string{
		"valid-line": FormatExtension(root), "valid-empty-root": FormatExtension(EmptyMapRoot),
		"keyword-only": ExtensionKeyword, "no-space": ExtensionKeyword + "AQID",
		"short-root": ExtensionKeyword + " AQID", "non-canonical": FormatExtension(root)[:63] + "B",
		"url-base64": ExtensionKeyword + " " + "____" + FormatExtension(root)[25:], "two-spaces": ExtensionKeyword + "  " + FormatExtension(root)[21:],
		"trailing-space": FormatExtension(root) + " ",
	} {
		writeSeed(t, "FuzzParseExtension", name, line)
	}
}

// TestFuzzSeeds checks the checked-in seed corpora: valid-* seeds parse,
// every other seed is rejected.
func TestFuzzSeeds(t *testing.T) {
	fuzzseeds.Check(t, map[string]func(args []any) error{
		"FuzzCheckTile": func(a []any) error {
			id, err := ParseTileKey(a[0].([]byte))
			if err != nil {
				return err
			}
			return CheckTile(id, a[1].([]byte))
		},
		"FuzzParseProof": func(a []any) error { _, err := ParseProof(a[0].([]byte)); return err },
		"FuzzParseExtension": func(a []any) error {
			_, err := ParseExtension(a[0].(string))
			return err
		},
	})
}

// FuzzCheckTile: a tile that parses re-encodes to exactly its bytes, and
// its root can be computed.
func FuzzCheckTile(f *testing.F) {
	f.Fuzz(func(t *testing.T, key, data []byte) {
		id, err := ParseTileKey(key)
		if err != nil {
			return
		}
		if !bytes.Equal(id.Key(), key) {
			t.Fatalf("tile key %x re-encodes as %x", key, id.Key())
		}
		tl, err := decodeTile(id, data)
		if err != nil {
			return
		}
		if got := tl.encode(); !bytes.Equal(got, data) {
			t.Fatalf("tile re-encodes as %x, want %x", got, data)
		}
		n := 0
		want := tl.hashRange(0, SlotsPerTile, &n)
		for range 2 { // the second rehash computes the kept nodes
			tl.stale = allSlots
			tl.rehash(&n)
			if tl.root != want {
				t.Fatalf("tile root %x (kept nodes: %v), whole rehash %x", tl.root, tl.nodes != nil, want)
			}
		}
	})
}

// FuzzParseProof: a proof that parses re-encodes to exactly its bytes,
// and Verify does not panic on it.
func FuzzParseProof(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseProof(data)
		if err != nil {
			return
		}
		if got := p.Marshal(); !bytes.Equal(got, data) {
			t.Fatalf("proof re-encodes as %x, want %x", got, data)
		}
		VerifyProof(p, req(p.Sample, p.Since), Trusted{Size: p.Size})
	})
}

// FuzzParseExtension: a line that parses is exactly FormatExtension of
// its root.
func FuzzParseExtension(f *testing.F) {
	f.Fuzz(func(t *testing.T, line string) {
		r, err := ParseExtension(line)
		if err != nil {
			return
		}
		if FormatExtension(r) != line {
			t.Fatalf("%q parses but formats as %q", line, FormatExtension(r))
		}
	})
}
