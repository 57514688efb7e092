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
