package cmd

// Tests for whoever hands an auditor a copy of the log (a directory or a
// URL): symlinks, FIFOs, redirects, hostile bytes, terminal escapes, key
// confusion, garbage receipts, a state of another key, a hanging webhook.
// Each performs the attack and checks that it fails safely.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/verify"
)

// secretText is what a hostile log tries to make the auditor copy out.
const secretText = "AWS_SECRET_ACCESS_KEY=do-not-leak-4f2a"

// noSecret fails if any of outs contains the secret (or part of it).
func noSecret(t *testing.T, what string, outs ...string) {
	t.Helper()
	for _, s := range outs {
		if strings.Contains(s, "do-not-leak") {
			t.Errorf("%s contains the secret:\n%s", what, s)
		}
	}
}

// evidenceFiles returns the raw evidence files in dir and checks that
// each has mode 0600.
func evidenceFiles(t *testing.T, dir string) []string {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(dir, "evidence-*.json"))
	var out []string
	for _, n := range names {
		fi, err := os.Stat(n)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("evidence file %s has mode %04o, want 0600", n, fi.Mode().Perm())
		}
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// smallMirror returns a tlog-tiles directory of a real log of 5 events and
// the log (for its key file).
func smallMirror(t *testing.T) (string, *auditLog) {
	t.Helper()
	key := fixedKey(t, auditOrigin, 1)
	a := newAuditLog(t, key)
	evs, _ := readAuditEvents(t, "clean.jsonl")
	a.add(t, evs[:5])
	dir, _ := mirror(t, a.url, key)
	return dir, a
}

// secretFile writes the secret to a file outside any log directory.
func secretFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(p, []byte(secretText+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// runWithin runs custody in-process in a goroutine and fails the test if
// it has not returned when ctx is done (a blocked open, say).
func runWithin(ctx context.Context, t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	type result struct {
		code        int
		out, stderr string
	}
	done := make(chan result, 1)
	go func() {
		var out, errb syncBuffer
		code := Main(args, strings.NewReader(""), &out, &errb)
		done <- result{code, out.String(), errb.String()}
	}()
	select {
	case r := <-done:
		return r.code, r.out, r.stderr
	case <-ctx.Done():
		t.Fatalf("custody %v still runs at the test's deadline (blocked)", args)
		return 0, "", ""
	}
}

// TestAuditDirectoryLogExfiltration hands `custody audit` and `verify`
// log directories whose checkpoint or entry bundle is a symbolic link to a
// secret outside the directory (or /proc/self/environ), a FIFO, or a
// regular file holding the secret: nothing outside the directory is read,
// nothing blocks, no evidence holds the secret, evidence files are 0600.
func TestAuditDirectoryLogExfiltration(t *testing.T) {
	// Bounds only a run that blocks (the bug); a correct run returns at once.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	secret := secretFile(t)
	bundle := func(dir string) string {
		names, _ := filepath.Glob(filepath.Join(dir, "tile", "entries", "000*"))
		if len(names) != 1 {
			t.Fatalf("bundles %v", names)
		}
		fi, _ := os.Stat(names[0])
		if fi.IsDir() { // 000.p/5
			inner, _ := filepath.Glob(filepath.Join(names[0], "*"))
			return inner[0]
		}
		return names[0]
	}
	for _, tc := range []struct {
		name   string
		attack func(t *testing.T, dir string)
		code   int
		want   string
	}{
		{"checkpoint symlinked to a secret", func(t *testing.T, dir string) {
			replaceWith(t, filepath.Join(dir, "checkpoint"), func(p string) error { return os.Symlink(secret, p) })
		}, exitUsageIO, "outside the log directory"},
		{"checkpoint symlinked to /proc/self/environ", func(t *testing.T, dir string) {
			replaceWith(t, filepath.Join(dir, "checkpoint"), func(p string) error { return os.Symlink("/proc/self/environ", p) })
		}, exitUsageIO, "outside the log directory"},
		{"entry bundle symlinked to a secret", func(t *testing.T, dir string) {
			replaceWith(t, bundle(dir), func(p string) error { return os.Symlink(secret, p) })
		}, exitUsageIO, "outside the log directory"},
		{"checkpoint is a FIFO", func(t *testing.T, dir string) {
			replaceWith(t, filepath.Join(dir, "checkpoint"), func(p string) error { return syscall.Mkfifo(p, 0o644) })
		}, exitUsageIO, "FIFO"},
		{"entry bundle is a FIFO", func(t *testing.T, dir string) {
			replaceWith(t, bundle(dir), func(p string) error { return syscall.Mkfifo(p, 0o644) })
		}, exitUsageIO, "FIFO"},
		{"checkpoint is a copy of a secret", func(t *testing.T, dir string) {
			replaceWith(t, filepath.Join(dir, "checkpoint"), func(p string) error { return os.WriteFile(p, []byte(secretText+"\n"), 0o644) })
		}, exitInvalid, "failed verification (bad-signature)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, a := smallMirror(t)
			tc.attack(t, dir)
			state := t.TempDir()
			code, out, stderr := runWithin(ctx, t, "audit", "--log", dir, "--key", a.pub, "--policy", auditPolicy(t), "--state", state)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Errorf("audit: exit %d, want %d with %q; stderr:\n%s", code, tc.code, tc.want, stderr)
			}
			noSecret(t, "audit output", out, stderr)
			evs := evidenceFiles(t, state)
			noSecret(t, "evidence", evs...)
			if tc.code == exitInvalid {
				if len(evs) != 1 || !strings.Contains(evs[0], `"new_checkpoint_sha256"`) || strings.Contains(evs[0], `"new_checkpoint"`) {
					t.Errorf("evidence, want one with only the checkpoint's hash:\n%s", evs)
				}
			} else if len(evs) != 0 {
				t.Errorf("evidence written for an I/O error: %s", evs)
			}
			// verify inclusion reads the same directory.
			evDir := t.TempDir()
			code, out, stderr = runWithin(ctx, t, "verify", "inclusion", "--log", dir, "--key", a.pub, "--index", "0", "--evidence-dir", evDir)
			if code == exitOK {
				if strings.Contains(tc.name, "entry bundle") {
					t.Errorf("verify inclusion read a bundle that is %s", tc.name)
				}
			} else if code != tc.code {
				t.Errorf("verify inclusion: exit %d, want %d; stderr:\n%s", code, tc.code, stderr)
			}
			noSecret(t, "verify output", out, stderr)
			noSecret(t, "evidence", evidenceFiles(t, evDir)...)
		})
	}
}

