package verify

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// refLog is a tiled log built by the tests with a reference implementation
// that shares no code with the package: hashes are computed with
// crypto/sha256 directly, tile contents by a naive recursive tree hash, and
// roots by x/mod's tlog.
type refLog struct {
	origin  string
	signer  note.Signer
	vkey    string
	entries [][]byte
	stored  []tlog.Hash  // x/mod stored hashes of all entries
	levels  [][][32]byte // levels[L] = tile-level L hashes (complete ones)
}

func refLeafHash(e []byte) [32]byte {
	return sha256.Sum256(append([]byte{0}, e...))
}

func refNodeHash(l, r [32]byte) [32]byte {
	return sha256.Sum256(append(append([]byte{1}, l[:]...), r[:]...))
}

// refTreeHash is RFC 6962 MTH over hashes, recursively.
func refTreeHash(hs [][32]byte) [32]byte {
	switch len(hs) {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return hs[0]
	}
	k := 1
	for k*2 < len(hs) {
		k *= 2
	}
	return refNodeHash(refTreeHash(hs[:k]), refTreeHash(hs[k:]))
}

var (
	refLogsMu sync.Mutex
	refLogs   = map[int]*refLog{}
)

// newRefLog returns a log of n entries (cached: building 70000 takes a
// moment), signed with a deterministic key.
func newRefLog(t testing.TB, n int) *refLog {
	t.Helper()
	refLogsMu.Lock()
	defer refLogsMu.Unlock()
	if l, ok := refLogs[n]; ok {
		return l
	}
	origin := "example.com/custody-test"
	signer, vkey := testLogKey(t, origin)
	l := &refLog{origin: origin, signer: signer, vkey: vkey}
	for i := 0; i < n; i++ {
		e := fmt.Sprintf("{\"n\":%d,\"pad\":%q}", i, strings.Repeat("x", i%37))
		if i == 3 {
			e = strings.Repeat("big", 3000)
		}
		l.entries = append(l.entries, []byte(e))
	}
	hr := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = l.stored[x]
		}
		return out, nil
	})
	for i, e := range l.entries {
		hs, err := tlog.StoredHashes(int64(i), e, hr)
		if err != nil {
			t.Fatal(err)
		}
		l.stored = append(l.stored, hs...)
	}
	level := make([][32]byte, n)
	for i, e := range l.entries {
		level[i] = refLeafHash(e)
	}
	for len(level) > 0 {
		l.levels = append(l.levels, level)
		var up [][32]byte
		for i := 0; i+256 <= len(level); i += 256 {
			up = append(up, refTreeHash(level[i:i+256]))
		}
		level = up
	}
	refLogs[n] = l
	return l
}

func (l *refLog) hashReader() tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = l.stored[x]
		}
		return out, nil
	})
}

