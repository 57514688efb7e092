package cmd

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/internal/tiles"
	"github.com/custodylog/custody/store/sqlite/sqlitetest"
	"io"
	"math/bits"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/verify"
	"github.com/google/go-cmp/cmp"
)

// audit runs `custody audit` on the log at src with the audit policy and
// returns the exit code and output.
func runAuditCLI(t *testing.T, src, pub string, extra ...string) (int, string, string) {
	t.Helper()
	return run(t, "", append([]string{"audit", "--log", src, "--key", pub, "--policy", auditPolicy(t)}, extra...)...)
}

// TestAuditExactFindings audits a real log holding the audit data sets,
// each event logged at exactly its logged time, over HTTP: the dirty set
// gives exactly dirty.findings.json (exit 1), the clean one none (exit 0);
// the root is the one x/mod's tlog computes from the data set's lines.
func TestAuditExactFindings(t *testing.T) {
	key := fixedKey(t, auditOrigin, 1)

	dirty, dirtyEvents := loadAuditLog(t, key, "dirty.jsonl")
	_, dirtyLines := readAuditEvents(t, "dirty.jsonl")
	state := t.TempDir()
	code, out, stderr := runAuditCLI(t, dirty.url, dirty.pub, "--state", state, "--json")
	if code != exitFailure {
		t.Fatalf("audit of dirty.jsonl: exit %d, want 1; stderr:\n%s", code, stderr)
	}
	want := wantFindings(t, ^uint64(0))
	if !strings.Contains(stderr, fmt.Sprintf("%d findings in %d entries of %s", len(want), len(dirtyEvents), auditOrigin)) {
		t.Errorf("stderr does not count the findings: %s", stderr)
	}
	rep := parseAuditJSON(t, out)
	if diff := cmp.Diff(want, rep.Findings); diff != "" {
		t.Errorf("findings (-dirty.findings.json +audit):\n%s", diff)
	}
	if diff := cmp.Diff(countEvents(dirtyEvents), rep.Counts); diff != "" {
		t.Errorf("counts (-events +audit):\n%s", diff)
	}
	cp := dirty.Checkpoint()
	if rep.Origin != auditOrigin || rep.Size != uint64(len(dirtyEvents)) || rep.From != 0 ||
		rep.Root != base64.StdEncoding.EncodeToString(cp.Root[:]) || rep.Root != tlogRoot(t, dirtyLines) {
		t.Errorf("report origin %q size %d from %d root %s; want %q, %d, 0, %s", rep.Origin, rep.Size, rep.From, rep.Root, auditOrigin, len(dirtyEvents), tlogRoot(t, dirtyLines))
	}
	if evs := evidenceIn(t, state); len(evs) != 0 {
		t.Errorf("a passing audit wrote evidence: %v", evs)
	}
	st, err := audit.ReadState(state)
	if err != nil || st == nil {
		t.Fatalf("no audit state written: %v", err)
	}
	if st.Size != uint64(len(dirtyEvents)) || st.Origin != auditOrigin || st.Checkpoint != string(cp.Note) {
		t.Errorf("state: size %d origin %q checkpoint %q", st.Size, st.Origin, st.Checkpoint)
	}

	clean, cleanEvents := loadAuditLog(t, key, "clean.jsonl")
	_, cleanLines := readAuditEvents(t, "clean.jsonl")
	cleanState := t.TempDir()
	code, out, stderr = runAuditCLI(t, clean.url, clean.pub, "--state", cleanState, "--json")
	if code != exitOK || stderr != "custody: audit state in "+cleanState+"\n" {
		t.Fatalf("audit of clean.jsonl: exit %d, want 0; stderr:\n%s", code, stderr)
	}
	rep = parseAuditJSON(t, out)
	if len(rep.Findings) != 0 || rep.Size != uint64(len(cleanEvents)) || rep.Root != tlogRoot(t, cleanLines) {
		t.Errorf("clean audit: size %d root %s findings %v", rep.Size, rep.Root, rep.Findings)
	}
	if diff := cmp.Diff(countEvents(cleanEvents), rep.Counts); diff != "" {
		t.Errorf("counts (-events +audit):\n%s", diff)
	}
	if !strings.Contains(out, `"findings": []`) {
		t.Errorf("clean audit JSON does not hold an empty findings array:\n%s", out)
	}

	// The human report. Key and logged times are fixed, so the root is too.
	cleanState = t.TempDir()
	code, out, stderr = runAuditCLI(t, clean.url, clean.pub, "--state", cleanState)
	if code != exitOK || stderr != "custody: audit state in "+cleanState+"\n" {
		t.Fatalf("audit of clean.jsonl: exit %d, want 0 and only the state directory on stderr; stderr:\n%s", code, stderr)
	}
	golden(t, "audit-clean.txt", out)
	// Without state, nothing is said about state.
	code, _, stderr = runAuditCLI(t, clean.url, clean.pub, "--no-state")
	if code != exitOK || stderr != "" {
		t.Fatalf("audit --no-state of clean.jsonl: exit %d, want 0 and an empty stderr; stderr:\n%s", code, stderr)
	}
}