// replaceWith removes the file at p and lets make create something there.
func replaceWith(t *testing.T, p string, make func(p string) error) {
	t.Helper()
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := make(p); err != nil {
		t.Fatal(err)
	}
}

// TestAuditRedirectExfiltration: a log answering /checkpoint (or a tile)
// with a redirect to an internal server holding a secret. audit, verify and
// monitor refuse to follow it (saying so), the internal server is never
// asked, and the secret reaches neither output, evidence nor webhook.
func TestAuditRedirectExfiltration(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir, a := smallMirror(t)
	var internalHits atomic.Int64
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		internalHits.Add(1)
		fmt.Fprintln(w, secretText)
	}))
	defer internal.Close()
	var redirectTile atomic.Bool
	files := http.FileServer(http.Dir(dir))
	hostile := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/checkpoint" && !redirectTile.Load() || strings.HasPrefix(r.URL.Path, "/tile/entries/") && redirectTile.Load() {
			http.Redirect(w, r, internal.URL+"/latest/meta-data/iam", http.StatusFound)
			return
		}
		files.ServeHTTP(w, r)
	}))
	defer hostile.Close()

	for _, tile := range []bool{false, true} {
		redirectTile.Store(tile)
		state := t.TempDir()
		code, out, stderr := runWithin(ctx, t, "audit", "--log", hostile.URL, "--key", a.pub, "--policy", auditPolicy(t), "--state", state)
		if code != exitUsageIO || !strings.Contains(stderr, "redirect to another origin refused") || !strings.Contains(stderr, internal.URL) {
			t.Errorf("audit (redirected tile: %v): exit %d, want 3 naming the refused redirect; stderr:\n%s", tile, code, stderr)
		}
		noSecret(t, "audit output", out, stderr)
		if evs := evidenceFiles(t, state); len(evs) != 0 {
			t.Errorf("evidence written: %s", evs)
		}
	}
	redirectTile.Store(false)
	evDir := t.TempDir()
	code, out, stderr := runWithin(ctx, t, "verify", "checkpoint", hostile.URL, "--key", a.pub, "--evidence-dir", evDir)
	if code != exitUsageIO || !strings.Contains(stderr, "another origin") {
		t.Errorf("verify checkpoint: exit %d, want 3; stderr:\n%s", code, stderr)
	}
	noSecret(t, "verify output", out, stderr)
	noSecret(t, "evidence", evidenceFiles(t, evDir)...)

	// monitor: the failure goes to the webhook, without the secret.
	hook := newHookRecorder(t)
	m := startMonitor(ctx, t, "--log", hostile.URL, "--key", a.pub, "--policy", auditPolicy(t), "--state", t.TempDir(),
		"--every", "10ms", "--webhook", hook.srv.URL)
	hook.waitFor(ctx, t, 1)
	m.stop(t)
	bodies := hook.all()
	noSecret(t, "webhook bodies", bodies...)
	noSecret(t, "monitor output", m.stdout.String(), m.stderr.String())
	if len(bodies) != 1 || !strings.Contains(bodies[0], "redirect to another origin refused") {
		t.Errorf("webhook bodies, want one failure naming the refused redirect: %q", bodies)
	}
	if n := internalHits.Load(); n != 0 {
		t.Errorf("the internal server was asked %d times", n)
	}
}

