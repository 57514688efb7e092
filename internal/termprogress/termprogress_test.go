package termprogress

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestNotTerminal: on a buffer or a regular file the bar writes nothing,
// whatever it is told.
func TestNotTerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var buf bytes.Buffer
	for _, w := range []interface{ Write([]byte) (int, error) }{&buf, f} {
		if IsTerminal(w) {
			t.Fatalf("IsTerminal(%T) = true", w)
		}
		b := New(w, "copying")
		if b.What() != "copying" {
			t.Errorf("What() = %q, want copying", b.What())
		}
		b.Set(0, 100)
		b.Set(50, 100)
		b.Finish()
		if b.Drawn() {
			t.Errorf("bar on %T drawn", w)
		}
	}
	if buf.Len() != 0 {
		t.Errorf("wrote %q to a buffer", buf.String())
	}
	if fi, _ := f.Stat(); fi.Size() != 0 {
		t.Errorf("wrote %d bytes to a file", fi.Size())
	}
}

// TestDrawn: on a terminal the bar is made at the first Set with a total,
// not before, and it writes the label.
func TestDrawn(t *testing.T) {
	var buf bytes.Buffer
	b := &Bar{w: &buf, what: "mirroring entries", on: true} // as New on a terminal
	b.Set(0, 0)
	if b.Drawn() || buf.Len() != 0 {
		t.Fatalf("drawn before the total was known: %q", buf.String())
	}
	b.Set(10, 100)
	if !b.Drawn() {
		t.Fatal("not drawn after Set with a total")
	}
	b.Finish()
	if !bytes.Contains(buf.Bytes(), []byte("mirroring entries")) {
		t.Errorf("output %q lacks the label", buf.String())
	}
}

// TestNil: a nil bar is safe to use.
func TestNil(t *testing.T) {
	var b *Bar
	b.Set(1, 2)
	b.Finish()
	if b.Drawn() || b.What() != "" {
		t.Error("nil bar drawn or labelled")
	}
}

// TestPhases: each phase gets its own bar, labelled with the phase; on a
// buffer nothing is drawn.
func TestPhases(t *testing.T) {
	var buf bytes.Buffer
	p := NewPhases(&buf)
	p.Finish() // before any phase: nothing to clear
	p.Set("copying entries", 1, 10)
	first := p.bar
	p.Set("copying entries", 5, 10)
	if p.bar != first || first.What() != "copying entries" {
		t.Fatalf("the same phase got a new bar (%q)", p.bar.What())
	}
	p.Set("verifying the copy", 1, 10)
	if p.bar == first || p.bar.What() != "verifying the copy" {
		t.Fatalf("a new phase kept the bar %q", p.bar.What())
	}
	p.Finish()
	if buf.Len() != 0 || p.bar.Drawn() {
		t.Errorf("drew on a buffer: %q", buf.String())
	}
}