// TestAuditStateContinues audits, appends, audits again: the second run
// continues from the first one's size and reports the old findings and the
// new ones; --full re-reads everything with the same result.
func TestAuditStateContinues(t *testing.T) {
	key := fixedKey(t, auditOrigin, 1)
	a := newAuditLog(t, key)
	evs, _ := readAuditEvents(t, "dirty.jsonl")
	const first = 15
	a.add(t, evs[:first])
	state := t.TempDir()

	code, out, stderr := runAuditCLI(t, a.url, a.pub, "--state", state, "--json")
	if code != exitFailure {
		t.Fatalf("first audit: exit %d, stderr:\n%s", code, stderr)
	}
	rep := parseAuditJSON(t, out)
	if diff := cmp.Diff(wantFindings(t, first), rep.Findings); diff != "" || rep.From != 0 || rep.Size != first {
		t.Fatalf("first audit: from %d size %d, findings (-want +got):\n%s", rep.From, rep.Size, diff)
	}

	a.add(t, evs[first:])
	code, out, stderr = runAuditCLI(t, a.url, a.pub, "--state", state, "--json")
	if code != exitFailure {
		t.Fatalf("second audit: exit %d, stderr:\n%s", code, stderr)
	}
	rep = parseAuditJSON(t, out)
	if rep.From != first || rep.Size != uint64(len(evs)) {
		t.Errorf("second audit: from %d size %d, want from %d size %d", rep.From, rep.Size, first, len(evs))
	}
	if diff := cmp.Diff(wantFindings(t, ^uint64(0)), rep.Findings); diff != "" {
		t.Errorf("second audit findings (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(countEvents(evs), rep.Counts); diff != "" {
		t.Errorf("second audit counts (-want +got):\n%s", diff)
	}
	_, human, _ := runAuditCLI(t, a.url, a.pub, "--state", state)
	if !strings.Contains(lines(human)[0], fmt.Sprintf("%d entries verified", len(evs))) || !strings.Contains(lines(human)[0], fmt.Sprintf("continued from %d", len(evs))) {
		t.Errorf("third audit's first line: %q", lines(human)[0])
	}

	code, out, stderr = runAuditCLI(t, a.url, a.pub, "--state", state, "--json", "--full")
	if code != exitFailure {
		t.Fatalf("--full audit: exit %d, stderr:\n%s", code, stderr)
	}
	full := parseAuditJSON(t, out)
	if full.From != 0 || full.Size != uint64(len(evs)) || full.Root != rep.Root {
		t.Errorf("--full audit: from %d size %d root %s, want 0, %d, %s", full.From, full.Size, full.Root, len(evs), rep.Root)
	}
	if diff := cmp.Diff(rep.Findings, full.Findings); diff != "" {
		t.Errorf("--full findings (-continued +full):\n%s", diff)
	}
	if diff := cmp.Diff(rep.Counts, full.Counts); diff != "" {
		t.Errorf("--full counts (-continued +full):\n%s", diff)
	}
	st, err := audit.ReadState(state)
	if err != nil || st == nil || st.Size != uint64(len(evs)) || len(st.Findings) != len(rep.Findings) {
		t.Fatalf("state after --full: %+v, %v", st, err)
	}
}

// TestAuditTamper runs the audit against logs that lie, each caught as the
// failure it is, with exit 2 and an evidence file of that kind.
func TestAuditTamper(t *testing.T) {
	key := fixedKey(t, auditOrigin, 1)
	a, evs := loadAuditLog(t, key, "dirty.jsonl")
	cp := a.Checkpoint()

	t.Run("wrong key", func(t *testing.T) {
		other := fixedKey(t, auditOrigin, 2)
		pub := filepath.Join(t.TempDir(), "other.pub")
		writeFile(t, pub, []byte(other.vkey+"\n"))
		state := t.TempDir()
		code, out, stderr := runAuditCLI(t, a.url, pub, "--state", state, "--json")
		ev := wantFailure(t, code, stderr, state, verify.EvidenceBadSignature)
		if ev.NewCheckpoint != string(cp.Note) || out != "" {
			t.Errorf("evidence holds checkpoint %q, want the served one; stdout %q", ev.NewCheckpoint, out)
		}
		if _, err := os.Stat(filepath.Join(state, "state.json")); err == nil {
			t.Error("a failed audit wrote state")
		}
	})

	t.Run("fork", func(t *testing.T) {
		state := t.TempDir()
		if code, _, stderr := runAuditCLI(t, a.url, a.pub, "--state", state); code != exitFailure {
			t.Fatalf("first audit: exit %d: %s", code, stderr)
		}
		// The auditor was shown another tree of the same size earlier: a
		// state holding its signed checkpoint and compact range.
		st, err := audit.ReadState(state)
		if err != nil {
			t.Fatal(err)
		}
		var other [][]byte
		for i := range evs {
			other = append(other, []byte(fmt.Sprintf("another history %d", i)))
		}
		root, tree := compactRange(other)
		forked := signCheckpoint(t, key, cp.Size, root)
		st.Checkpoint = string(forked)
		st.Tree = tree
		if err := audit.WriteState(state, st); err != nil {
			t.Fatal(err)
		}
		code, _, stderr := runAuditCLI(t, a.url, a.pub, "--state", state)
		ev := wantFailure(t, code, stderr, state, verify.EvidenceFork)
		if ev.OldCheckpoint != string(forked) || ev.NewCheckpoint != string(cp.Note) || ev.OldSize != cp.Size || ev.NewSize != cp.Size {
			t.Errorf("fork evidence: %+v", ev)
		}
		if after, _ := audit.ReadState(state); after.Checkpoint != string(forked) {
			t.Error("a failed audit replaced the state")
		}
	})

	t.Run("rollback", func(t *testing.T) {
		state := t.TempDir()
		if code, _, stderr := runAuditCLI(t, a.url, a.pub, "--state", state); code != exitFailure {
			t.Fatalf("first audit: exit %d: %s", code, stderr)
		}
		// The same log (same key, same first entries) shows fewer entries.
		short := newAuditLog(t, key)
		short.add(t, evs[:20])
		code, _, stderr := runAuditCLI(t, short.url, a.pub, "--state", state)
		ev := wantFailure(t, code, stderr, state, verify.EvidenceRollback)
		if ev.OldSize != cp.Size || ev.NewSize != 20 || ev.OldCheckpoint != string(cp.Note) {
			t.Errorf("rollback evidence: old size %d new size %d", ev.OldSize, ev.NewSize)
		}
	})

	t.Run("flipped root", func(t *testing.T) {
		// A server with the right key signs a checkpoint whose root is not
		// the root of the tiles and entries it serves.
		dir, _ := mirror(t, a.url, key)
		root := cp.Root
		root[7] ^= 0x10
		writeFile(t, filepath.Join(dir, "checkpoint"), signCheckpoint(t, key, cp.Size, root))
		fake := httptest.NewServer(http.FileServer(http.Dir(dir)))
		defer fake.Close()
		state := t.TempDir()
		code, _, stderr := runAuditCLI(t, fake.URL, a.pub, "--state", state)
		ev := wantFailure(t, code, stderr, state, verify.EvidenceRootMismatch)
		if ev.Expected != base64.StdEncoding.EncodeToString(root[:]) || ev.Computed != base64.StdEncoding.EncodeToString(cp.Root[:]) {
			t.Errorf("root-mismatch evidence: expected %s computed %s", ev.Expected, ev.Computed)
		}
	})

	// Last, since it changes the log: the operator edits entry 5 (the
	// continuity finding) in the database so that it looks clean.
	t.Run("entry edited in the database", func(t *testing.T) {
		const idx = 5
		a.reopen(t, func(path string) {
			var data []byte
			sqlitetest.QueryRow(t, path, "SELECT data FROM entries WHERE idx = ?", []any{idx}, &data)
			edited := bytes.Replace(data, []byte(`"location":"ch-zrh-1"`), []byte(`"location":"us-ash-1"`), 1)
			if bytes.Equal(edited, data) {
				t.Fatalf("entry %d is %s", idx, data)
			}
			if _, err := record.DecodeEntry(edited); err != nil {
				t.Fatalf("the edited entry is not a valid entry: %v", err)
			}
			sqlitetest.Exec(t, path, "UPDATE entries SET data = ? WHERE idx = ?", edited, idx)
		})
		policy, pub := auditPolicy(t), a.pub
		t.Chdir(t.TempDir()) // --no-state writes evidence to the current directory
		code, _, stderr := run(t, "", "audit", "--log", a.url, "--key", pub, "--policy", policy, "--no-state")
		wd, _ := os.Getwd()
		ev := wantFailure(t, code, stderr, ".", verify.EvidenceBadEntry)
		if ev.Index == nil || *ev.Index != idx || ev.Tile != fmt.Sprintf("tile/entries/000.p/%d", len(evs)) || ev.NewCheckpoint != string(cp.Note) {
			t.Errorf("bad-entry evidence (in %s): index %v tile %q", wd, ev.Index, ev.Tile)
		}
	})
}

// TestAuditDirectory mirrors a log of more than one tile to a directory
// and audits it there: the same report as over HTTP. Corrupting a full
// hash tile or an entry bundle of the mirror is caught.
func TestAuditDirectory(t *testing.T) {
	key := fixedKey(t, auditOrigin, 1)
	a, evs := loadAuditLog(t, key, "dirty.jsonl")
	// 260 more clean events: one full tile and bundle, partial ones at
	// levels 0 and 1.
	more := make([]record.Event, 260)
	at := evs[len(evs)-1].Logged.Add(time.Hour)
	for i := range more {
		more[i] = record.Event{Sample: fmt.Sprintf("smp-dir-%03d", i), Action: record.Collected, Location: "de-fra-1", Region: "EU", Time: at.Add(-time.Minute), Logged: at, Actor: "edge-collector/4.2"}
	}
	// Before they are added: an audit with state, and the checkpoint.
	continued := t.TempDir()
	if code, _, stderr := runAuditCLI(t, a.url, a.pub, "--state", continued); code != exitFailure {
		t.Fatalf("audit of %d entries: exit %d: %s", len(evs), code, stderr)
	}
	old := filepath.Join(t.TempDir(), "checkpoint")
	writeFile(t, old, httpGet(t, a.url+"/checkpoint"))
	entries := a.add(t, more)
	size := uint64(len(evs) + len(more))

	overHTTP := t.TempDir()
	code, want, stderr := runAuditCLI(t, a.url, a.pub, "--state", overHTTP, "--json")
	if code != exitFailure {
		t.Fatalf("audit over HTTP: exit %d: %s", code, stderr)
	}
	rep := parseAuditJSON(t, want)
	if rep.Size != size {
		t.Fatalf("size %d, want %d", rep.Size, size)
	}
	if diff := cmp.Diff(wantFindings(t, ^uint64(0)), rep.Findings); diff != "" {
		t.Errorf("findings (-dirty.findings.json +audit):\n%s", diff)
	}
	// Continuing from the middle of the first bundle gives the same.
	code, out, stderr := runAuditCLI(t, a.url, a.pub, "--state", continued, "--json")
	if c := parseAuditJSON(t, out); code != exitFailure || c.From != uint64(len(evs)) || c.Root != rep.Root ||
		!cmp.Equal(c.Findings, rep.Findings) || !cmp.Equal(c.Counts, rep.Counts) {
		t.Errorf("continued audit: exit %d, from %d, want %d; report:\n%s\nstderr: %s", code, c.From, len(evs), out, stderr)
	}

	dir, cp := mirror(t, a.url, key)
	if cp.Size != size {
		t.Fatalf("mirrored size %d", cp.Size)
	}
	for _, p := range []string{"tile/0/000", "tile/0/001.p/31", "tile/1/000.p/1", "tile/entries/000", "tile/entries/001.p/31"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Fatalf("mirror lacks %s: %v", p, err)
		}
	}
	code, got, stderr := runAuditCLI(t, dir, a.pub, "--state", t.TempDir(), "--json")
	if code != exitFailure {
		t.Fatalf("audit of the directory: exit %d: %s", code, stderr)
	}
	if got != want {
		t.Errorf("audit of the directory:\n%s\nover HTTP:\n%s", got, want)
	}

	// verify inclusion and consistency read the directory too.
	evDir := t.TempDir()
	for _, i := range []uint64{3, 255, 256, size - 1} {
		code, out, stderr := run(t, "", "verify", "inclusion", "--log", dir, "--key", a.pub, "--index", fmt.Sprint(i), "--json", "--evidence-dir", evDir)
		var inc struct{ Entry json.RawMessage }
		json.Unmarshal([]byte(out), &inc)
		var e bytes.Buffer
		json.Compact(&e, inc.Entry)
		wantEntry := httpGet(t, fmt.Sprintf("%s/v1/entries/%d", a.url, i))
		if i >= uint64(len(evs)) {
			if !bytes.Equal(e.Bytes(), entries[i-uint64(len(evs))]) {
				t.Errorf("verify inclusion --index %d: entry %s, want %s", i, e.Bytes(), entries[i-uint64(len(evs))])
			}
		}
		if code != 0 || e.Len() == 0 || !bytes.Contains(wantEntry, []byte(base64.StdEncoding.EncodeToString(e.Bytes()))) {
			t.Errorf("verify inclusion --index %d: exit %d, entry %s; stderr: %s", i, code, e.Bytes(), stderr)
		}
	}
	code, out, stderr = run(t, "", "verify", "consistency", "--log", dir, "--key", a.pub, "--old", old, "--evidence-dir", evDir)
	if code != 0 || !strings.HasPrefix(out, fmt.Sprintf("the tree of size %d extends the checkpoint of size %d", size, len(evs))) {
		t.Errorf("verify consistency: exit %d, %q: %s", code, out, stderr)
	}
	if len(evidenceIn(t, evDir)) != 0 {
		t.Error("passing checks wrote evidence")
	}

	flip := func(t *testing.T, path string, at int) {
		t.Helper()
		p := filepath.Join(dir, filepath.FromSlash(path))
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b[at] ^= 0x01
		writeFile(t, p, b)
		t.Cleanup(func() { b[at] ^= 0x01; writeFile(t, p, b) })
	}
	t.Run("bad hash tile", func(t *testing.T) {
		flip(t, "tile/0/000", 32*100+3)
		state := t.TempDir()
		code, _, stderr := runAuditCLI(t, dir, a.pub, "--state", state)
		ev := wantFailure(t, code, stderr, state, verify.EvidenceBadTile)
		if ev.Tile != "tile/0/000" {
			t.Errorf("bad-tile evidence names tile %q", ev.Tile)
		}
	})
	t.Run("bad entry bundle", func(t *testing.T) {
		// Entry 40 of the full bundle: skip 2-byte lengths and entries.
		b, _ := os.ReadFile(filepath.Join(dir, "tile", "entries", "000"))
		off := 0
		for i := 0; i < 40; i++ {
			off += 2 + (int(b[off])<<8 | int(b[off+1]))
		}
		flip(t, "tile/entries/000", off+2+len(`{"sample":"smp-dir-0`))
		state := t.TempDir()
		code, _, stderr := runAuditCLI(t, dir, a.pub, "--state", state)
		ev := wantFailure(t, code, stderr, state, verify.EvidenceBadEntry)
		if ev.Index == nil || *ev.Index != 40 || ev.Tile != "tile/entries/000" {
			t.Errorf("bad-entry evidence: index %v tile %q", ev.Index, ev.Tile)
		}
	})
}

