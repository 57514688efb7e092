package cmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTokenFileModeRefused: a token file made the way the README used to
// say (`openssl rand -hex 32 > tokens.txt`, mode 0644), or 0666, is refused
// by serve, append and bench, with the fix as the hint; the token is not
// quoted.
func TestTokenFileModeRefused(t *testing.T) {
	dir := t.TempDir()
	logDir := filepath.Join(dir, "log")
	initLog(t, logDir, "example.com/tokmode")
	tokens := writeTokens(t, dir)
	for _, mode := range []os.FileMode{0o644, 0o666, 0o660} {
		if err := os.Chmod(tokens, mode); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{
			{"serve", "--dir", logDir, "--listen", "127.0.0.1:0", "--token-file", tokens},
			{"append", "--log", "http://127.0.0.1:1", "--token-file", tokens, "-"},
			{"bench", "--log", "http://127.0.0.1:1", "--token-file", tokens, "--duration", "1s"},
		} {
			code, stdout, stderr := run(t, "", args...)
			if code != exitFailure ||
				!strings.Contains(stderr, "custody: error: token file "+tokens+" is accessible by group or others") ||
				!strings.Contains(stderr, "custody: hint: chmod 600 "+tokens+"\n") {
				t.Errorf("custody %s with a %04o token file: exit %d, stderr %q; want exit 1, the problem and 'chmod 600 FILE'", args[0], mode, code, stderr)
			}
			if strings.Contains(stdout+stderr, testToken) {
				t.Errorf("custody %s quoted the token", args[0])
			}
		}
	}
	// The fix works.
	if err := os.Chmod(tokens, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadTokens(tokens); err != nil {
		t.Fatalf("0600 token file: %v", err)
	}
}

// TestInitRefusesSymlinks: a log.pub (or log.key, custody.db) symlink
// planted in the log directory, dangling or not, is refused: init writes
// nothing through it and leaves no key behind.
func TestInitRefusesSymlinks(t *testing.T) {
	for _, name := range []string{"log.pub", "log.key", "custody.db"} {
		for _, dangling := range []bool{true, false} {
			dir := t.TempDir()
			logDir := filepath.Join(dir, "log")
			if err := os.Mkdir(logDir, 0o700); err != nil {
				t.Fatal(err)
			}
			target := filepath.Join(dir, "target")
			if !dangling {
				if err := os.WriteFile(target, []byte("victim\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Symlink(target, filepath.Join(logDir, name)); err != nil {
				t.Fatal(err)
			}
			code, _, stderr := run(t, "", "init", "--dir", logDir, "--origin", "example.com/link")
			if code != exitFailure || !strings.Contains(stderr, name+" is a symbolic link: refusing") {
				t.Errorf("%s (dangling %v): init exit %d, stderr %q; want exit 1 and 'is a symbolic link'", name, dangling, code, stderr)
			}
			b, err := os.ReadFile(target)
			switch {
			case dangling && !os.IsNotExist(err):
				t.Errorf("%s: init created the link's target (%v, %q)", name, err, b)
			case !dangling && string(b) != "victim\n":
				t.Errorf("%s: init wrote through the link: target now %q", name, b)
			}
			for _, other := range []string{"log.pub", "log.key", "custody.db"} {
				if other == name {
					continue
				}
				if _, err := os.Lstat(filepath.Join(logDir, other)); err == nil {
					t.Errorf("%s: init left %s behind", name, other)
				}
			}
		}
	}
	// Below init: the key writer itself refuses a dangling link, whatever
	// its caller checked.
	dir := t.TempDir()
	if err := os.Symlink(filepath.Join(dir, "elsewhere"), filepath.Join(dir, "k.pub")); err != nil {
		t.Fatal(err)
	}
	if _, err := writeKeyPair(filepath.Join(dir, "k"), "example.com/k"); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("writeKeyPair over a dangling k.pub link: %v, want a refusal", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "elsewhere")); !os.IsNotExist(err) {
		t.Fatal("writeKeyPair wrote through the link")
	}
	if _, err := os.Lstat(filepath.Join(dir, "k.key")); !os.IsNotExist(err) {
		t.Fatal("writeKeyPair left k.key behind")
	}
	// createFile's own O_NOFOLLOW|O_EXCL, should a link appear after the check.
	if err := createFile(filepath.Join(dir, "k.pub"), "x\n", 0o644); err == nil {
		t.Fatal("createFile wrote through a dangling link")
	}
	if _, err := os.Lstat(filepath.Join(dir, "elsewhere")); !os.IsNotExist(err) {
		t.Fatal("createFile wrote through the link")
	}
}
