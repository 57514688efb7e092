package record

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/canonical/*.canonical from the inputs")

// TestGolden decodes every testdata/canonical/NAME.json and compares its
// canonical form with testdata/canonical/NAME.canonical, which holds the
// exact bytes (no final newline). Run with -update to regenerate them.
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "canonical", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) == 0 {
		t.Fatal("no golden inputs in testdata/canonical")
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".json")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			e, err := Decode(data)
			if err != nil {
				t.Fatalf("Decode(%s) = %v", in, err)
			}
			got := e.Canonical()
			goldenPath := strings.TrimSuffix(in, ".json") + ".canonical"
			if *update {
				if err := os.WriteFile(goldenPath, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(goldenPath)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Canonical(%s) =\n%s\nwant (%s)\n%s", in, got, goldenPath, want)
			}
			// The golden output is itself a fixed point, and a valid entry
			// when it carries logged.
			e2, err := Decode(want)
			if err != nil || e2 != e {
				t.Errorf("Decode(golden) = %+v, %v; want %+v", e2, err, e)
			}
			if !e.Logged.IsZero() {
				if _, err := DecodeEntry(want); err != nil {
					t.Errorf("DecodeEntry(golden) = %v", err)
				}
			}
		})
	}
}
