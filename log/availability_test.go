package log

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadTokensRefusesSharedFile: the README's old recipe
// (`openssl rand -hex 32 > tokens.txt`) makes a 0644 file; a token file
// group or others may read or write is refused, and the error names the
// file and its mode without quoting a token.
func TestLoadTokensRefusesSharedFile(t *testing.T) {
	const tok = "0123456789abcdef0123456789abcdef"
	dir := t.TempDir()
	for _, mode := range []os.FileMode{0o644, 0o666, 0o640, 0o604, 0o620, 0o602, 0o610} {
		p := filepath.Join(dir, "tokens-"+mode.String())
		if err := os.WriteFile(p, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		ts, err := LoadTokens(p)
		var me *TokenFileModeError
		if !errors.As(err, &me) || me.Mode != mode || me.Path != p {
			t.Fatalf("mode %04o: LoadTokens = %v, %v; want a *TokenFileModeError for mode %04o", mode, ts, err, mode)
		}
		if msg := err.Error(); !strings.Contains(msg, p) || !strings.Contains(msg, "group or others") || strings.Contains(msg, tok) {
			t.Errorf("mode %04o: error %q should name the file and the problem, and not quote the token", mode, msg)
		}
	}
	for _, mode := range []os.FileMode{0o600, 0o400} {
		p := filepath.Join(dir, "ok-"+mode.String())
		if err := os.WriteFile(p, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if ts, err := LoadTokens(p); err != nil || len(ts) != 1 || ts[0] != tok {
			t.Fatalf("mode %04o: LoadTokens = %q, %v; want the token", mode, ts, err)
		}
	}
	// A directory is not a token file.
	if _, err := LoadTokens(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("LoadTokens(directory) = %v, want 'not a regular file'", err)
	}
}