// root is the root of the first size entries, by x/mod.
func (l *refLog) root(t testing.TB, size uint64) [32]byte {
	t.Helper()
	if size == 0 {
		return sha256.Sum256(nil)
	}
	h, err := tlog.TreeHash(int64(size), l.hashReader())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (l *refLog) sign(t testing.TB, cp Checkpoint) []byte {
	t.Helper()
	msg, err := note.Sign(&note.Note{Text: string(cp.Marshal())}, l.signer)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// checkpoint returns the signed checkpoint of the first size entries.
func (l *refLog) checkpoint(t testing.TB, size uint64) (Checkpoint, []byte) {
	cp := Checkpoint{Origin: l.origin, Size: size, Root: l.root(t, size)}
	return cp, l.sign(t, cp)
}

func (l *refLog) verifiers(t testing.TB) note.Verifiers {
	return mustVerifiers(t, l.vkey)
}

// indexPathRef writes n the tlog-tiles way, independently of indexPath.
func indexPathRef(n uint64) string {
	s := fmt.Sprintf("%03d", n%1000)
	for n >= 1000 {
		n /= 1000
		s = fmt.Sprintf("x%03d/%s", n%1000, s)
	}
	return s
}

// addSize writes into files every tile and bundle of the tree of size
// entries and its signed checkpoint.
func (l *refLog) addSize(t testing.TB, files map[string][]byte, size uint64) {
	t.Helper()
	for L := 0; L < len(l.levels); L++ {
		n := size >> (8 * uint(L))
		if n == 0 {
			break
		}
		for i := uint64(0); i*256 < n; i++ {
			w := min(256, n-i*256)
			var b []byte
			for _, h := range l.levels[L][i*256 : i*256+w] {
				b = append(b, h[:]...)
			}
			suffix := ""
			if w < 256 {
				suffix = fmt.Sprintf(".p/%d", w)
			}
			files[fmt.Sprintf("tile/%d/%s%s", L, indexPathRef(i), suffix)] = b
			if L == 0 {
				var bundle []byte
				for _, e := range l.entries[i*256 : i*256+w] {
					bundle = binary.BigEndian.AppendUint16(bundle, uint16(len(e)))
					bundle = append(bundle, e...)
				}
				files[fmt.Sprintf("tile/entries/%s%s", indexPathRef(i), suffix)] = bundle
			}
		}
	}
	_, files["checkpoint"] = l.checkpoint(t, size)
}

func (l *refLog) files(t testing.TB, sizes ...uint64) map[string][]byte {
	files := map[string][]byte{}
	for _, s := range sizes {
		l.addSize(t, files, s)
	}
	return files
}

// memSource serves files from memory and records what was asked.
type memSource struct {
	mu    sync.Mutex
	files map[string][]byte
	reqs  []string
}

func (s *memSource) ReadCheckpoint(ctx context.Context) ([]byte, error) {
	return s.read("checkpoint", false)
}

func (s *memSource) ReadTile(ctx context.Context, a TileAddr) ([]byte, error) {
	return s.read(a.Path(), true)
}

func (s *memSource) read(p string, tile bool) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = append(s.reqs, p)
	b, ok := s.files[p]
	if !ok {
		if tile {
			return nil, fmt.Errorf("mem %s: %w", p, ErrTileNotFound)
		}
		return nil, fmt.Errorf("mem %s: missing", p)
	}
	return bytes.Clone(b), nil
}

func (s *memSource) requested(p string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Contains(s.reqs, p)
}

// serveFiles serves files under /log/, gzipping entry bundles regardless of
// what the client asks, as tlog-tiles allows. It records request paths and
// fails the test if a request lacks "Accept-Encoding: gzip".
func serveFiles(t testing.TB, files map[string][]byte) (*httptest.Server, func() []string) {
	var mu sync.Mutex
	var reqs []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := strings.CutPrefix(r.URL.Path, "/log/")
		mu.Lock()
		reqs = append(reqs, p)
		mu.Unlock()
		if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			t.Errorf("request for %s has Accept-Encoding %q", r.URL.Path, r.Header.Get("Accept-Encoding"))
		}
		b, found := files[p]
		if !ok || !found {
			http.NotFound(w, r)
			return
		}
		if strings.HasPrefix(p, "tile/entries/") {
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			zw.Write(b)
			zw.Close()
			return
		}
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(reqs)
	}
}

