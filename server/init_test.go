package server

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

func TestInit(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "log")
	vkey, err := Init(ctx, dir, "init.test/log", "")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, KeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v, mode %v; want mode 0600", KeyFile, err, fi.Mode())
	}
	pub, err := os.ReadFile(filepath.Join(dir, PubFile))
	if err != nil || string(pub) != vkey+"\n" {
		t.Fatalf("%s holds %q (%v), want the returned key %q", PubFile, pub, err, vkey)
	}
	// The store holds the size-0 checkpoint, signed by the new key.
	st, err := OpenStore("", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cp, err := st.Latest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := verify.OpenCheckpoint(cp.Note, "init.test/log", note.VerifierList(v))
	if err != nil || got.Size != 0 || got.Root != verify.EmptyRoot {
		t.Fatalf("first checkpoint: %+v, %v; want size 0 with the empty root", got, err)
	}
}

func TestInitRefuses(t *testing.T) {
	ctx := context.Background()
	existing := filepath.Join(t.TempDir(), "log")
	if _, err := Init(ctx, existing, "init.test/log", ""); err != nil {
		t.Fatal(err)
	}
	pub, _ := os.ReadFile(filepath.Join(existing, PubFile))
	link := t.TempDir()
	if err := os.Symlink(filepath.Join(t.TempDir(), "elsewhere"), filepath.Join(link, DBFile)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, dir, origin string
		kind              ErrorKind
	}{
		{"a log is there", existing, "init.test/log", KindExists},
		{"a dangling link in place of the database", link, "init.test/log", KindLink},
		{"an empty origin", filepath.Join(t.TempDir(), "new"), "", KindSigner},
		{"an origin with a plus", filepath.Join(t.TempDir(), "plus"), "bad+origin", KindSigner},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Init(ctx, tc.dir, tc.origin, "")
			if se := (*Error)(nil); !errors.As(err, &se) || se.Kind != tc.kind {
				t.Fatalf("Init: %v, want an *Error of kind %d", err, tc.kind)
			}
		})
	}
	// Nothing was overwritten or created through the link.
	if again, _ := os.ReadFile(filepath.Join(existing, PubFile)); string(again) != string(pub) {
		t.Fatal("Init rewrote the existing log's key")
	}
	if _, err := os.Lstat(filepath.Join(link, KeyFile)); err == nil {
		t.Fatal("Init wrote a key beside the link")
	}
}
