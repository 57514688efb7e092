package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/custodylog/custody/client"
	"github.com/custodylog/custody/httpapi"
	"github.com/custodylog/custody/internal/keyfile"
	"github.com/custodylog/custody/record"
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
	if err := keyfile.CreateFile(filepath.Join(dir, "k.pub"), "x\n", 0o644); err == nil {
		t.Fatal("createFile wrote through a dangling link")
	}
	if _, err := os.Lstat(filepath.Join(dir, "elsewhere")); !os.IsNotExist(err) {
		t.Fatal("createFile wrote through the link")
	}
}

// TestGetSampleDotsAndPages: `custody get --sample ..` used to fail
// although ".." is a valid sample ID (the path segment was resolved away).
// get now escapes it, and follows the pages of a sample with more events
// than one answer holds.
func TestGetSampleDotsAndPages(t *testing.T) {
	a := newAuditLog(t, fixedKey(t, auditOrigin, 7))
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	ev := func(sample string, i int) record.Event {
		return record.Event{Sample: sample, Action: record.Stored, Location: "ch-zrh-1", Region: "EU",
			Time: base.Add(time.Duration(i) * time.Second), Actor: "test"}
	}
	n := 2*httpapi.MaxSamplePage + 500
	var evs []record.Event
	for i := 0; i < n; i++ {
		evs = append(evs, ev("..", i))
		if i%1000 == 0 {
			evs = append(evs, ev(".", i)) // interleaved: not one run
		}
	}
	if _, err := a.AddMany(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := run(t, "", "get", "--log", a.url, "--sample", "..")
	if code != 0 {
		t.Fatalf("get --sample ..: exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != n+1 || !strings.HasPrefix(lines[0], "INDEX") {
		t.Fatalf("get --sample .. printed %d lines, want a header and %d events", len(lines), n)
	}
	for _, l := range lines[1:] {
		if f := strings.Fields(l); len(f) != 7 || f[6] != ".." {
			t.Fatalf("row %q is not an event of sample ..", l)
		}
	}
	code, out, stderr = run(t, "", "get", "--log", a.url, "--sample", "..", "--json")
	var p httpapi.SamplePage
	if err := json.Unmarshal([]byte(out), &p); code != 0 || err != nil || len(p.Events) != n || p.Next != "" || p.Size != uint64(len(evs)) {
		t.Fatalf("get --sample .. --json: exit %d, %v, %d events, next %q: %s", code, err, len(p.Events), p.Next, stderr)
	}
	code, out, _ = run(t, "", "get", "--log", a.url, "--sample", ".")
	if code != 0 || strings.Count(out, "\n") != 1+3 {
		t.Fatalf("get --sample .: exit %d:\n%s", code, out)
	}
	// Invalid IDs are refused before anything is sent.
	for _, id := range []string{"a/b", "%", "a b"} {
		code, _, stderr := run(t, "", "get", "--log", "http://127.0.0.1:1", "--sample", id)
		if code != exitUsageIO || !strings.Contains(stderr, "not allowed") {
			t.Errorf("get --sample %q: exit %d, %s; want exit 3 naming the character", id, code, stderr)
		}
	}
}

// hostileText is what a hostile log puts in the text get prints: an OSC
// that sets the window title, a CSI that clears the screen, a C1 CSI, a
// carriage return and a bidi override.
const hostileText = "x\x1b]0;pwned\x07\x1b[2J\u009b31m\roverwrite\u202e"

// checkTerminalSafe fails if s holds anything but printable text and
// newlines.
func checkTerminalSafe(t *testing.T, what, s string) {
	t.Helper()
	for i, r := range s {
		if (r < 0x20 && r != '\n') || r == 0x7f || (r >= 0x80 && r <= 0x9f) || r == 0x202e || (r == utf8.RuneError) {
			t.Errorf("%s has %U at byte %d: %q", what, r, i, s)
			return
		}
	}
}

// TestGetEscapesServerText: event fields and error messages from a hostile
// server reach the terminal with every control character escaped, in the
// table, in --json (which stays valid JSON) and in errors.
func TestGetEscapesServerText(t *testing.T) {
	js := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	entry := fmt.Sprintf(`{"sample":%s,"action":%s,"location":%s,"to":%s,"region":%s,"time":%s,"actor":"a"}`,
		js("s"+hostileText), js("stored"+hostileText), js("l"+hostileText), js("t"+hostileText), js("R"+hostileText), js("2026"+hostileText))
	// Raw C1 and bidi characters are valid inside JSON strings: send them
	// raw, not escaped.
	entry = strings.NewReplacer(`\u009b`, "\u009b", `\u202e`, "\u202e").Replace(entry)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/entries/1":
			fmt.Fprintf(w, `{"index":1,"leaf_hash":"","entry":"","event":%s}`, entry)
		case "/v1/samples/s1":
			fmt.Fprintf(w, `{"sample":"s1","size":9,"events":[{"index":1,"event":%s}]}`, entry)
		case "/v1/entries/3":
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte(strings.Repeat("<html>"+hostileText, 100000)))
		default:
			w.WriteHeader(http.StatusInternalServerError)
			b, _ := json.Marshal(map[string]string{"error": "boom" + hostileText})
			w.Write(b)
		}
	}))
	t.Cleanup(srv.Close)
	for _, args := range [][]string{
		{"get", "--log", srv.URL, "1"},
		{"get", "--log", srv.URL, "--sample", "s1"},
		{"get", "--log", srv.URL, "1", "--json"},
		{"get", "--log", srv.URL, "--sample", "s1", "--json"},
		{"get", "--log", srv.URL, "2"},
		{"get", "--log", srv.URL, "--sample", "s2"},
	} {
		code, out, stderr := run(t, "", args...)
		checkTerminalSafe(t, fmt.Sprintf("stdout of %v", args), out)
		checkTerminalSafe(t, fmt.Sprintf("stderr of %v", args), stderr)
		if !strings.Contains(out+stderr, `\x1b]0;pwned`) && !strings.Contains(out+stderr, `\u001b]0;pwned`) {
			t.Errorf("%v: the escape is not shown visibly:\n%s%s", args, out, stderr)
		}
		if args[len(args)-1] == "--json" && (code != 0 || !json.Valid([]byte(out))) {
			t.Errorf("%v: exit %d, output is not valid JSON:\n%s", args, code, out)
		}
		if strings.HasPrefix(args[3], "2") || args[len(args)-1] == "s2" {
			if code != exitFailure || !strings.Contains(stderr, "server answered 500: boom") {
				t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
			}
		}
	}
	// A huge error body is quoted only in part.
	code, _, stderr := run(t, "", "get", "--log", srv.URL, "3")
	checkTerminalSafe(t, "stderr of get 3", stderr)
	if code != exitFailure || len(stderr) > 4*client.MaxErrorText || !strings.Contains(stderr, "server answered 502: <html>") || !strings.Contains(stderr, "bytes in all)") {
		t.Errorf("get of a huge error page: exit %d, %d bytes on stderr: %.300q", code, len(stderr), stderr)
	}
	// --json keeps the text: decoding it gives back the hostile bytes.
	_, out, _ := run(t, "", "get", "--log", srv.URL, "1", "--json")
	var e struct{ Event struct{ Sample string } }
	if err := json.Unmarshal([]byte(out), &e); err != nil || e.Event.Sample != "s"+hostileText {
		t.Errorf("--json sample decodes to %q (%v), want the server's text", e.Event.Sample, err)
	}
}

// writeKeyPair writes prefix.key (0600, never overwritten) and prefix.pub
// of a log named origin, as custody keygen does.
func writeKeyPair(prefix, origin string) (string, error) {
	vkey, err := keyfile.WriteLog(prefix, origin)
	return vkey, keyErr(err, "", "the origin must be a non-empty name without spaces or '+', e.g. example.com/custody")
}