// TestEvidenceFromServedGarbage: a log serving a secret (not a checkpoint)
// as its checkpoint gets bad-signature evidence holding only the hash and
// size of what it served, written 0600; a badly signed checkpoint note of
// the log's origin is kept verbatim.
func TestEvidenceFromServedGarbage(t *testing.T) {
	dir, a := smallMirror(t)
	good, err := os.ReadFile(filepath.Join(dir, "checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	var served atomic.Pointer[[]byte]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(*served.Load()) }))
	defer srv.Close()
	garbage := []byte(secretText + "\n")
	served.Store(&garbage)
	evDir := t.TempDir()
	code, out, stderr := run(t, "", "verify", "checkpoint", srv.URL, "--key", a.pub, "--evidence-dir", evDir)
	ev := wantFailure(t, code, stderr, evDir, verify.EvidenceBadSignature)
	if ev.NewCheckpoint != "" || ev.NewCheckpointBytes != len(garbage) || len(ev.NewCheckpointSHA256) != 64 {
		t.Errorf("evidence %+v, want only the hash and size of the served bytes", ev)
	}
	noSecret(t, "output", out, stderr)
	noSecret(t, "evidence", evidenceFiles(t, evDir)...)

	flipped := flipSignature(t, good)
	served.Store(&flipped)
	evDir = t.TempDir()
	code, _, stderr = run(t, "", "verify", "checkpoint", srv.URL, "--key", a.pub, "--evidence-dir", evDir)
	if ev := wantFailure(t, code, stderr, evDir, verify.EvidenceBadSignature); ev.NewCheckpoint != string(flipped) {
		t.Errorf("evidence does not hold the badly signed checkpoint: %+v", ev)
	}
	evidenceFiles(t, evDir) // mode 0600
}

// hookRecorder is a webhook that records the bodies posted to it.
type hookRecorder struct {
	srv    *httptest.Server
	mu     sync.Mutex
	bodies []string
	posted chan struct{}
}

func newHookRecorder(t *testing.T) *hookRecorder {
	h := &hookRecorder{posted: make(chan struct{}, 1)}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.bodies = append(h.bodies, string(b))
		h.mu.Unlock()
		select {
		case h.posted <- struct{}{}:
		default:
		}
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookRecorder) all() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.bodies...)
}

// waitFor waits until n bodies arrived, failing at ctx's deadline.
func (h *hookRecorder) waitFor(ctx context.Context, t *testing.T, n int) {
	t.Helper()
	for len(h.all()) < n {
		select {
		case <-h.posted:
		case <-ctx.Done():
			t.Fatalf("webhook got %d bodies at the test's deadline, want %d", len(h.all()), n)
		}
	}
}

