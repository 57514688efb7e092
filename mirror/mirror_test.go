package mirror

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/custodylog/custody/loadgen"
	"github.com/custodylog/custody/log"
	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/store/sqlite"
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

type testLog struct {
	st store.Store
	s  note.Signer
	v  note.Verifier
}

func newLog(t *testing.T, s note.Signer, v note.Verifier) *testLog {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "custody.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := log.Create(context.Background(), st, s); err != nil {
		t.Fatal(err)
	}
	return &testLog{st, s, v}
}

func keys(t *testing.T) (note.Signer, note.Verifier) {
	sk, vk, _ := note.GenerateKey(rand.Reader, "mirror.test/log")
	s, _ := note.NewSigner(sk)
	v, _ := note.NewVerifier(vk)
	return s, v
}

func (l *testLog) grow(t *testing.T, n uint64) {
	t.Helper()
	if _, err := loadgen.Prefill(context.Background(), l.st, l.s, l.v, n, loadgen.PrefillOptions{Batch: 100}); err != nil {
		t.Fatal(err)
	}
}

func (l *testLog) client() *verify.Client {
	return verify.NewClient(StoreSource(l.st), l.v.Name(), note.VerifierList(l.v), nil)
}

// readDir reads every entry of the mirror in dir, verified, with a client
// of its own: the directory is a log an auditor can read.
func readDir(t *testing.T, dir string, v note.Verifier) (verify.Checkpoint, [][]byte) {
	t.Helper()
	ctx := context.Background()
	src, err := verify.OpenSource(dir, http.DefaultClient)
	if err != nil {
		t.Fatal(err)
	}
	cl := verify.NewClient(src, v.Name(), note.VerifierList(v), nil)
	cp, _, err := cl.Checkpoint(ctx)
	if err != nil {
		t.Fatalf("the mirror's checkpoint: %v", err)
	}
	var entries [][]byte
	if err := cl.Entries(ctx, 0, cp.Size, cp, func(_ uint64, e []byte) error {
		entries = append(entries, bytes.Clone(e))
		return nil
	}); err != nil {
		t.Fatalf("reading the mirror's entries: %v", err)
	}
	return cp, entries
}

// TestUpdate mirrors a log from its store, grows it and mirrors again:
// the directory is a verifiable log with every entry, full files are kept,
// superseded partial files removed, and an unchanged log writes nothing.
func TestUpdate(t *testing.T) {
	ctx := context.Background()
	s, v := keys(t)
	l := newLog(t, s, v)
	l.grow(t, 300)
	dir := filepath.Join(t.TempDir(), "public")
	var done, total uint64
	sum, err := Update(ctx, l.client(), dir, Options{Progress: func(d, tot uint64) { done, total = d, tot }})
	if err != nil {
		t.Fatalf("Update() error: %v", err)
	}
	if sum.OldSize != 0 || sum.Size != 300 || sum.FilesWritten != 6 || done != 300 || total != 300 {
		t.Errorf("first update: %+v, progress %d of %d", sum, done, total)
	}
	if cp, es := readDir(t, dir, v); cp.Size != 300 || len(es) != 300 {
		t.Fatalf("mirror holds size %d with %d entries", cp.Size, len(es))
	}

	l.grow(t, 300)
	sum, err = Update(ctx, l.client(), dir, Options{})
	if err != nil {
		t.Fatalf("second Update() error: %v", err)
	}
	// Bundles and level-0 tiles 1 (full, replacing partials) and 2
	// (partial), tile 1/0.p/2, the checkpoint; the full tile 0/000 and its
	// bundle were kept, the partial 0/001.p and entries/001.p removed.
	if sum.OldSize != 300 || sum.Size != 600 || sum.FilesWritten != 6 || sum.FilesKept != 0 || sum.FilesRemoved != 2 {
		t.Errorf("second update: %+v", sum)
	}
	if _, err := os.Stat(filepath.Join(dir, "tile", "0", "001.p")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("superseded partial tiles still there: %v", err)
	}
	if cp, es := readDir(t, dir, v); cp.Size != 600 || len(es) != 600 {
		t.Fatalf("mirror holds size %d with %d entries", cp.Size, len(es))
	}
	sum, err = Update(ctx, l.client(), dir, Options{})
	if err != nil || sum.FilesWritten != 0 || sum.OldSize != 600 || sum.Size != 600 {
		t.Errorf("update of an up-to-date mirror: %+v, %v", sum, err)
	}
}

