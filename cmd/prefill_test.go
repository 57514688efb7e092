package cmd

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestPrefill grows a log through the store, checks it with fsck (every
// entry, tile and checkpoint recomputed), and shows that prefill refuses a
// log a server holds.
func TestPrefill(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	initLog(t, dir, "prefill.test/log")
	code, out, stderr := run(t, "", "prefill", "--dir", dir, "--events", "20000", "--batch", "7000", "--json")
	if code != 0 {
		t.Fatalf("prefill: exit %d: %s", code, stderr)
	}
	var res struct{ From, Size uint64 }
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.From != 0 || res.Size != 20000 {
		t.Fatalf("prefill said %q (%v)", out, err)
	}
	if code, out, stderr := run(t, "", "fsck", "--dir", dir); code != 0 {
		t.Fatalf("fsck after prefill: exit %d\n%s%s", code, out, stderr)
	}
	startServer(t, "--dir", dir)
	code, _, stderr = run(t, "", "prefill", "--dir", dir, "--events", "10")
	if code != 1 || !strings.Contains(stderr, "another process is serving") {
		t.Fatalf("prefill on a served log: exit %d: %s", code, stderr)
	}
	if code, _, stderr := run(t, "", "prefill", "--dir", dir); code != 3 || !strings.Contains(stderr, "--events") {
		t.Fatalf("prefill without --events: exit %d: %s", code, stderr)
	}
}
