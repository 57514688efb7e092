package cmd

// Disk fault drills: the database's file system full or read-only (a real
// size-limited tmpfs, and an injected store error that never skips), and
// the database rolled back to an older copy (caught by audit with state).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/httpapi"
	"github.com/custodylog/custody/log"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/store/sqlite"
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

// mountTmpfs mounts a tmpfs of the given size on a new directory and
// unmounts it at cleanup. It skips the test (loudly) where mounting is not
// allowed: the injected-fault test below covers the same path everywhere.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("SKIPPED DISK-FAULT DRILL: cannot mount a tmpfs (needs root and mount rights): %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// fill writes a file in dir until the file system is full.
func fill(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v, want ENOSPC", dir, err)
			}
			return p
		}
	}
}

// postRaw posts events and returns the status, Retry-After and body.
func postRaw(t *testing.T, url string, lines []string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest("POST", url+"/v1/events", strings.NewReader(strings.Join(lines, "\n")+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), string(b)
}

func faultEvents(prefix string, from, n int) []string {
	var out []string
	for i := from; i < from+n; i++ {
		out = append(out, eventLine(fmt.Sprintf("%s-%d", prefix, i), "collected", i))
	}
	return out
}

// wantReceipts checks that a 200 body holds receipts for indexes from,
// from+1, ... that verify offline, and returns them.
func wantReceipts(t *testing.T, body string, from uint64, n int, origin string, v note.Verifier) []verify.Receipt {
	t.Helper()
	rs, err := parseReceipts([]byte(body), n)
	if err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	for i, r := range rs {
		if r.Index != from+uint64(i) {
			t.Fatalf("receipt %d has index %d, want %d (a gap or a duplicate)", i, r.Index, from+uint64(i))
		}
		if _, _, err := verify.CheckReceipt(r, origin, note.VerifierList(v), nil); err != nil {
			t.Fatalf("receipt %d: %v", r.Index, err)
		}
	}
	return rs
}

// faultServer is an initialised log in dir served by a child process.
type faultServer struct {
	logDir, tokens, origin string
	v                      note.Verifier
	srv                    *server
}

func newFaultServer(t *testing.T, logDir string) *faultServer {
	t.Helper()
	f := &faultServer{logDir: logDir, tokens: writeTokens(t, t.TempDir()), origin: "example.com/faults"}
	f.v = initLog(t, logDir, f.origin)
	f.start(t)
	return f
}

func (f *faultServer) start(t *testing.T) {
	t.Helper()
	f.srv = startServer(t, "--dir", f.logDir, "--token-file", f.tokens, "--max-wait", "1ms")
}

func (f *faultServer) checkpoint(t *testing.T) string {
	t.Helper()
	return string(httpGet(t, f.srv.url+"/checkpoint"))
}

// wantUnavailable posts events and wants 503 with Retry-After, a body that
// names no internals, and the checkpoint unchanged.
func (f *faultServer) wantUnavailable(t *testing.T, lines []string, dir string) {
	t.Helper()
	before := f.checkpoint(t)
	code, retry, body := postRaw(t, f.srv.url, lines)
	if code != http.StatusServiceUnavailable || retry == "" {
		t.Fatalf("append under a disk fault: %d, Retry-After %q, body %s; want 503 with Retry-After", code, retry, body)
	}
	for _, leak := range []string{"sqlite", "SQLITE", "disk", "full", dir, ".db"} {
		if strings.Contains(body, leak) {
			t.Errorf("503 body leaks %q: %s", leak, body)
		}
	}
	if after := f.checkpoint(t); after != before {
		t.Fatalf("a failed append published a checkpoint:\n%s\nwas\n%s", after, before)
	}
}

// TestDiskFull fills the file system holding the database while the server
// runs: appends answer 503 with Retry-After and a logged commit error,
// nothing is published; once space is freed the same request gets receipts
// at the next indexes and the earlier receipts still hold.
func TestDiskFull(t *testing.T) {
	mnt := mountTmpfs(t, "4m")
	f := newFaultServer(t, filepath.Join(mnt, "log"))

	var all []verify.Receipt
	code, _, body := postRaw(t, f.srv.url, faultEvents("full", 0, 5))
	if code != 200 {
		t.Fatalf("append before the fault: %d %s", code, body)
	}
	all = append(all, wantReceipts(t, body, 0, 5, f.origin, f.v)...)

	filler := fill(t, mnt)
	batch := faultEvents("full", 5, 50)
	f.wantUnavailable(t, batch, mnt)
	f.wantUnavailable(t, batch, mnt) // and again: the reload after a failure fails cleanly too
	// Reads still work on a full disk.
	httpGet(t, f.srv.url+"/tile/entries/000.p/5")
	httpGet(t, f.srv.url+"/v1/entries/4")

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	code, _, body = postRaw(t, f.srv.url, batch)
	if code != 200 {
		t.Fatalf("append after freeing space: %d %s", code, body)
	}
	all = append(all, wantReceipts(t, body, 5, len(batch), f.origin, f.v)...)
	code, _, body = postRaw(t, f.srv.url, faultEvents("full", 55, 3))
	if code != 200 {
		t.Fatalf("append after the retry: %d %s", code, body)
	}
	all = append(all, wantReceipts(t, body, 55, 3, f.origin, f.v)...)

	checkEarlierReceipts(t, f, all)
	f.srv.kill(t)
	wantLogLine(t, f.srv.logs.String(), "committing batch", "full")
	// After a restart nothing half-written shows up.
	f.start(t)
	checkEarlierReceipts(t, f, all)
}

// TestReadOnlyFileSystem remounts the log's file system read-only. A
// read-only remount is refused (EBUSY) while the server holds the database
// open for writing, so the server is stopped, the file system remounted
// read-only and the server started on it; then remounted read-write and
// started again.
func TestReadOnlyFileSystem(t *testing.T) {
	mnt := mountTmpfs(t, "8m")
	f := newFaultServer(t, filepath.Join(mnt, "log"))
	code, _, body := postRaw(t, f.srv.url, faultEvents("ro", 0, 5))
	if code != 200 {
		t.Fatalf("append: %d %s", code, body)
	}
	all := wantReceipts(t, body, 0, 5, f.origin, f.v)

	// While the server runs, a read-only remount is refused by the kernel.
	if out, err := exec.Command("mount", "-o", "remount,ro", mnt).CombinedOutput(); err == nil {
		t.Logf("remount,ro succeeded while the server ran (kernel did not refuse): %s", out)
		exec.Command("mount", "-o", "remount,rw", mnt).Run()
	}

	f.srv.kill(t) // SIGKILL: the WAL and its index stay, as after a crash
	if out, err := exec.Command("mount", "-o", "remount,ro", mnt).CombinedOutput(); err != nil {
		t.Fatalf("remount,ro with the server stopped: %v: %s", err, out)
	}
	// On a read-only file system serve must either refuse to start with a
	// clear error, or serve reads and answer appends 503.
	cmd := exec.Command(os.Args[0], "serve", "--listen", "127.0.0.1:0", "--dir", f.logDir, "--token-file", f.tokens)
	cmd.Env = append(os.Environ(), "CUSTODY_TEST_AS_MAIN=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("serve on a read-only file system exited 0:\n%s", stderr.String())
		}
		msg := stderr.String()
		if !strings.Contains(strings.ToLower(msg), "read-only") && !strings.Contains(strings.ToLower(msg), "readonly") {
			t.Errorf("serve on a read-only file system failed without saying so:\n%s", msg)
		}
		t.Logf("serve on a read-only file system refuses to start: %s", strings.TrimSpace(msg))
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Logf("serve on a read-only file system kept running:\n%s", stderr.String())
	}

	if out, err := exec.Command("mount", "-o", "remount,rw", mnt).CombinedOutput(); err != nil {
		t.Fatalf("remount,rw: %v: %s", err, out)
	}
	f.start(t)
	checkEarlierReceipts(t, f, all)
	code, _, body = postRaw(t, f.srv.url, faultEvents("ro", 5, 5))
	if code != 200 {
		t.Fatalf("append after remount,rw: %d %s", code, body)
	}
	all = append(all, wantReceipts(t, body, 5, 5, f.origin, f.v)...)
	checkEarlierReceipts(t, f, all)
}