func writeDir(t testing.TB, files map[string][]byte) string {
	dir := t.TempDir()
	for p, b := range files {
		name := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestReferenceTilesAgainstXMod(t *testing.T) {
	l := newRefLog(t, 70000)
	files := l.files(t, 70000)
	n := 0
	for _, a := range NewTiles(0, 70000) {
		w := a.Width
		if w == 0 {
			w = TileWidth
		}
		data, err := tlog.ReadTileData(tlog.Tile{H: TileHeight, L: int(a.Level), N: int64(a.Index), W: w}, l.hashReader())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, files[a.Path()]) {
			t.Fatalf("reference tile %s differs from x/mod's", a.Path())
		}
		n++
	}
	if n != 273+1+1+1+1 {
		t.Errorf("checked %d tiles", n)
	}
	for _, size := range []uint64{1, 2, 3, 255, 256, 257, 1000, 65536, 70000} {
		if l.root(t, size) != refTreeHash(l.levels[0][:size]) {
			t.Errorf("x/mod and reference roots differ for size %d", size)
		}
	}
}

func TestClientSizes(t *testing.T) {
	big := newRefLog(t, 70000)
	for _, size := range []uint64{0, 1, 255, 256, 257, 1000, 70000} {
		files := big.files(t, size)
		srv, reqs := serveFiles(t, files)
		gz := NewHTTPSource(srv.URL+"/log/", srv.Client()).(*httpSource)
		gz.accept = acceptGzip // as to a log elsewhere: serveFiles wants it
		sources := map[string]Source{
			"http": gz,
			"dir":  NewDirSource(writeDir(t, files)),
		}
		for name, src := range sources {
			t.Run(fmt.Sprintf("%d/%s", size, name), func(t *testing.T) {
				testClientSize(t, big, size, src)
			})
		}
		for _, p := range reqs() {
			if _, ok := files[p]; !ok {
				t.Errorf("size %d: client asked for %s, which the log does not have", size, p)
			}
		}
	}
}

func testClientSize(t *testing.T, l *refLog, size uint64, src Source) {
	ctx := context.Background()
	c := NewClient(src, l.origin, l.verifiers(t), nil)
	cp, signed, err := c.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantCP, wantNote := l.checkpoint(t, size)
	if cp.Size != size || cp.Root != wantCP.Root || !bytes.Equal(signed, wantNote) {
		t.Fatalf("Checkpoint = %+v", cp)
	}
	root := tlog.Hash(cp.Root)

	// Inclusion proofs, checked by x/mod.
	for _, i := range []uint64{0, 1, size / 2, size - 1, 254, 255, 256, 257, 511, 512, 65535, 65536, 69999} {
		if i >= size {
			continue
		}
		p, err := c.InclusionProof(ctx, i, cp)
		if err != nil {
			t.Fatalf("InclusionProof(%d): %v", i, err)
		}
		rp := make(tlog.RecordProof, len(p))
		for j := range p {
			rp[j] = p[j]
		}
		if err := tlog.CheckRecord(rp, int64(size), root, int64(i), refLeafHash(l.entries[i])); err != nil {
			t.Errorf("x/mod rejects inclusion proof for %d in %d: %v", i, size, err)
		}
	}
	if _, err := c.InclusionProof(ctx, size, cp); !errors.Is(err, ErrIndexOutOfRange) {
		t.Errorf("InclusionProof(size) = %v", err)
	}

	// Consistency proofs, checked by x/mod, and treeRoot.
	for _, old := range []uint64{1, 2, 3, 7, 8, 255, 256, 257, size / 2, size - 1, size, 65536} {
		if old == 0 || old > size {
			continue
		}
		p, err := c.ConsistencyProof(ctx, old, cp)
		if err != nil {
			t.Fatalf("ConsistencyProof(%d): %v", old, err)
		}
		tp := make(tlog.TreeProof, len(p))
		for j := range p {
			tp[j] = p[j]
		}
		oldRoot := l.root(t, old)
		if err := tlog.CheckTree(tp, int64(size), root, int64(old), oldRoot); err != nil {
			t.Errorf("x/mod rejects consistency proof %d -> %d: %v", old, size, err)
		}
		if r, err := c.treeRoot(ctx, old, cp); err != nil || r != oldRoot {
			t.Errorf("treeRoot(%d) = %x, %v", old, r, err)
		}
		oldCP, oldNote := l.checkpoint(t, old)
		if _, err := c.CheckExtends(ctx, oldCP, oldNote, cp); err != nil {
			t.Errorf("CheckExtends(%d -> %d): %v", old, size, err)
		}
	}
	if p, err := c.ConsistencyProof(ctx, 0, cp); err != nil || len(p) != 0 {
		t.Errorf("ConsistencyProof(0) = %v, %v", p, err)
	}
	if _, err := c.ConsistencyProof(ctx, size+1, cp); !errors.Is(err, ErrSizeOrder) {
		t.Errorf("ConsistencyProof(size+1) = %v", err)
	}

	// All entries.
	var got [][]byte
	err = c.Entries(ctx, 0, size, cp, func(i uint64, e []byte) error {
		if i != uint64(len(got)) {
			return fmt.Errorf("entry %d out of order", i)
		}
		got = append(got, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if uint64(len(got)) != size {
		t.Fatalf("Entries returned %d entries, want %d", len(got), size)
	}
	for i := range got {
		if !bytes.Equal(got[i], l.entries[i]) {
			t.Fatalf("entry %d = %q, want %q", i, got[i], l.entries[i])
		}
	}

	// The same through ReadBundles, whole and from the middle of a bundle:
	// the leaf hashes and subtree roots it hands out are the reference
	// ones and fold to the signed root, and what prepare leaves in Scratch
	// reaches consume with the same bundle.
	for _, from := range []uint64{0, size / 3} {
		var leaves []Hash
		err = c.ReadBundles(ctx, from, size, cp, func(b *Bundle) {
			mark, _ := b.Scratch.(*[2]uint64)
			if mark == nil {
				mark = new([2]uint64)
			}
			*mark = [2]uint64{b.Start, uint64(len(b.Entries))}
			b.Scratch = mark
		}, func(b *Bundle) error {
			if mark, ok := b.Scratch.(*[2]uint64); !ok || *mark != [2]uint64{b.Start, uint64(len(b.Entries))} {
				return fmt.Errorf("bundle at %d: prepare's scratch is %v", b.Start, b.Scratch)
			}
			if b.Start != from+uint64(len(leaves)) || len(b.Entries) == 0 || len(b.Entries) > TileWidth || len(b.LeafHashes) != len(b.Entries) {
				return fmt.Errorf("bundle at %d of %d entries, %d hashes, after %d entries", b.Start, len(b.Entries), len(b.LeafHashes), len(leaves))
			}
			for j, e := range b.Entries {
				if !bytes.Equal(e, l.entries[b.Start+uint64(j)]) || b.LeafHashes[j] != refLeafHash(e) {
					return fmt.Errorf("entry %d or its leaf hash wrong", b.Start+uint64(j))
				}
			}
			want := Hash{}
			if len(b.Entries) == TileWidth {
				want = refTreeHash(b.LeafHashes)
			}
			if b.Root != want {
				return fmt.Errorf("bundle at %d of %d entries: root %x, want %x", b.Start, len(b.Entries), b.Root, want)
			}
			leaves = append(leaves, b.LeafHashes...)
			return nil
		})
		if err != nil {
			t.Fatalf("ReadBundles from %d: %v", from, err)
		}
		if uint64(len(leaves)) != size-from {
			t.Fatalf("ReadBundles from %d: %d entries", from, len(leaves))
		}
		if from == 0 && refTreeHash(leaves) != cp.Root {
			t.Errorf("the leaf hashes from ReadBundles do not make the signed root")
		}
	}

	// A sub-range.
	start, end := size/3, size/2+1
	if end > size {
		end = size
	}
	var sub []uint64
	if err := c.Entries(ctx, start, end, cp, func(i uint64, e []byte) error {
		if !bytes.Equal(e, l.entries[i]) {
			return fmt.Errorf("entry %d wrong", i)
		}
		sub = append(sub, i)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if uint64(len(sub)) != end-start || (len(sub) > 0 && sub[0] != start) {
		t.Errorf("Entries(%d, %d) gave %d entries", start, end, len(sub))
	}
	if err := c.Entries(ctx, 0, size+1, cp, func(uint64, []byte) error { return nil }); err == nil {
		t.Error("Entries beyond the tree accepted")
	}
}

// kindOf returns the evidence kind of err, or a description of a plain
// error.
func kindOf(err error) string {
	if err == nil {
		return "no error"
	}
	if ve, ok := IsVerificationError(err); ok {
		return ve.Evidence.Kind
	}
	return "plain error: " + err.Error()
}

func flipAt(b []byte, i int) []byte {
	b = bytes.Clone(b)
	b[i] ^= 0x20
	return b
}

func TestClientTamper(t *testing.T) {
	ctx := context.Background()
	l := newRefLog(t, 1000)
	cp1000, note1000 := l.checkpoint(t, 1000)

	client := func(files map[string][]byte) (*Client, *memSource) {
		src := &memSource{files: files}
		return NewClient(src, l.origin, l.verifiers(t), nil), src
	}
	mustCP := func(t *testing.T, c *Client) (Checkpoint, []byte) {
		t.Helper()
		cp, n, err := c.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return cp, n
	}
	allEntries := func(c *Client, cp Checkpoint) error {
		return c.Entries(ctx, 0, cp.Size, cp, func(uint64, []byte) error { return nil })
	}

	t.Run("hash tile flipped", func(t *testing.T) {
		files := l.files(t, 1000)
		files["tile/0/001"] = flipAt(files["tile/0/001"], 77)
		c, _ := client(files)
		cp, n := mustCP(t, c)
		_, err := c.InclusionProof(ctx, 300, cp)
		if kindOf(err) != EvidenceBadTile {
			t.Fatalf("InclusionProof: %s", kindOf(err))
		}
		ve, _ := IsVerificationError(err)
		if ve.Evidence.Tile != "tile/0/001" || ve.Evidence.NewCheckpoint != string(n) || ve.Evidence.Origin != l.origin ||
			ve.Evidence.Expected == "" || ve.Evidence.Computed == "" || ve.Evidence.Expected == ve.Evidence.Computed || ve.Evidence.Time.IsZero() {
			t.Errorf("evidence %+v", ve.Evidence)
		}
		if js, err := json.Marshal(ve.Evidence); err != nil || !bytes.Contains(js, []byte(`"kind":"bad-tile"`)) {
			t.Errorf("evidence JSON %s, %v", js, err)
		}
		if kindOf(allEntries(c, cp)) != EvidenceBadTile {
			t.Errorf("Entries: %s", kindOf(allEntries(c, cp)))
		}
		// Proofs not touching the bad tile still work.
		if _, err := c.InclusionProof(ctx, 600, cp); err != nil {
			t.Errorf("InclusionProof(600): %v", err)
		}
	})

	t.Run("level 1 hash tile flipped", func(t *testing.T) {
		// A full tile above level 0 is checked against the tile above it.
		big := newRefLog(t, 70000)
		files := big.files(t, 70000)
		files["tile/1/000"] = flipAt(files["tile/1/000"], 8000)
		c := NewClient(&memSource{files: files}, big.origin, big.verifiers(t), nil)
		cp, _ := mustCP(t, c)
		_, err := c.InclusionProof(ctx, 5, cp)
		if kindOf(err) != EvidenceBadTile {
			t.Fatalf("InclusionProof: %s", kindOf(err))
		}
		if ve, _ := IsVerificationError(err); ve.Evidence.Tile != "tile/1/000" {
			t.Errorf("evidence %+v", ve.Evidence)
		}
		// Leaves under the partial level-1 tile are unaffected.
		if _, err := c.InclusionProof(ctx, 69000, cp); err != nil {
			t.Error(err)
		}
	})

	t.Run("hash tile truncated", func(t *testing.T) {
		files := l.files(t, 1000)
		files["tile/0/000"] = files["tile/0/000"][:8160]
		c, _ := client(files)
		cp, _ := mustCP(t, c)
		if _, err := c.InclusionProof(ctx, 3, cp); kindOf(err) != EvidenceBadTile {
			t.Errorf("InclusionProof: %s", kindOf(err))
		}
	})

	t.Run("partial hash tile flipped", func(t *testing.T) {
		// The tree's partial tiles are checked by recomputing the root:
		// a bad one is indistinguishable from a bad root.
		files := l.files(t, 1000)
		files["tile/1/000.p/3"] = flipAt(files["tile/1/000.p/3"], 40)
		c, _ := client(files)
		cp, _ := mustCP(t, c)
		for name, err := range map[string]error{
			"inclusion": func() error { _, err := c.InclusionProof(ctx, 0, cp); return err }(),
			"entries":   allEntries(c, cp),
		} {
			if kindOf(err) != EvidenceRootMismatch {
				t.Errorf("%s: %s", name, kindOf(err))
			}
		}
	})

	t.Run("entry bundle byte flipped", func(t *testing.T) {
		files := l.files(t, 1000)
		b := files["tile/entries/001"]
		// Find entry 10 of the bundle (index 266) and flip a byte in it.
		off := 0
		for j := 0; j < 10; j++ {
			off += 2 + int(binary.BigEndian.Uint16(b[off:]))
		}
		files["tile/entries/001"] = flipAt(b, off+2+3)
		c, _ := client(files)
		cp, _ := mustCP(t, c)
		var seen uint64
		err := c.Entries(ctx, 0, 1000, cp, func(i uint64, e []byte) error { seen = i + 1; return nil })
		if kindOf(err) != EvidenceBadEntry {
			t.Fatalf("Entries: %s", kindOf(err))
		}
		ve, _ := IsVerificationError(err)
		if ve.Evidence.Index == nil || *ve.Evidence.Index != 266 || ve.Evidence.Tile != "tile/entries/001" {
			t.Errorf("evidence %+v", ve.Evidence)
		}
		if seen != 256 {
			t.Errorf("fn saw entries up to %d; want none of the bad bundle", seen)
		}
	})

	t.Run("entry bundle missing an entry", func(t *testing.T) {
		files := l.files(t, 1000)
		b := files["tile/entries/002"]
		off := 0
		for j := 0; j < 255; j++ {
			off += 2 + int(binary.BigEndian.Uint16(b[off:]))
		}
		files["tile/entries/002"] = b[:off]
		c, _ := client(files)
		cp, _ := mustCP(t, c)
		err := c.Entries(ctx, 600, 700, cp, func(uint64, []byte) error { return nil })
		if kindOf(err) != EvidenceBadEntry {
			t.Fatalf("Entries: %s", kindOf(err))
		}
		if ve, _ := IsVerificationError(err); ve.Evidence.Tile != "tile/entries/002" {
			t.Errorf("evidence %+v", ve.Evidence)
		}
	})

	t.Run("entry bundle with an extra entry", func(t *testing.T) {
		files := l.files(t, 1000)
		files["tile/entries/003.p/232"] = append(bytes.Clone(files["tile/entries/003.p/232"]), 0, 1, 'x')
		c, _ := client(files)
		cp, _ := mustCP(t, c)
		if err := allEntries(c, cp); kindOf(err) != EvidenceBadEntry {
			t.Fatalf("Entries: %s", kindOf(err))
		}
	})

	t.Run("entries swapped", func(t *testing.T) {
		// Each entry is well-formed but in the wrong place.
		files := l.files(t, 1000)
		var b []byte
		for j := 0; j < 256; j++ {
			e := l.entries[256+(j^1)]
			b = binary.BigEndian.AppendUint16(b, uint16(len(e)))
			b = append(b, e...)
		}
		files["tile/entries/001"] = b
		c, _ := client(files)
		cp, _ := mustCP(t, c)
		err := allEntries(c, cp)
		if kindOf(err) != EvidenceBadEntry {
			t.Fatalf("Entries: %s", kindOf(err))
		}
		if ve, _ := IsVerificationError(err); *ve.Evidence.Index != 256 {
			t.Errorf("index %d", *ve.Evidence.Index)
		}
	})

	t.Run("checkpoint signature flipped", func(t *testing.T) {
		files := l.files(t, 1000)
		cpNote := files["checkpoint"]
		files["checkpoint"] = flipAt(cpNote, len(cpNote)-10)
		c, _ := client(files)
		_, _, err := c.Checkpoint(ctx)
		if kindOf(err) != EvidenceBadSignature {
			t.Fatalf("Checkpoint: %s", kindOf(err))
		}
		ve, _ := IsVerificationError(err)
		var invalid *note.InvalidSignatureError
		if !errors.As(err, &invalid) || ve.Evidence.NewCheckpoint != string(files["checkpoint"]) {
			t.Errorf("error %v, evidence %+v", err, ve.Evidence)
		}
	})

	t.Run("checkpoint by another key", func(t *testing.T) {
		files := l.files(t, 1000)
		otherSigner, _ := testLogKey(t, "example.com/impostor")
		files["checkpoint"], _ = note.Sign(&note.Note{Text: string(cp1000.Marshal())}, otherSigner)
		c, _ := client(files)
		if _, _, err := c.Checkpoint(ctx); kindOf(err) != EvidenceBadSignature {
			t.Fatalf("Checkpoint: %s", kindOf(err))
		}
	})

	t.Run("checkpoint for another origin", func(t *testing.T) {
		files := l.files(t, 1000)
		c := NewClient(&memSource{files: files}, "example.com/other-origin", l.verifiers(t), nil)
		_, _, err := c.Checkpoint(ctx)
		if kindOf(err) != EvidenceBadSignature || !errors.Is(err, ErrOriginMismatch) {
			t.Fatalf("Checkpoint: %v", err)
		}
	})

	t.Run("checkpoint missing", func(t *testing.T) {
		c, _ := client(map[string][]byte{})
		if _, _, err := c.Checkpoint(ctx); err == nil || kindOf(err) == EvidenceBadSignature {
			t.Fatalf("Checkpoint: %s", kindOf(err))
		}
	})

	t.Run("wrong root for size", func(t *testing.T) {
		files := l.files(t, 1000)
		bad := Checkpoint{Origin: l.origin, Size: 1000, Root: l.root(t, 999)}
		badNote := l.sign(t, bad)
		files["checkpoint"] = badNote
		c, _ := client(files)
		cp, _ := mustCP(t, c) // validly signed: the lie is only in the root
		for name, err := range map[string]error{
			"inclusion":   func() error { _, err := c.InclusionProof(ctx, 5, cp); return err }(),
			"consistency": func() error { _, err := c.ConsistencyProof(ctx, 500, cp); return err }(),
			"entries":     allEntries(c, cp),
		} {
			if kindOf(err) != EvidenceRootMismatch {
				t.Errorf("%s: %s", name, kindOf(err))
			}
		}
		// And CheckExtends against the true checkpoint shows a fork.
		_, err := c.CheckExtends(ctx, cp1000, note1000, cp)
		if kindOf(err) != EvidenceFork {
			t.Errorf("CheckExtends: %s", kindOf(err))
		}
		ve, _ := IsVerificationError(err)
		if ve.Evidence.OldCheckpoint != string(note1000) || ve.Evidence.NewCheckpoint != string(badNote) {
			t.Errorf("fork evidence %+v", ve.Evidence)
		}
	})

	t.Run("partial tiles deleted", func(t *testing.T) {
		// The log grew from 300 to 1000 and deleted the partial tile and
		// bundle of size 300; a client holding the 300 checkpoint reads the
		// full ones and cuts them.
		files := l.files(t, 300, 1000)
		delete(files, "tile/0/001.p/44")
		delete(files, "tile/entries/001.p/44")
		c, src := client(files)
		_, note300 := l.checkpoint(t, 300)
		cp300, err := c.OpenCheckpoint(note300)
		if err != nil {
			t.Fatal(err)
		}
		p, err := c.InclusionProof(ctx, 290, cp300)
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckInclusion(290, 300, refLeafHash(l.entries[290]), p, cp300.Root); err != nil {
			t.Error(err)
		}
		var n uint64
		if err := c.Entries(ctx, 0, 300, cp300, func(i uint64, e []byte) error {
			if !bytes.Equal(e, l.entries[i]) {
				return fmt.Errorf("entry %d wrong", i)
			}
			n++
			return nil
		}); err != nil || n != 300 {
			t.Fatalf("Entries: %d, %v", n, err)
		}
		for _, p := range []string{"tile/0/001.p/44", "tile/0/001", "tile/entries/001.p/44", "tile/entries/001"} {
			if !src.requested(p) {
				t.Errorf("%s was not requested", p)
			}
		}
		cp, _ := mustCP(t, c)
		if _, err := c.CheckExtends(ctx, cp300, note300, cp); err != nil {
			t.Error(err)
		}
	})

	t.Run("tiles missing", func(t *testing.T) {
		files := l.files(t, 1000)
		delete(files, "tile/0/003.p/232")
		delete(files, "tile/entries/000")
		c, _ := client(files)
		cp, _ := mustCP(t, c)
		_, err := c.InclusionProof(ctx, 999, cp)
		if !errors.Is(err, ErrTileNotFound) || kindOf(err) == EvidenceBadTile {
			t.Errorf("InclusionProof: %v", err)
		}
		err = c.Entries(ctx, 0, 10, cp, func(uint64, []byte) error { return nil })
		if !errors.Is(err, ErrTileNotFound) {
			t.Errorf("Entries: %v", err)
		}
		if _, ok := IsVerificationError(err); ok {
			t.Errorf("a missing tile is reported as log misbehaviour: %v", err)
		}
	})

	t.Run("rollback and inconsistency", func(t *testing.T) {
		c, _ := client(l.files(t, 1000))
		cp, _ := mustCP(t, c)
		cp500, note500 := l.checkpoint(t, 500)
		if _, err := c.CheckExtends(ctx, cp, note1000, cp500); kindOf(err) != EvidenceRollback {
			t.Errorf("rollback: %s", kindOf(err))
		}
		// A checkpoint of size 500 over a different history, signed by
		// the log: the 1000 tree does not extend it.
		hs := slices.Clone(l.levels[0][:500])
		hs[123] = refLeafHash([]byte("rewritten"))
		forked := Checkpoint{Origin: l.origin, Size: 500, Root: refTreeHash(hs)}
		forkedNote := l.sign(t, forked)
		_, err := c.CheckExtends(ctx, forked, forkedNote, cp)
		if kindOf(err) != EvidenceInconsistent {
			t.Fatalf("inconsistent: %s", kindOf(err))
		}
		ve, _ := IsVerificationError(err)
		if len(ve.Evidence.Proof) == 0 || ve.Evidence.OldSize != 500 || ve.Evidence.NewSize != 1000 ||
			ve.Evidence.Expected != b64(forked.Root) || ve.Evidence.Computed != b64(cp500.Root) ||
			ve.Evidence.OldCheckpoint != string(forkedNote) {
			t.Errorf("evidence %+v", ve.Evidence)
		}
		var ce *consistencyError
		if !errors.As(err, &ce) {
			t.Errorf("error does not wrap the consistencyError: %v", err)
		}
		if _, err := c.CheckExtends(ctx, cp500, note500, cp); err != nil {
			t.Error(err)
		}
		if _, err := c.CheckExtends(ctx, Checkpoint{Origin: "x", Size: 1}, nil, cp); err == nil || kindOf(err) != "plain error: "+err.Error() {
			t.Errorf("different origins: %v", err)
		}
	})

	t.Run("fn error and cancellation", func(t *testing.T) {
		c, _ := client(l.files(t, 1000))
		cp, _ := mustCP(t, c)
		stop := errors.New("stop")
		err := c.Entries(ctx, 0, 1000, cp, func(i uint64, _ []byte) error {
			if i == 300 {
				return stop
			}
			return nil
		})
		if err != stop {
			t.Errorf("Entries = %v, want fn's error", err)
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := c.Entries(cctx, 0, 1000, cp, func(uint64, []byte) error { return nil }); err == nil {
			t.Error("Entries with a cancelled context succeeded")
		}
	})
}

func TestClientTrustPolicy(t *testing.T) {
	ctx := context.Background()
	l := newRefLog(t, 257)
	w := newTestWitness("witness.example/w")
	policy, err := ParseTrustPolicy([]byte("log " + l.vkey + "\nwitness w " + w.vkey + "\nquorum w\n"))
	if err != nil {
		t.Fatal(err)
	}
	files := l.files(t, 257)
	// Verifiers come from the policy when nil.
	c := NewClient(&memSource{files: files}, l.origin, nil, policy)
	if _, _, err := c.Checkpoint(ctx); kindOf(err) != EvidenceQuorum {
		t.Fatalf("uncosigned: %s", kindOf(err))
	}
	cp, _ := l.checkpoint(t, 257)
	files["checkpoint"] = cosign(t, string(cp.Marshal()), l.signer, time.Now().Unix()-5, w)
	got, _, err := c.Checkpoint(ctx)
	if err != nil || got.Root != cp.Root {
		t.Fatalf("cosigned: %v", err)
	}
	// A witness cosignature that does not verify.
	lines := strings.SplitAfter(string(files["checkpoint"]), "\n")
	last := strings.TrimSuffix(lines[len(lines)-2], "\n")
	lines[len(lines)-2] = flipSigChar(last) + "\n"
	files["checkpoint"] = []byte(strings.Join(lines, ""))
	if _, _, err := c.Checkpoint(ctx); kindOf(err) != EvidenceBadSignature {
		t.Fatalf("bad cosignature: %s", kindOf(err))
	}
}