// monitorRun is `custody monitor` running in this process.
type monitorRun struct {
	stdout, stderr *notifyBuffer
	cancel         context.CancelFunc
	done           chan error
}

// notifyBuffer is a syncBuffer that signals every write.
type notifyBuffer struct {
	syncBuffer
	wrote chan struct{}
}

func (b *notifyBuffer) Write(p []byte) (int, error) {
	n, err := b.syncBuffer.Write(p)
	select {
	case b.wrote <- struct{}{}:
	default:
	}
	return n, err
}

// waitFor waits until cond holds for what was written, failing at ctx's
// deadline.
func (b *notifyBuffer) waitFor(ctx context.Context, t *testing.T, what string, cond func(string) bool) {
	t.Helper()
	for !cond(b.String()) {
		select {
		case <-b.wrote:
		case <-ctx.Done():
			t.Fatalf("%s: not there at the test's deadline; output:\n%s", what, b.String())
		}
	}
}

func startMonitor(ctx context.Context, t *testing.T, args ...string) *monitorRun {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	m := &monitorRun{
		stdout: &notifyBuffer{wrote: make(chan struct{}, 1)},
		stderr: &notifyBuffer{wrote: make(chan struct{}, 1)},
		cancel: cancel, done: make(chan error, 1),
	}
	e := &env{stdin: strings.NewReader(""), stdout: m.stdout, stderr: m.stderr}
	c := e.monitorCmd()
	c.SetArgs(args)
	c.SetOut(m.stdout)
	c.SetErr(m.stderr)
	c.SilenceUsage, c.SilenceErrors = true, true
	go func() { m.done <- c.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-m.done
	})
	return m
}

// stop cancels the monitor (as SIGINT does) and waits for it to return.
func (m *monitorRun) stop(t *testing.T) {
	t.Helper()
	m.cancel()
	if err := <-m.done; err != nil {
		t.Errorf("monitor returned %v", err)
	}
	m.done <- nil // for the cleanup
}

// entryBundle is the tlog-tiles entry bundle of entries.
func entryBundle(entries ...[]byte) []byte {
	var b []byte
	for _, e := range entries {
		b = binary.BigEndian.AppendUint16(b, uint16(len(e)))
		b = append(b, e...)
	}
	return b
}

// oneEntryLog writes a log directory holding the single entry, signed by
// key: whatever bytes a hostile log chooses to sign.
func oneEntryLog(t *testing.T, key logKey, entry []byte) string {
	t.Helper()
	dir := t.TempDir()
	leaf := verify.LeafHash(entry)
	writeFile(t, filepath.Join(dir, "checkpoint"), signCheckpoint(t, key, 1, leaf))
	writeFile(t, filepath.Join(dir, "tile", "0", "000.p", "1"), leaf[:])
	writeFile(t, filepath.Join(dir, "tile", "entries", "000.p", "1"), entryBundle(entry))
	return dir
}

// rawHTTPServer answers every request with the raw response text, so a
// test can send a status line net/http's server would not.
func rawHTTPServer(t *testing.T, response string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil || line == "\r\n" {
						break
					}
				}
				io.WriteString(c, response)
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// terminalControls fails if s holds anything a terminal interprets.
func terminalControls(t *testing.T, what, s string) {
	t.Helper()
	for i, r := range s {
		if r == '\n' {
			continue
		}
		if r < 0x20 || r == 0x7f || r >= 0x80 && r <= 0x9f || r == 0xfffd && strings.HasPrefix(s[i:], "\x9b") {
			t.Errorf("%s holds the control character %U at byte %d:\n%q", what, r, i, s)
			return
		}
	}
	if strings.Contains(s, "\x9b") {
		t.Errorf("%s holds a raw 0x9b byte (8-bit CSI):\n%q", what, s)
	}
}