// checkEarlierReceipts checks that every receipt's entry is in the log at
// its index and that its checkpoint is consistent with the current one.
func checkEarlierReceipts(t *testing.T, f *faultServer, rs []verify.Receipt) {
	t.Helper()
	receipts := map[uint64][]byte{}
	cps := map[uint64][32]byte{}
	for _, r := range rs {
		receipts[r.Index] = r.Entry
		c, _, err := verify.OpenCheckpoint([]byte(r.Checkpoint), f.v.Name(), note.VerifierList(f.v))
		if err != nil {
			t.Fatal(err)
		}
		cps[c.Size] = c.Root
	}
	checkAfterRestart(t, f.srv.url, f.v, receipts, cps)
	c, _, err := verify.OpenCheckpoint([]byte(f.checkpoint(t)), f.v.Name(), note.VerifierList(f.v))
	if err != nil {
		t.Fatal(err)
	}
	if c.Size != uint64(len(rs)) {
		t.Fatalf("log size %d, want %d (every receipt, nothing else)", c.Size, len(rs))
	}
}

// wantLogLine checks for a JSON log line with the message whose err
// contains errPart.
func wantLogLine(t *testing.T, logs, msg, errPart string) {
	t.Helper()
	for _, line := range strings.Split(logs, "\n") {
		var m struct{ Level, Msg, Err string }
		if json.Unmarshal([]byte(line), &m) == nil && m.Msg == msg && strings.Contains(m.Err, errPart) && m.Level == "ERROR" {
			return
		}
	}
	t.Errorf("no ERROR log line %q with an error containing %q:\n%s", msg, errPart, logs)
}