// TestUpdateRefuses: a source that forks from the mirror, or is behind it,
// is refused with evidence, and the mirror is left as it was; a second
// Update of one directory at a time is refused.
func TestUpdateRefuses(t *testing.T) {
	ctx := context.Background()
	s, v := keys(t)
	a, b := newLog(t, s, v), newLog(t, s, v)
	a.grow(t, 300)
	b.grow(t, 400) // the same key, other entries: a fork of a
	dir := filepath.Join(t.TempDir(), "public")
	old := filepath.Join(t.TempDir(), "old")
	for _, d := range []string{dir, old} {
		if _, err := Update(ctx, a.client(), d, Options{}); err != nil {
			t.Fatal(err)
		}
	}
	before, err := os.ReadFile(filepath.Join(dir, "checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Update(ctx, b.client(), dir, Options{})
	if ve, ok := verify.IsVerificationError(err); !ok || !errors.Is(err, ErrRefused) || (ve.Evidence.Kind != verify.EvidenceFork && ve.Evidence.Kind != verify.EvidenceInconsistent) {
		t.Errorf("Update() from a fork = %v, want ErrRefused with fork evidence", err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "checkpoint")); !bytes.Equal(before, after) {
		t.Error("the refused update changed the mirror's checkpoint")
	}

	// Behind: the old mirror as the source of the grown one.
	a.grow(t, 100)
	if _, err := Update(ctx, a.client(), dir, Options{}); err != nil {
		t.Fatal(err)
	}
	src, err := verify.OpenSource(old, http.DefaultClient)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Update(ctx, verify.NewClient(src, v.Name(), note.VerifierList(v), nil), dir, Options{})
	if ve, ok := verify.IsVerificationError(err); !ok || !errors.Is(err, ErrRefused) || ve.Evidence.Kind != verify.EvidenceRollback {
		t.Errorf("Update() from an older copy = %v, want ErrRefused with rollback evidence", err)
	}

	unlock, err := lockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	var de *DirError
	if _, err := Update(ctx, a.client(), dir, Options{}); !errors.Is(err, ErrLocked) || !errors.As(err, &de) || de.Op != OpLock {
		t.Errorf("Update() of a locked directory = %v, want ErrLocked", err)
	} else if de.Hint() != "wait for the other 'custody mirror' to finish; only one may update a directory" || de.ExitCode() != 3 {
		t.Errorf("locked directory: hint %q, exit code %d", de.Hint(), de.ExitCode())
	}
	if h := (&DirError{Op: OpReadCheckpoint, Dir: "pub"}).Hint(); h != "make "+filepath.Join("pub", "checkpoint")+" readable" {
		t.Errorf("unreadable checkpoint: hint %q, want the checkpoint's path", h)
	}
}

// TestStoreSourceMissing: what the store does not hold is
// verify.ErrTileNotFound, never a shorter tile or bundle.
func TestStoreSourceMissing(t *testing.T) {
	ctx := context.Background()
	s, v := keys(t)
	l := newLog(t, s, v)
	l.grow(t, 10)
	src := StoreSource(l.st)
	for _, a := range []verify.TileAddr{{Level: 0, Index: 0, Width: 11}, {Entries: true, Index: 0, Width: 11}, {Level: 0, Index: 1, Width: 1}, {Level: 1, Index: 0, Width: 1}} {
		if _, err := src.ReadTile(ctx, a); !errors.Is(err, verify.ErrTileNotFound) {
			t.Errorf("ReadTile(%s) = %v, want ErrTileNotFound", a.Path(), err)
		}
	}
	for _, a := range []verify.TileAddr{{Level: 0, Index: 0, Width: 10}, {Entries: true, Index: 0, Width: 10}, {Level: 0, Index: 0, Width: 3}} {
		data, err := src.ReadTile(ctx, a)
		if err != nil || (!a.Entries && len(data) != a.Width*32) {
			t.Errorf("ReadTile(%s) = %d bytes, %v", a.Path(), len(data), err)
		}
	}
}