// TestAuditTrustPolicy: with a trust policy requiring a witness, the
// uncosigned live log fails with quorum; a mirror whose checkpoint the
// witness cosigned passes verification (and has the dirty findings).
func TestAuditTrustPolicy(t *testing.T) {
	key := fixedKey(t, auditOrigin, 1)
	a, _ := loadAuditLog(t, key, "dirty.jsonl")
	w := newWitness(t, "witness.example.org/w1", 9)
	policy := filepath.Join(t.TempDir(), "trust.policy")
	writeFile(t, policy, []byte("log "+key.vkey+"\nwitness w1 "+w.vkey+"\nquorum w1\n"))

	state := t.TempDir()
	code, _, stderr := runAuditCLI(t, a.url, a.pub, "--state", state, "--trust", policy)
	wantFailure(t, code, stderr, state, verify.EvidenceQuorum)

	dir, _ := mirror(t, a.url, key)
	signed, _ := os.ReadFile(filepath.Join(dir, "checkpoint"))
	writeFile(t, filepath.Join(dir, "checkpoint"), w.cosign(t, key, signed))
	state = t.TempDir()
	code, out, stderr := runAuditCLI(t, dir, a.pub, "--state", state, "--trust", policy, "--json")
	if code != exitFailure {
		t.Fatalf("audit of the cosigned mirror: exit %d, want 1: %s", code, stderr)
	}
	if diff := cmp.Diff(wantFindings(t, ^uint64(0)), parseAuditJSON(t, out).Findings); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}

	// State kept before the auditor required witnesses stays usable: its
	// uncosigned checkpoint is checked against the log key only, the new
	// one against the quorum.
	state = t.TempDir()
	if code, _, stderr := runAuditCLI(t, a.url, a.pub, "--state", state); code != exitFailure {
		t.Fatalf("audit without --trust: exit %d: %s", code, stderr)
	}
	code, out, stderr = runAuditCLI(t, dir, a.pub, "--state", state, "--trust", policy, "--json")
	if code != exitFailure || parseAuditJSON(t, out).From == 0 {
		t.Fatalf("audit with --trust from earlier uncosigned state: exit %d, want 1 continuing from the state: %s %s", code, out, stderr)
	}
}

