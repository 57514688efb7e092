package server

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custodylog/custody/logcopy"
)

// TestCopyLog: a log copies into a new store and the copy is proved; the
// flags' mistakes and a missing source exit 3 without touching anything;
// a destination that holds a log is logcopy's refusal, with its fix.
func TestCopyLog(t *testing.T) {
	ctx := context.Background()
	from := "sqlite:" + filepath.Join(newLogDir(t), DBFile)
	to := "sqlite:" + filepath.Join(t.TempDir(), "copy.db")
	sum, err := CopyLog(ctx, from, to, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Verified || sum.Checkpoints != 1 || sum.From != from || sum.To != to {
		t.Errorf("summary %+v; want the verified copy of 1 checkpoint from %s to %s", sum, from, to)
	}
	_, err = CopyLog(ctx, from, to, nil)
	if hint, code := exitOf(t, err); !errors.Is(err, logcopy.ErrNotEmpty) || code != 3 || !strings.Contains(hint, "empty store") {
		t.Errorf("copy into a store holding a log: %v (hint %q, exit %d); want ErrNotEmpty", err, hint, code)
	}
	for _, tc := range []struct{ name, from, to, msg, hint string }{
		{"no source", "", to, "missing --from or --to", "pass both stores"},
		{"same store", from, from, "the same store", "another store"},
		{"missing source", "sqlite:" + filepath.Join(t.TempDir(), "none.db"), to, "source store", "an existing log database"},
	} {
		_, err := CopyLog(ctx, tc.from, tc.to, nil)
		if hint, code := exitOf(t, err); code != 3 || !strings.Contains(err.Error(), tc.msg) || !strings.Contains(hint, tc.hint) {
			t.Errorf("%s: %v (hint %q, exit %d); want exit 3, %q, %q", tc.name, err, hint, code, tc.msg, tc.hint)
		}
	}
}