// TestTerminalEscapes: a hostile log puts escape sequences (ESC ] title,
// clear screen, BEL, 8-bit and UTF-8 CSI) in its HTTP reason phrase and in
// the entries it signs. audit, verify and monitor print them escaped.
func TestTerminalEscapes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	key := fixedKey(t, auditOrigin, 1)
	pub := filepath.Join(t.TempDir(), "log.pub")
	writeFile(t, pub, []byte(key.vkey+"\n"))
	const evil = "\x1b]0;pwned\a\x1b[2J\x1b[1A\r\u009b31m\x9b"
	hostile := rawHTTPServer(t, "HTTP/1.1 503 "+evil+"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

	code, out, stderr := runWithin(ctx, t, "audit", "--log", hostile, "--key", pub, "--policy", auditPolicy(t), "--no-state")
	if code != exitUsageIO || !strings.Contains(stderr, `503 \x1b]0;pwned\a\x1b[2J\x1b[1A\r\u009b31m\x9b`) {
		t.Errorf("audit: exit %d, want 3 with the reason phrase escaped; stderr:\n%q", code, stderr)
	}
	terminalControls(t, "audit stdout", out)
	terminalControls(t, "audit stderr", stderr)
	code, out, stderr = runWithin(ctx, t, "verify", "checkpoint", hostile, "--key", pub)
	if code != exitUsageIO || !strings.Contains(stderr, `\x1b]0;pwned`) {
		t.Errorf("verify checkpoint: exit %d; stderr:\n%q", code, stderr)
	}
	terminalControls(t, "verify stdout", out)
	terminalControls(t, "verify stderr", stderr)

	// An entry the log signed, full of escapes: verify inclusion prints
	// entries; audit reports it as a bad entry.
	dir := oneEntryLog(t, key, []byte(`{"sample":"`+evil+`","action":"collected"}`))
	code, out, stderr = runWithin(ctx, t, "verify", "inclusion", "--log", dir, "--key", pub, "--index", "0")
	if code != exitOK || !strings.Contains(out, `{"sample":"\x1b]0;pwned\a`) {
		t.Errorf("verify inclusion: exit %d, want 0 with the entry escaped; stdout:\n%q\nstderr:\n%s", code, out, stderr)
	}
	terminalControls(t, "verify inclusion stdout", out)
	code, out, stderr = runWithin(ctx, t, "verify", "inclusion", "--log", dir, "--key", pub, "--index", "0", "--json")
	terminalControls(t, "verify inclusion --json stdout", out)
	terminalControls(t, "verify inclusion --json stderr", stderr)
	code, out, stderr = runWithin(ctx, t, "audit", "--log", dir, "--key", pub, "--policy", auditPolicy(t), "--no-state")
	if code != exitInvalid {
		t.Errorf("audit of a log with a bad entry: exit %d, want 2; stderr:\n%s", code, stderr)
	}
	terminalControls(t, "audit stdout", out)
	terminalControls(t, "audit stderr", stderr)

	// monitor, for people and as JSON, and its webhook.
	for _, asJSON := range []bool{false, true} {
		hook := newHookRecorder(t)
		args := []string{"--log", hostile, "--key", pub, "--policy", auditPolicy(t), "--state", t.TempDir(), "--every", "10ms", "--webhook", hook.srv.URL}
		if asJSON {
			args = append(args, "--json")
		}
		m := startMonitor(ctx, t, args...)
		m.stdout.waitFor(ctx, t, "the monitor's failure line", func(s string) bool { return strings.Contains(s, "failure") })
		m.stop(t)
		terminalControls(t, fmt.Sprintf("monitor (--json %v) stdout", asJSON), m.stdout.String())
		terminalControls(t, fmt.Sprintf("monitor (--json %v) stderr", asJSON), m.stderr.String())
		if !strings.Contains(m.stdout.String(), `pwned`) {
			t.Errorf("monitor stdout does not show the (escaped) reason: %q", m.stdout.String())
		}
	}
}