// TestMonitor runs `custody monitor` as a child process: it reports the
// findings of the existing entries once, then exactly the one new finding
// of an appended event, on stdout and to the webhook, and exits 0 on
// SIGINT.
func TestMonitor(t *testing.T) {
	t.Run("continuing", func(t *testing.T) { testMonitor(t) })
	// --full re-reads the whole log every round but still reports only
	// what is new.
	t.Run("full", func(t *testing.T) { testMonitor(t, "--full") })
}

func testMonitor(t *testing.T, extra ...string) {
	key := fixedKey(t, auditOrigin, 1)
	a := newAuditLog(t, key)
	evs, _ := readAuditEvents(t, "dirty.jsonl")
	const first = 12
	a.add(t, evs[:first])
	want := wantFindings(t, first)

	type hook struct {
		Kind    string        `json:"kind"`
		Origin  string        `json:"origin"`
		Size    uint64        `json:"size"`
		Finding audit.Finding `json:"finding"`
		Error   string        `json:"error"`
	}
	var mu sync.Mutex
	var hooks []hook
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var h hook
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || json.Unmarshal(b, &h) != nil {
			t.Errorf("webhook got %s %q: %s", r.Method, r.Header.Get("Content-Type"), b)
		}
		mu.Lock()
		hooks = append(hooks, h)
		mu.Unlock()
	}))
	defer receiver.Close()
	received := func() []hook {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(hooks)
	}

	state := t.TempDir()
	cmd := exec.Command(os.Args[0], append([]string{"monitor", "--log", a.url, "--key", a.pub, "--policy", auditPolicy(t),
		"--state", state, "--every", "200ms", "--webhook", receiver.URL}, extra...)...)
	cmd.Env = append(os.Environ(), "CUSTODY_TEST_AS_MAIN=1")
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
	}()

	waitFor(t, 20*time.Second, "the findings of the first entries at the webhook", func() bool { return len(received()) >= len(want) })
	check := func(want []audit.Finding, size uint64) {
		t.Helper()
		got := received()
		var fs []audit.Finding
		for _, h := range got {
			if h.Kind != "finding" || h.Origin != auditOrigin {
				t.Errorf("webhook body %+v", h)
			}
			fs = append(fs, h.Finding)
		}
		if diff := cmp.Diff(want, fs); diff != "" {
			t.Fatalf("webhook findings (-want +got):\n%s\nmonitor stdout:\n%s\nstderr:\n%s", diff, stdout.String(), stderr.String())
		}
		if got[len(got)-1].Size != size {
			t.Errorf("last webhook body has size %d, want %d", got[len(got)-1].Size, size)
		}
	}
	check(want, first)

	// An EU sample collected in Moscow: one reroute finding, index first.
	at := evs[first-1].Logged.Add(time.Minute)
	bad := record.Event{Sample: "smp-eu-new1", Action: record.Collected, Location: "ru-mow-1", Region: "EU", Time: at.Add(-10 * time.Second), Logged: at, Actor: "edge-collector/4.2"}
	a.add(t, []record.Event{bad})
	newFinding := audit.Finding{Index: first, Sample: bad.Sample, Kind: audit.KindReroute,
		Detail: "collected at ru-mow-1 (RU), not allowed for region EU (allowed: de-fra-1, ch-zrh-1)"}
	waitFor(t, 20*time.Second, "the new finding at the webhook", func() bool { return len(received()) > len(want) })
	// Let the monitor run two more rounds: nothing is reported again.
	seen := a.checkpoints.Load()
	waitFor(t, 20*time.Second, "two more monitor rounds", func() bool { return a.checkpoints.Load() >= seen+2 })
	check(append(slices.Clone(want), newFinding), first+1)

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("monitor after SIGINT: %v\nstderr:\n%s", err, stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("monitor did not exit within 5s of SIGINT")
	}
	var printed []string
	for _, l := range lines(stdout.String()) {
		ts, rest, ok := strings.Cut(l, " ")
		if _, err := time.Parse(time.RFC3339, ts); err != nil || !ok || !strings.HasPrefix(rest, "finding: ") {
			t.Errorf("monitor printed %q", l)
			continue
		}
		printed = append(printed, strings.TrimPrefix(rest, "finding: "))
	}
	var wantPrinted []string
	for _, f := range append(want, newFinding) {
		wantPrinted = append(wantPrinted, f.String())
	}
	if diff := cmp.Diff(wantPrinted, printed); diff != "" {
		t.Errorf("monitor stdout (-want +got):\n%s", diff)
	}
	if s := stderr.String(); s != "custody: audit state in "+state+"\n" {
		t.Errorf("monitor stderr, want only the state directory, once:\n%s", s)
	}
}

