package cmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCopyAndFsckCountTilesAlike: copy and fsck report the same number of
// tiles for the same log: the hash tiles stored, each once, however often
// it grew. The log has 300 entries and a checkpoint after each, so the copy
// writes tile 0/000 256 times; the store holds 3 tiles (0/000 full, 0/001
// and 1/000 partial), and both commands say 3, for the source and the copy.
func TestCopyAndFsckCountTilesAlike(t *testing.T) {
	a, key := copyLog(t)
	src := "sqlite:" + a.dbPath
	dir := t.TempDir()
	dst := "sqlite:" + filepath.Join(dir, "custody.db")
	if err := os.WriteFile(filepath.Join(dir, "log.pub"), []byte(key.vkey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := run(t, "", "copy", "--from", src, "--to", dst)
	if code != exitOK || !strings.Contains(stdout, "copied 300 entries, 301 checkpoints and 3 tiles from ") {
		t.Fatalf("copy: exit %d\n%s%s", code, stdout, stderr)
	}
	code, srcRep := fsckJSON(t, a)
	if code != exitOK || srcRep.Tiles != 3 {
		t.Fatalf("fsck of the source: exit %d, %d tiles, want 3", code, srcRep.Tiles)
	}
	code, dstRep := fsckStoreJSON(t, dir, dst)
	if code != exitOK || dstRep.Tiles != 3 || dstRep.Entries != 300 || dstRep.Checkpoints != 301 {
		t.Fatalf("fsck of the copy: exit %d, %+v", code, dstRep)
	}
	// A copy of the copy, in JSON: the same count again.
	if s := runCopyJSON(t, dst, "sqlite:"+filepath.Join(t.TempDir(), "again.db")); s.Tiles != dstRep.Tiles {
		t.Fatalf("copy --json counts %d tiles, fsck %d", s.Tiles, dstRep.Tiles)
	}
}