// TestAuditNamesStateOfAnotherKey: a new log with the same origin but
// another key, audited with the state of the first: exit 3, and the error
// says that the state belongs to another key, names the state directory
// and how to proceed; the state is untouched, no evidence is written.
func TestAuditNamesStateOfAnotherKey(t *testing.T) {
	first := newAuditLog(t, fixedKey(t, auditOrigin, 1))
	second := newAuditLog(t, fixedKey(t, auditOrigin, 2))
	evs, _ := readAuditEvents(t, "clean.jsonl")
	first.add(t, evs[:3])
	second.add(t, evs[:4])
	state := t.TempDir()
	code, _, stderr := runAuditCLI(t, first.url, first.pub, "--state", state)
	if code != exitOK || stderr != "custody: audit state in "+state+"\n" {
		t.Fatalf("audit of the first log: exit %d; stderr:\n%s", code, stderr)
	}
	before, err := os.ReadFile(filepath.Join(state, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runAuditCLI(t, second.url, second.pub, "--state", state)
	if code != exitUsageIO || out != "" {
		t.Fatalf("audit of another log of the same origin with the first's state: exit %d, want 3; stdout %q", code, out)
	}
	for _, want := range []string{"audit state in " + state, "another key of this origin", "--state DIR", "--no-state", "remove " + state} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "network, disk") {
		t.Errorf("stderr blames the network or disk:\n%s", stderr)
	}
	if after, _ := os.ReadFile(filepath.Join(state, "state.json")); !bytes.Equal(before, after) {
		t.Errorf("the state was changed")
	}
	if evs := evidenceFiles(t, state); len(evs) != 0 {
		t.Errorf("evidence written: %s", evs)
	}
	// Each way out works.
	if code, _, stderr := runAuditCLI(t, second.url, second.pub, "--state", t.TempDir()); code != exitOK {
		t.Errorf("audit with a separate --state: exit %d: %s", code, stderr)
	}
	if code, _, stderr := runAuditCLI(t, second.url, second.pub, "--no-state"); code != exitOK {
		t.Errorf("audit --no-state: exit %d: %s", code, stderr)
	}
}

// TestVerifyReceiptGarbage: input that is not a receipt is exit 3 without
// evidence; a well-formed receipt that fails is exit 2 with evidence.
func TestVerifyReceiptGarbage(t *testing.T) {
	key := fixedKey(t, auditOrigin, 1)
	a := newAuditLog(t, key)
	evs, _ := readAuditEvents(t, "clean.jsonl")
	a.add(t, evs[:3])
	rs, err := a.AddMany(context.Background(), []record.Event{evs[1]}) // logged: returns its receipt
	if err != nil {
		t.Fatal(err)
	}
	good, err := json.Marshal(rs[0])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(good, &m)
	withCheckpoint := func(cp string) string {
		c := map[string]any{}
		for k, v := range m {
			c[k] = v
		}
		c["checkpoint"] = cp
		b, _ := json.Marshal(c)
		return string(b)
	}
	for name, input := range map[string]string{
		"empty object":            "{}",
		"null":                    "null",
		"only an index":           `{"index": 1}`,
		"checkpoint is not notes": withCheckpoint("hello\n"),
		"checkpoint is a secret":  withCheckpoint(secretText),
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "receipt.json")
			writeFile(t, p, []byte(input+"\n"))
			evDir := t.TempDir()
			code, out, stderr := run(t, "", "verify", "receipt", p, "--key", a.pub, "--evidence-dir", evDir)
			if code != exitUsageIO || out != "" || !strings.Contains(stderr, "not a well-formed receipt") || !strings.Contains(stderr, "custody: hint: pass receipts as") {
				t.Errorf("exit %d, want 3 saying it is not a receipt; stdout %q; stderr:\n%s", code, out, stderr)
			}
			if evs := evidenceFiles(t, evDir); len(evs) != 0 {
				t.Errorf("garbage wrote evidence: %s", evs)
			}
			noSecret(t, "stderr", stderr)
		})
	}
	// A well-formed receipt with a changed index is evidence.
	m["index"] = 0
	b, _ := json.Marshal(m)
	p := filepath.Join(t.TempDir(), "receipt.json")
	writeFile(t, p, append(b, '\n'))
	evDir := t.TempDir()
	code, _, stderr := run(t, "", "verify", "receipt", p, "--key", a.pub, "--evidence-dir", evDir)
	wantFailure(t, code, stderr, evDir, verify.EvidenceBadReceipt)
	evidenceFiles(t, evDir) // mode 0600
}