// TestMonitorFailure runs `custody monitor` against a server whose signed
// root does not match its tiles: the failure is reported once, on stdout
// and to the webhook, however many rounds fail the same way.
func TestMonitorFailure(t *testing.T) {
	key := fixedKey(t, auditOrigin, 1)
	a, _ := loadAuditLog(t, key, "dirty.jsonl")
	dir, cp := mirror(t, a.url, key)
	root := cp.Root
	root[0] ^= 0x01
	writeFile(t, filepath.Join(dir, "checkpoint"), signCheckpoint(t, key, cp.Size, root))
	var rounds atomic.Int64
	files := http.FileServer(http.Dir(dir))
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/checkpoint" {
			rounds.Add(1)
		}
		files.ServeHTTP(w, r)
	}))
	defer fake.Close()

	var mu sync.Mutex
	var bodies []map[string]any
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		mu.Lock()
		bodies = append(bodies, m)
		mu.Unlock()
	}))
	defer receiver.Close()

	state := t.TempDir()
	cmd := exec.Command(os.Args[0], "monitor", "--log", fake.URL, "--key", a.pub, "--policy", auditPolicy(t),
		"--state", state, "--every", "100ms", "--webhook", receiver.URL)
	cmd.Env = append(os.Environ(), "CUSTODY_TEST_AS_MAIN=1")
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
	}()
	waitFor(t, 20*time.Second, "three failing monitor rounds", func() bool { return rounds.Load() >= 4 })
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("monitor after SIGINT: %v\nstderr:\n%s", err, stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("monitor did not exit within 5s of SIGINT")
	}
	out := lines(stdout.String())
	if len(out) != 1 || !strings.Contains(out[0], " failure: ") || !strings.Contains(out[0], "failed verification ("+verify.EvidenceRootMismatch+")") {
		t.Errorf("monitor stdout, want one root-mismatch failure:\n%s", stdout.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 1 || bodies[0]["kind"] != "failure" || !strings.Contains(fmt.Sprint(bodies[0]["error"]), "("+verify.EvidenceRootMismatch+")") {
		t.Errorf("webhook bodies, want one failure: %v", bodies)
	}
	evs := evidenceIn(t, state)
	t.Logf("%d evidence files after %d rounds", len(evs), rounds.Load())
	if len(evs) == 0 || evs[0].Kind != verify.EvidenceRootMismatch {
		t.Errorf("evidence: %v", evs)
	}
}

// compactRange returns the root of the tree of entries and its compact
// range as an audit state holds it (AuditState.Tree): "ctb1", the size as
// 8 bytes big-endian, and the roots of the perfect subtrees that make up
// the tree, largest first.
func compactRange(entries [][]byte) (verify.Hash, []byte) {
	var leaves []verify.Hash
	for _, e := range entries {
		leaves = append(leaves, verify.LeafHash(e))
	}
	tree := binary.BigEndian.AppendUint64([]byte("ctb1"), uint64(len(leaves)))
	var roots []verify.Hash
	for begin := 0; begin < len(leaves); {
		n := 1 << (bits.Len(uint(len(leaves)-begin)) - 1)
		roots = append(roots, tiles.SubtreeRoot(leaves[begin:begin+n]))
		tree = append(tree, roots[len(roots)-1][:]...)
		begin += n
	}
	return tiles.FoldRoot(roots), tree
}
