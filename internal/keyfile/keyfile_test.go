package keyfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteAndLoad(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "log")
	vkey, err := WriteLog(p, "example.com/log")
	if err != nil {
		t.Fatal(err)
	}
	s, err := LoadSigner(p + ".key")
	if err != nil || s.Name() != "example.com/log" {
		t.Fatalf("LoadSigner = %v, %v", s, err)
	}
	if pub, _ := os.ReadFile(p + ".pub"); strings.TrimSpace(string(pub)) != vkey {
		t.Errorf("log.pub holds %q, want %q", pub, vkey)
	}
	if fi, _ := os.Stat(p + ".key"); fi.Mode().Perm() != 0o600 {
		t.Errorf("the private key has mode %04o", fi.Mode().Perm())
	}
	if _, err := WriteLog(p, "example.com/log"); !errors.Is(err, ErrExists) {
		t.Errorf("WriteLog over existing keys = %v, want ErrExists", err)
	}

	w := filepath.Join(dir, "wit")
	wkey, err := WriteWitness(w, "witness.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, got, err := LoadCosigner(w + ".key"); err != nil || got != wkey {
		t.Errorf("LoadCosigner = %q, %v; want %q", got, err, wkey)
	}
}

func TestLoadRefuses(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "log")
	if _, err := WriteLog(p, "example.com/log"); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p+".key", 0o640)
	if _, err := LoadSigner(p + ".key"); !errors.Is(err, ErrMode) {
		t.Errorf("LoadSigner of a 0640 key = %v, want ErrMode", err)
	}
	const secret = "PRIVATE+KEY+not-really+but-secret"
	junk := filepath.Join(dir, "junk.key")
	os.WriteFile(junk, []byte(secret+"\n"), 0o600)
	for _, load := range []func(string) error{
		func(p string) error { _, err := LoadSigner(p); return err },
		func(p string) error { _, _, err := LoadCosigner(p); return err },
	} {
		if err := load(junk); !errors.Is(err, ErrNotKey) || strings.Contains(err.Error(), "secret") {
			t.Errorf("loading a file that holds no key = %v, want ErrNotKey without its contents", err)
		}
	}
}

// TestNoWriteThroughLinks: a symbolic link at either name, dangling or
// not, is refused and nothing is written through it or left behind.
func TestNoWriteThroughLinks(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "elsewhere")
	if err := os.Symlink(target, filepath.Join(dir, "k.pub")); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteLog(filepath.Join(dir, "k"), "example.com/k"); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("WriteLog over a dangling link = %v, want ErrExists", err)
	}
	if err := CreateFile(filepath.Join(dir, "k.pub"), "x\n", 0o644); !errors.Is(err, ErrExists) {
		t.Fatalf("CreateFile through a dangling link = %v, want ErrExists", err)
	}
	for _, p := range []string{target, filepath.Join(dir, "k.key")} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s was written", p)
		}
	}
}

// TestHints: every error of a kind says what to do, naming the file where
// the fix does.
func TestHints(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "log")
	if _, err := WriteLog(p, "example.com/log"); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p+".key", 0o644); err != nil {
		t.Fatal(err)
	}
	notKey := filepath.Join(dir, "not.key")
	if err := os.WriteFile(notKey, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, open := LoadSigner(p + ".key")
	_, exists := WriteLog(p, "example.com/log")
	_, badSite := WriteSite(filepath.Join(dir, "y"), "Not A Site")
	_, notSigner := LoadSigner(notKey)
	_, _, notCosigner := LoadCosigner(notKey)
	_, notSite := LoadSite(notKey)
	for _, tc := range []struct {
		name string
		err  error
		hint string
	}{
		{"readable key", open, "chmod 600 " + p + ".key"},
		{"existing key", exists, "refusing to overwrite a key; choose another --out or remove it yourself"},
		{"bad site name", badSite, "a site name is 2 to 32 characters of a-z 0-9 -, e.g. --site zrh"},
		{"not a log key", notSigner, "create one with 'custody keygen' or 'custody init'"},
		{"not a witness key", notCosigner, "create one with 'custody keygen --witness --origin NAME'"},
		{"not a site key", notSite, "create one with 'custody keygen --site NAME'"},
	} {
		var h interface {
			Hint() string
			ExitCode() int
		}
		if !errors.As(tc.err, &h) || h.Hint() != tc.hint || h.ExitCode() != 1 {
			t.Errorf("%s: %v, want the hint %q and exit code 1", tc.name, tc.err, tc.hint)
		}
	}
}