// TestPrivateKeyNeverPrinted passes a log's (or witness's) private key
// where a verifier key belongs, at every entry point that parses one: as a
// file and as a string. Nothing prints the key; the error names the flag
// and the file, and the hint asks for the .pub file; monitor posts nothing.
func TestPrivateKeyNeverPrinted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir, _ := smallMirror(t)
	logDir := filepath.Join(t.TempDir(), "log")
	initLog(t, logDir, "example.com/private-key-test")
	logKeyFile := filepath.Join(logDir, "log.key")
	skeyBytes, err := os.ReadFile(logKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	skey := strings.TrimSpace(string(skeyBytes))
	secret := strings.SplitN(skey, "+", 5)[4]
	wit := filepath.Join(t.TempDir(), "wit")
	if code, _, stderr := run(t, "", "keygen", "--witness", "--origin", "witness.example.org/pk", "--out", wit); code != 0 {
		t.Fatal(stderr)
	}
	witSkey, _ := os.ReadFile(wit + ".key")
	witSecret := strings.SplitN(strings.TrimSpace(string(witSkey)), "+", 5)[4]
	cp := filepath.Join(dir, "checkpoint")
	policyWithKey := filepath.Join(t.TempDir(), "trust.policy")
	writeFile(t, policyWithKey, []byte("log "+skey+"\nquorum none\n"))
	tokens := writeTokens(t, t.TempDir())
	events := filepath.Join(t.TempDir(), "events.jsonl")
	writeFile(t, events, []byte(eventLine("smp-1", "collected", 0)+"\n"))
	hook := newHookRecorder(t)

	for _, tc := range []struct {
		name string
		args []string
		file string // the file that held the key, to be named
	}{
		{"verify checkpoint --key log.key", []string{"verify", "checkpoint", cp, "--key", logKeyFile}, logKeyFile},
		{"verify checkpoint --key <private key>", []string{"verify", "checkpoint", cp, "--key", skey}, ""},
		{"verify receipt --key log.key", []string{"verify", "receipt", cp, "--key", logKeyFile}, logKeyFile},
		{"verify inclusion --key log.key", []string{"verify", "inclusion", "--log", dir, "--index", "0", "--key", logKeyFile}, logKeyFile},
		{"verify consistency --key log.key", []string{"verify", "consistency", "--log", dir, "--old", cp, "--key", logKeyFile}, logKeyFile},
		{"audit --key log.key", []string{"audit", "--log", dir, "--policy", auditPolicy(t), "--no-state", "--key", logKeyFile}, logKeyFile},
		{"audit --key <private key>", []string{"audit", "--log", dir, "--policy", auditPolicy(t), "--no-state", "--key", skey}, ""},
		{"monitor --key log.key", []string{"monitor", "--log", dir, "--policy", auditPolicy(t), "--state", t.TempDir(), "--every", "10ms", "--webhook", hook.srv.URL, "--key", logKeyFile}, logKeyFile},
		{"serve --witness URL=log.key", []string{"serve", "--dir", logDir, "--listen", "127.0.0.1:0", "--witness", "http://127.0.0.1:9=" + logKeyFile}, logKeyFile},
		{"serve --witness URL=wit.key", []string{"serve", "--dir", logDir, "--listen", "127.0.0.1:0", "--witness", "http://127.0.0.1:9=" + wit + ".key"}, wit + ".key"},
		{"serve --witness URL=<private key>", []string{"serve", "--dir", logDir, "--listen", "127.0.0.1:0", "--witness", "http://127.0.0.1:9=" + skey}, ""},
		{"serve --trust with a private key", []string{"serve", "--dir", logDir, "--listen", "127.0.0.1:0", "--trust", policyWithKey}, policyWithKey},
		{"audit --trust with a private key", []string{"audit", "--log", dir, "--policy", auditPolicy(t), "--no-state", "--trust", policyWithKey}, policyWithKey},
		{"witness serve --log log.key", []string{"witness", "serve", "--dir", t.TempDir(), "--listen", "127.0.0.1:0", "--key", wit + ".key", "--log", logKeyFile}, logKeyFile},
		{"append --key log.key", []string{"append", "--log", "http://127.0.0.1:9", "--token-file", tokens, "--key", logKeyFile, events}, logKeyFile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, stderr := runWithin(ctx, t, tc.args...)
			if code == exitOK {
				t.Fatalf("exit 0; stderr:\n%s", stderr)
			}
			for _, s := range []string{secret, secret[:16], witSecret, witSecret[:16]} {
				if strings.Contains(out+stderr, s) {
					t.Fatalf("output contains the private key:\n%s\n%s", out, stderr)
				}
			}
			if !strings.Contains(stderr, "private signer key") {
				t.Errorf("stderr does not say a private key was given:\n%s", stderr)
			}
			if tc.file != "" && !strings.Contains(stderr, tc.file) {
				t.Errorf("stderr does not name %s:\n%s", tc.file, stderr)
			}
			if !strings.Contains(stderr, "custody: hint: ") || !strings.Contains(stderr, "pass the .pub file") {
				t.Errorf("stderr has no hint to pass the .pub file:\n%s", stderr)
			}
		})
	}
	if bodies := hook.all(); len(bodies) != 0 {
		t.Errorf("monitor posted to the webhook: %q", bodies)
	}
}

