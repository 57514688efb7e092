package server

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOpenSourceStore: an existing log opens; a missing SQLite file is a
// usage mistake naming the source, and is not created; a file that is no
// database names the flag. Both exit 3.
func TestOpenSourceStore(t *testing.T) {
	ctx := context.Background()
	dir := newLogDir(t)
	st, err := OpenSourceStore(ctx, "--from", "sqlite:"+filepath.Join(dir, DBFile))
	if err != nil {
		t.Fatal(err)
	}
	if cp, err := st.Latest(ctx); err != nil || cp.Size != 0 {
		t.Errorf("Latest: %+v, %v; want the size-0 checkpoint", cp, err)
	}
	st.Close()

	missing := filepath.Join(t.TempDir(), "none.db")
	_, err = OpenSourceStore(ctx, "--from", missing)
	if hint, code := exitOf(t, err); code != 3 || !strings.Contains(hint, "an existing log database") || !strings.Contains(err.Error(), "source store "+missing) {
		t.Errorf("missing source: %v (hint %q, exit %d)", err, hint, code)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("the missing source was created: %v", err)
	}
	garbage := writeFile(t, t.TempDir(), "garbage.db", strings.Repeat("x", 4096), 0o600)
	_, err = OpenSourceStore(ctx, "--store", garbage)
	if _, code := exitOf(t, err); code != 3 || !strings.Contains(err.Error(), "--store "+garbage) {
		t.Errorf("garbage source: %v, exit %d; want exit 3 naming --store", err, code)
	}
}
