package server

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custodylog/custody/fsck"
	"github.com/custodylog/custody/internal/keyfile"
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

// exitOf is the Hint and ExitCode of err, as custody prints them.
func exitOf(t *testing.T, err error) (string, int) {
	t.Helper()
	var f interface {
		Hint() string
		ExitCode() int
	}
	if !errors.As(err, &f) {
		t.Fatalf("error %v has no Hint and ExitCode", err)
	}
	return f.Hint(), f.ExitCode()
}

// TestFsck: a healthy log is clean; a signed checkpoint kept elsewhere
// that the entries cannot give is a rollback; a missing database, a
// checkpoint file signed by no one and a missing log.pub are errors with
// exit 3 (no verdict), and a database too damaged to open is a problem.
func TestFsck(t *testing.T) {
	ctx := context.Background()
	dir := newLogDir(t)
	rep, err := Fsck(ctx, FsckOptions{Dir: dir})
	if err != nil || len(rep.Problems) != 0 || rep.Checkpoints != 1 {
		t.Fatalf("Fsck of a new log: %+v, %v; want 1 checkpoint, no problems", rep, err)
	}

	// A checkpoint of size 5 signed by the log's key: the store has 0 entries.
	signer, err := keyfile.LoadSigner(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	signed, err := note.Sign(&note.Note{Text: string(verify.Checkpoint{Origin: "open.test/log", Size: 5}.Marshal())}, signer)
	if err != nil {
		t.Fatal(err)
	}
	kept := writeFile(t, t.TempDir(), "kept", string(signed), 0o600)
	rep, err = Fsck(ctx, FsckOptions{Dir: dir, Checkpoints: []string{kept}})
	if err != nil || len(rep.Problems) != 1 || rep.Problems[0].Kind != fsck.KindRollback {
		t.Fatalf("Fsck with a larger kept checkpoint: %+v, %v; want one rollback", rep, err)
	}

	forged := writeFile(t, t.TempDir(), "forged", "open.test/log\n5\nAAAA\n", 0o600)
	_, err = Fsck(ctx, FsckOptions{Dir: dir, Checkpoints: []string{forged}})
	if hint, code := exitOf(t, err); code != 3 || !strings.Contains(hint, "signed by this log's key") || !strings.Contains(err.Error(), "--checkpoint "+forged) {
		t.Errorf("unsigned --checkpoint: %v (hint %q, exit %d); want exit 3 naming it", err, hint, code)
	}

	if _, code := exitOf(t, func() error { _, err := Fsck(ctx, FsckOptions{Dir: t.TempDir()}); return err }()); code != 3 {
		t.Errorf("Fsck of a directory without a log: exit %d, want 3", code)
	}
	nopub := newLogDir(t)
	os.Remove(filepath.Join(nopub, PubFile))
	_, err = Fsck(ctx, FsckOptions{Dir: nopub})
	if _, code := exitOf(t, err); code != 3 || !strings.Contains(err.Error(), PubFile) {
		t.Errorf("Fsck without %s: %v, exit %d; want exit 3 naming it", PubFile, err, code)
	}
}

// TestFsckDamaged: a file that is not a database is an error (exit 3);
// a SQLite database the store finds damaged when it opens it (here: its
// schema_version row deleted) is reported as a problem of kind store.
func TestFsckDamaged(t *testing.T) {
	dir := newLogDir(t)
	writeFile(t, dir, DBFile, strings.Repeat("not a database ", 400), 0o600)
	_, err := Fsck(context.Background(), FsckOptions{Dir: dir})
	if _, code := exitOf(t, err); code != 3 {
		t.Errorf("Fsck of a file that is no database: %v, exit %d; want 3", err, code)
	}

	sqlite3, err := exec.LookPath("sqlite3")
	if err != nil {
		t.Skip("no sqlite3 command to damage a database with")
	}
	dir = newLogDir(t)
	if out, err := exec.Command(sqlite3, filepath.Join(dir, DBFile), "DELETE FROM schema_version").CombinedOutput(); err != nil {
		t.Fatalf("sqlite3: %v\n%s", err, out)
	}
	rep, err := Fsck(context.Background(), FsckOptions{Dir: dir})
	if err != nil {
		t.Fatalf("Fsck of a damaged database: %v, want a report", err)
	}
	if len(rep.Problems) != 1 || rep.Problems[0].Kind != fsck.KindStore || rep.Problems[0].Where != "database" {
		t.Fatalf("problems %+v, want one of kind store at database", rep.Problems)
	}
}