// TestMonitorHangingWebhook: a webhook that accepts posts and never
// answers must not stall the monitor. With many findings per round, each
// round still ends (its findings printed), later rounds keep auditing (a
// new finding is printed while the webhook still hangs), the undelivered
// posts are reported on stderr, and the monitor stops promptly. The test's
// context bounds the whole run; nothing waits on a wall clock.
func TestMonitorHangingWebhook(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	key := fixedKey(t, auditOrigin, 1)
	a := newAuditLog(t, key)
	evs, _ := readAuditEvents(t, "dirty.jsonl")
	const first = 12
	a.add(t, evs[:first])
	want := wantFindings(t, first)
	if len(want) < 3 {
		t.Fatalf("only %d findings in the first %d events", len(want), first)
	}

	release := make(chan struct{})
	var arrived atomic.Int64
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Add(1)
		select { // hang until the test ends (or the client gives up)
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hanging.Close()
	defer close(release)

	// The webhook budget per round is far below the test's deadline; the
	// old monitor waited 30s per post, in line with the audits.
	m := startMonitor(ctx, t, "--log", a.url, "--key", a.pub, "--policy", auditPolicy(t), "--state", t.TempDir(),
		"--every", "10ms", "--webhook", hanging.URL, "--webhook-budget", "300ms")
	m.stdout.waitFor(ctx, t, "all findings of the first round", func(s string) bool { return strings.Count(s, " finding: ") == len(want) })

	// A new finding in a later round, while the webhook still hangs.
	at := evs[first-1].Logged.Add(time.Minute)
	a.add(t, []record.Event{{Sample: "smp-eu-new1", Action: record.Collected, Location: "ru-mow-1", Region: "EU", Time: at.Add(-10 * time.Second), Logged: at, Actor: "edge-collector/4.2"}})
	m.stdout.waitFor(ctx, t, "the new finding of a later round", func(s string) bool { return strings.Contains(s, "smp-eu-new1 reroute") })
	// The first round's posts were given up and reported.
	m.stderr.waitFor(ctx, t, "the report of undelivered posts", func(s string) bool { return strings.Contains(s, "custody: webhook: ") })
	m.stop(t)

	stderr := m.stderr.String()
	if !strings.Contains(stderr, "dropped unsent") || !strings.Contains(stderr, "failed") {
		t.Errorf("stderr does not count failed and dropped posts:\n%s", stderr)
	}
	// Every finding was either tried or counted as dropped.
	var delivered, failed, dropped, n int
	for _, l := range lines(stderr) {
		if _, err := fmt.Sscanf(l, "custody: webhook: %d posts delivered, %d failed, %d dropped unsent", &delivered, &failed, &dropped); err == nil {
			if delivered != 0 {
				t.Errorf("posts delivered to a webhook that never answers: %s", l)
			}
			n += failed + dropped
		}
	}
	if n != len(want)+1 {
		t.Errorf("%d posts failed or dropped, want all %d:\n%s", n, len(want)+1, stderr)
	}
	if arrived.Load() == 0 {
		t.Errorf("the webhook was never called")
	}
}