// faultStore fails Append (and, optionally, reads of the latest checkpoint,
// as a reload after a failed commit does) while err is set.
type faultStore struct {
	store.Store
	mu     sync.Mutex
	err    error
	reload bool // also fail Latest
	calls  int
}

func (f *faultStore) set(err error, reload bool) {
	f.mu.Lock()
	f.err, f.reload = err, reload
	f.mu.Unlock()
}

func (f *faultStore) Append(ctx context.Context, b store.Batch) error {
	f.mu.Lock()
	err := f.err
	f.calls++
	f.mu.Unlock()
	if err != nil {
		return err
	}
	return f.Store.Append(ctx, b)
}

func (f *faultStore) Latest(ctx context.Context) (store.Checkpoint, error) {
	f.mu.Lock()
	err, reload := f.err, f.reload
	f.mu.Unlock()
	if err != nil && reload {
		return store.Checkpoint{}, err
	}
	return f.Store.Latest(ctx)
}

// TestInjectedDiskFaults serves a log whose store fails commits with the
// errors SQLite gives for a full or failing disk, through httpapi.New.
func TestInjectedDiskFaults(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "custody.db")
	key := fixedKey(t, auditOrigin, 1)
	st, err := sqlite.Open(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	if err := log.Create(ctx, st, key.signer); err != nil {
		t.Fatal(err)
	}
	fs := &faultStore{Store: st}
	var logs syncBuffer
	logger := slogJSON(&logs)
	l, err := log.Open(ctx, log.Config{Store: fs, Signer: key.signer, Verifier: key.verifier, MaxWait: -1, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	srv := httptest.NewServer(httpapi.New(l, httpapi.Config{Tokens: []string{testToken}, Logger: logger}))
	defer srv.Close()
	f := &faultServer{origin: auditOrigin, v: key.verifier, srv: &server{url: srv.URL}}

	code, _, body := postRaw(t, srv.URL, faultEvents("inj", 0, 3))
	if code != 200 {
		t.Fatalf("append: %d %s", code, body)
	}
	all := wantReceipts(t, body, 0, 3, f.origin, f.v)
	next := uint64(3)
	faults := []struct {
		name   string
		err    error
		reload bool
	}{
		{"disk I/O error", fmt.Errorf("sqlite: committing batch to %s: %w", dbPath, errors.New("disk I/O error")), false},
		{"database or disk is full", fmt.Errorf("sqlite: %s: %w", dbPath, errors.New("database or disk is full")), false},
		{"full, reload fails too", fmt.Errorf("sqlite: %s: %w", dbPath, errors.New("database or disk is full")), true},
		{"read-only", fmt.Errorf("sqlite: %s: %w", dbPath, errors.New("attempt to write a readonly database")), false},
	}
	for i, c := range faults {
		t.Run(c.name, func(t *testing.T) {
			batch := faultEvents(fmt.Sprintf("inj%d", i), 0, 4)
			fs.set(c.err, c.reload)
			f.wantUnavailable(t, batch, dir)
			f.wantUnavailable(t, batch, dir)
			fs.set(nil, false)
			code, _, body := postRaw(t, srv.URL, batch)
			if code != 200 {
				t.Fatalf("append after the fault cleared: %d %s", code, body)
			}
			all = append(all, wantReceipts(t, body, next, len(batch), f.origin, f.v)...)
			next += uint64(len(batch))
			// The same request again: the same receipts' indexes, no new entries.
			code, _, body = postRaw(t, srv.URL, batch)
			if code != 200 {
				t.Fatalf("repeat: %d %s", code, body)
			}
			rs, err := parseReceipts([]byte(body), len(batch))
			if err != nil || rs[0].Index != next-uint64(len(batch)) {
				t.Fatalf("repeat after recovery: %v, %+v", err, rs)
			}
			checkEarlierReceipts(t, f, all)
		})
	}
	fs.mu.Lock()
	calls := fs.calls
	fs.mu.Unlock()
	if calls == 0 {
		t.Fatal("the fault store was never asked to append")
	}
	wantLogLine(t, logs.String(), "committing batch", "database or disk is full")
	wantLogLine(t, logs.String(), "committing batch", "disk I/O error")
}

// TestDatabaseRollbackIsCaught restores an older copy of the database
// under a log an auditor has seen grow: the audit with the state from
// before fails with a rollback; a rolled-back log that then grows past the
// audited size along another history fails as a fork or as inconsistent.
func TestDatabaseRollbackIsCaught(t *testing.T) {
	key := fixedKey(t, auditOrigin, 1)
	a := newAuditLog(t, key)
	evs, _ := readAuditEvents(t, "dirty.jsonl")
	const n = 15
	a.add(t, evs[:n])
	state := t.TempDir()
	if code, _, stderr := runAuditCLI(t, a.url, a.pub, "--state", state); code == exitInvalid || code == exitUsageIO {
		t.Fatalf("audit at %d: exit %d: %s", n, code, stderr)
	}

	saved := filepath.Join(t.TempDir(), "custody.db.at-n")
	a.reopen(t, func(p string) { copyDB(t, p, saved) }) // closed: WAL checkpointed
	a.add(t, evs[n:])
	size := uint64(len(evs))
	if code, _, stderr := runAuditCLI(t, a.url, a.pub, "--state", state); code == exitInvalid || code == exitUsageIO {
		t.Fatalf("audit at %d: exit %d: %s", size, code, stderr)
	}
	if st, err := audit.ReadState(state); err != nil || st.Size != size {
		t.Fatalf("state after the second audit: %+v, %v", st, err)
	}
	stateFork := t.TempDir()
	copyDir(t, state, stateFork)

	a.reopen(t, func(p string) { copyDB(t, saved, p) })
	if got := a.Checkpoint().Size; got != n {
		t.Fatalf("restored log has size %d, want %d", got, n)
	}
	code, _, stderr := runAuditCLI(t, a.url, a.pub, "--state", state)
	ev := wantFailure(t, code, stderr, state, verify.EvidenceRollback)
	if ev.OldSize != size || ev.NewSize != n {
		t.Errorf("rollback evidence: old size %d new size %d, want %d and %d", ev.OldSize, ev.NewSize, size, n)
	}
	if st, _ := audit.ReadState(state); st.Size != size {
		t.Errorf("a failed audit moved the state to %d", st.Size)
	}

	// The rolled-back log grows again along another history, to the
	// audited size and past it.
	var other []record.Event
	for _, ev := range evs[n:] {
		ev.Actor = ev.Actor + "-rewritten"
		other = append(other, ev)
	}
	a.add(t, other)
	code, _, stderr = runAuditCLI(t, a.url, a.pub, "--state", stateFork)
	wantFailure(t, code, stderr, stateFork, verify.EvidenceFork)

	grown := t.TempDir()
	copyDir(t, stateFork, grown)
	ms, _ := filepath.Glob(filepath.Join(grown, "evidence-*.json"))
	for _, m := range ms {
		os.Remove(m)
	}
	extra := evs[len(evs)-1]
	extra.Sample += "-extra"
	a.add(t, []record.Event{extra})
	code, _, stderr = runAuditCLI(t, a.url, a.pub, "--state", grown)
	if code != exitInvalid {
		t.Fatalf("audit of a rolled-back log grown past the audited size along another history: exit %d:\n%s", code, stderr)
	}
	kinds := evidenceIn(t, grown)
	if len(kinds) != 1 || (kinds[0].Kind != verify.EvidenceFork && kinds[0].Kind != verify.EvidenceInconsistent) {
		t.Fatalf("evidence %+v, want one fork or inconsistent", kinds)
	}
	t.Logf("grown past the audited size: caught as %s", kinds[0].Kind)
}

// copyDB copies a closed SQLite database, removing any stale WAL and index
// of the destination.
func copyDB(t *testing.T, from, to string) {
	t.Helper()
	for _, sfx := range []string{"-wal", "-shm"} {
		if _, err := os.Stat(from + sfx); err == nil {
			t.Fatalf("%s%s exists: the database was not closed cleanly", from, sfx)
		}
		os.Remove(to + sfx)
	}
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	ms, err := filepath.Glob(filepath.Join(from, "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(to, filepath.Base(m)), b)
	}
}

func slogJSON(w io.Writer) *slog.Logger { return slog.New(slog.NewJSONHandler(w, nil)) }

// parseReceipts decodes the receipts of an answer to POST /v1/events and
// requires want of them.
func parseReceipts(b []byte, want int) ([]verify.Receipt, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	var out []verify.Receipt
	for {
		var r verify.Receipt
		if err := dec.Decode(&r); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("server sent a malformed receipt: %w", err)
		}
		out = append(out, r)
	}
	if len(out) != want {
		return nil, fmt.Errorf("server sent %d receipts for %d events", len(out), want)
	}
	return out, nil
}
