package verify

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/custodylog/custody/internal/fuzzseeds"
)

// Seed corpora for these targets are in testdata/fuzz/<FuzzName>/.

func FuzzParseCheckpoint(f *testing.F) {
	f.Fuzz(func(t *testing.T, text []byte) {
		c, err := ParseCheckpoint(text)
		if err != nil {
			if !errors.Is(err, ErrMalformedCheckpoint) {
				t.Fatalf("ParseCheckpoint(%q) error %v does not wrap ErrMalformedCheckpoint", text, err)
			}
			return
		}
		if m := c.Marshal(); !bytes.Equal(m, text) {
			t.Fatalf("Marshal(ParseCheckpoint(%q)) = %q", text, m)
		}
		if c.Origin == "" || (c.Size == 0 && c.Root != EmptyRoot) {
			t.Fatalf("ParseCheckpoint(%q) accepted %+v", text, c)
		}
	})
}

func FuzzParseTilePath(f *testing.F) {
	f.Fuzz(func(t *testing.T, p string) {
		a, err := ParseTilePath(p)
		// x/mod parses the sumdb form of the same path ("tile/8/…",
		// "tile/8/data/…"); over the range both support, they must agree.
		sumdb, isTile := strings.CutPrefix(p, "tile/")
		sumdb = "tile/8/" + strings.Replace(sumdb, "entries/", "data/", 1)
		xt, xerr := tlog.ParseTilePath(sumdb)
		comparable := isTile && !strings.HasPrefix(p, "tile/data/") && !strings.HasPrefix(p, "tile/entries/entries")
		if err != nil {
			if comparable && xerr == nil && xt.H == TileHeight && xt.L <= maxTileLevel {
				t.Fatalf("ParseTilePath(%q) = %v, but x/mod accepts %q as %+v", p, err, sumdb, xt)
			}
			return
		}
		if got := a.Path(); got != p {
			t.Fatalf("ParseTilePath(%q).Path() = %q", p, got)
		}
		if err := a.Validate(); err != nil {
			t.Fatalf("ParseTilePath(%q) = %+v, which does not validate: %v", p, a, err)
		}
		if a.Index < 1<<63 {
			if xerr != nil {
				t.Fatalf("ParseTilePath(%q) = %+v, but x/mod rejects %q: %v", p, a, sumdb, xerr)
			}
			wantW := a.Width
			if wantW == 0 {
				wantW = TileWidth
			}
			if uint64(xt.N) != a.Index || (xt.L == -1) != a.Entries || (!a.Entries && xt.L != int(a.Level)) || xt.W != wantW {
				t.Fatalf("ParseTilePath(%q) = %+v, x/mod(%q) = %+v", p, a, sumdb, xt)
			}
		}
	})
}

func FuzzParseBundle(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, want int) {
		entries, err := ParseBundle(data, want)
		if err != nil {
			return
		}
		if len(entries) != want {
			t.Fatalf("ParseBundle(%q, %d) returned %d entries", data, want, len(entries))
		}
		var b []byte
		for _, e := range entries {
			if b, err = AppendBundleEntry(b, e); err != nil {
				t.Fatalf("AppendBundleEntry(entry of ParseBundle(%q, %d)) = %v", data, want, err)
			}
		}
		if !bytes.Equal(b, data) {
			t.Fatalf("re-appending ParseBundle(%q, %d) = %q", data, want, b)
		}
	})
}

func FuzzParseTLogProof(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseTLogProof(data)
		if err != nil {
			return
		}
		if m := p.Marshal(); !bytes.Equal(m, data) {
			t.Fatalf("Marshal(ParseTLogProof(%q)) = %q", data, m)
		}
		p2, err := ParseTLogProof(p.Marshal())
		if err != nil {
			t.Fatalf("ParseTLogProof(Marshal(ParseTLogProof(%q))) = %v", data, err)
		}
		if diff := cmp.Diff(p, p2); diff != "" {
			t.Fatalf("ParseTLogProof round trip of %q mismatch:\n%s", data, diff)
		}
		if _, err := note.Open(p.Checkpoint, note.VerifierList()); !isUnverified(err) {
			t.Fatalf("ParseTLogProof(%q) accepted a checkpoint x/mod finds malformed: %v", data, err)
		}
	})
}

func isUnverified(err error) bool {
	var e *note.UnverifiedNoteError
	return errors.As(err, &e)
}

func FuzzOpenCheckpoint(f *testing.F) {
	vs := mustVerifiers(f, tesseraVkey, interopLogVkey)
	f.Fuzz(func(t *testing.T, msg []byte, origin string) {
		// Our syntax check must agree exactly with x/mod's.
		_, xerr := note.Open(msg, note.VerifierList())
		if synErr := checkNoteSyntax(msg); (synErr == nil) != isUnverified(xerr) {
			t.Fatalf("checkNoteSyntax(%q) = %v, but note.Open = %v", msg, synErr, xerr)
		}

		c, n, err := OpenCheckpoint(msg, origin, vs)
		if err != nil {
			var invalid *note.InvalidSignatureError
			if !errors.Is(err, ErrMalformedNote) && !isUnverified(err) && !errors.As(err, &invalid) &&
				!errors.Is(err, ErrMalformedCheckpoint) && !errors.Is(err, ErrOriginMismatch) && origin != "" {
				t.Fatalf("OpenCheckpoint(%q, %q) = %v, an unclassified error", msg, origin, err)
			}
			return
		}
		if c.Origin != origin {
			t.Fatalf("OpenCheckpoint(%q, %q) returned origin %q", msg, origin, c.Origin)
		}
		if m := c.Marshal(); string(m) != n.Text || !bytes.HasPrefix(msg, m) {
			t.Fatalf("Marshal(OpenCheckpoint(%q)) = %q, note text %q", msg, m, n.Text)
		}
		if len(n.Sigs) == 0 {
			t.Fatalf("OpenCheckpoint(%q) succeeded without a verified signature", msg)
		}
	})
}

// TestFuzzSeeds checks that the checked-in seeds named valid-* are accepted,
// so that every fuzz target starts from inputs on its success path, and that
// the others are rejected.
func TestFuzzSeeds(t *testing.T) {
	vs := mustVerifiers(t, tesseraVkey, interopLogVkey)
	try := map[string]func(args []any) error{
		"FuzzParseCheckpoint": func(a []any) error { _, err := ParseCheckpoint(a[0].([]byte)); return err },
		"FuzzParseTilePath":   func(a []any) error { _, err := ParseTilePath(a[0].(string)); return err },
		"FuzzParseBundle":     func(a []any) error { _, err := ParseBundle(a[0].([]byte), a[1].(int)); return err },
		"FuzzParseTLogProof":  func(a []any) error { _, err := ParseTLogProof(a[0].([]byte)); return err },
		"FuzzOpenCheckpoint": func(a []any) error {
			_, _, err := OpenCheckpoint(a[0].([]byte), a[1].(string), vs)
			return err
		},
	}
	fuzzseeds.Check(t, try)
}
