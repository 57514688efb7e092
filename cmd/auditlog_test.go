package cmd

// Helpers for the audit, monitor and verify tests: a real log (SQLite store,
// log.Log) in the test process with a fixed signing key and a clock the test
// sets per event, served by httptest; mirroring a log to a tlog-tiles
// directory; reading evidence files.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custodylog/custody/activity"
	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/httpapi"
	"github.com/custodylog/custody/log"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/store/sqlite"
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// auditDataDir holds the audit data sets shared with verify's tests.
const auditDataDir = "../testdata/audit"

// logKey is a signed-note key pair.
type logKey struct {
	skey, vkey string
	signer     note.Signer
	verifier   note.Verifier
}

// fixedKey derives an Ed25519 note key pair for name from a fixed seed, so
// that checkpoints (and so golden outputs) are the same on every run. The
// key strings are built by hand in x/mod's format: PRIVATE+KEY+name+
// hash+base64(0x01 || seed) and name+hash+base64(0x01 || public key), with
// hash the first 4 bytes of SHA-256(name || "\n" || 0x01 || public key).
func fixedKey(t testing.TB, name string, seed byte) logKey {
	t.Helper()
	s := bytes.Repeat([]byte{seed}, ed25519.SeedSize)
	pub := ed25519.NewKeyFromSeed(s).Public().(ed25519.PublicKey)
	h := sha256.Sum256(append(append([]byte(name), '\n', 0x01), pub...))
	id := fmt.Sprintf("%08x", binary.BigEndian.Uint32(h[:4]))
	k := logKey{
		skey: "PRIVATE+KEY+" + name + "+" + id + "+" + base64.StdEncoding.EncodeToString(append([]byte{0x01}, s...)),
		vkey: name + "+" + id + "+" + base64.StdEncoding.EncodeToString(append([]byte{0x01}, pub...)),
	}
	var err error
	if k.signer, err = note.NewSigner(k.skey); err != nil {
		t.Fatal(err)
	}
	if k.verifier, err = note.NewVerifier(k.vkey); err != nil {
		t.Fatal(err)
	}
	return k
}

const auditOrigin = "example.com/custody-audit-test"

// testClock is a clock the test sets; the log's sequencer reads it.
type testClock struct{ ns atomic.Int64 }

func (c *testClock) set(t time.Time) { c.ns.Store(t.UnixNano()) }
func (c *testClock) now() time.Time  { return time.Unix(0, c.ns.Load()).UTC() }

// auditLog is a log in the test process, served over HTTP.
type auditLog struct {
	*log.Log
	key    logKey
	st     *sqlite.Store
	dbPath string
	pub    string // file holding the verifier key
	clock  *testClock
	srv    *httptest.Server
	url    string

	handler     atomic.Pointer[http.Handler]
	checkpoints atomic.Int64 // GET /checkpoint requests served
}

// newAuditLog creates a log signed by key in a fresh SQLite file and serves
// it. Close is registered as a cleanup.
func newAuditLog(t *testing.T, key logKey) *auditLog {
	t.Helper()
	dir := t.TempDir()
	a := &auditLog{key: key, dbPath: filepath.Join(dir, "custody.db"), pub: filepath.Join(dir, "log.pub"), clock: &testClock{}}
	a.clock.set(time.Date(2026, 11, 2, 7, 0, 0, 0, time.UTC))
	if err := os.WriteFile(a.pub, []byte(key.vkey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(a.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := log.Create(context.Background(), st, key.signer); err != nil {
		t.Fatal(err)
	}
	a.st = st
	a.open(t)
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/checkpoint" {
			a.checkpoints.Add(1)
		}
		(*a.handler.Load()).ServeHTTP(w, r)
	}))
	a.url = a.srv.URL
	t.Cleanup(func() {
		a.srv.Close()
		a.Log.Close()
		a.st.Close()
	})
	return a
}

func (a *auditLog) open(t *testing.T) {
	t.Helper()
	l, err := log.Open(context.Background(), log.Config{
		Store: a.st, Signer: a.key.signer, Verifier: a.key.verifier,
		Now: a.clock.now, MaxWait: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	a.Log = l
	h := httpapi.New(l, httpapi.Config{})
	a.handler.Store(&h)
}

// reopen closes the log and its store, runs edit (if not nil) on the
// closed database file, and opens both again behind the same URL.
func (a *auditLog) reopen(t *testing.T, edit func(path string)) {
	t.Helper()
	a.Log.Close()
	if err := a.st.Close(); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(a.dbPath)
	}
	st, err := sqlite.Open(a.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	a.st = st
	a.open(t)
}

// add appends the events one at a time, each logged exactly at its Logged
// time (or, if that is zero, at the clock's current time), and checks that
// each got the next index. It returns the entries.
func (a *auditLog) add(t *testing.T, evs []record.Event) [][]byte {
	t.Helper()
	var out [][]byte
	for _, ev := range evs {
		if !ev.Logged.IsZero() {
			a.clock.set(ev.Logged)
		}
		want := a.Checkpoint().Size
		rs, err := a.AddMany(context.Background(), []record.Event{ev})
		if err != nil {
			t.Fatal(err)
		}
		if rs[0].Index != want {
			t.Fatalf("event %s %s got index %d, want %d", ev.Sample, ev.Action, rs[0].Index, want)
		}
		out = append(out, rs[0].Entry)
	}
	return out
}

// readAuditEvents reads a JSON-lines file of events (with logged times).
func readAuditEvents(t testing.TB, name string) ([]record.Event, [][]byte) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(auditDataDir, name))
	if err != nil {
		t.Fatal(err)
	}
	var evs []record.Event
	var lines [][]byte
	for i, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		ev, err := record.Decode(line)
		if err != nil {
			t.Fatalf("%s line %d: %v", name, i+1, err)
		}
		if ev.Logged.IsZero() {
			t.Fatalf("%s line %d has no logged time", name, i+1)
		}
		evs = append(evs, ev)
		lines = append(lines, line)
	}
	return evs, lines
}

// loadAuditLog builds a log holding exactly the events of the data set
// name, each logged at its logged time, and checks that the log's entries
// are the file's lines byte for byte.
func loadAuditLog(t *testing.T, key logKey, name string) (*auditLog, []record.Event) {
	t.Helper()
	a := newAuditLog(t, key)
	evs, lines := readAuditEvents(t, name)
	entries := a.add(t, evs)
	for i := range entries {
		if !bytes.Equal(entries[i], lines[i]) {
			t.Fatalf("entry %d is\n%s\nwant the line of %s\n%s", i, entries[i], name, lines[i])
		}
	}
	return a, evs
}

// wantFindings reads dirty.findings.json, optionally only those below size.
func wantFindings(t testing.TB, below uint64) []audit.Finding {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(auditDataDir, "dirty.findings.json"))
	if err != nil {
		t.Fatal(err)
	}
	var fs []audit.Finding
	if err := json.Unmarshal(b, &fs); err != nil {
		t.Fatal(err)
	}
	out := []audit.Finding{}
	for _, f := range fs {
		if f.Index < below {
			out = append(out, f)
		}
	}
	return out
}

// countEvents returns the events per region × location.
func countEvents(evs []record.Event) map[string]map[string]uint64 {
	out := map[string]map[string]uint64{}
	for _, ev := range evs {
		if out[ev.Region] == nil {
			out[ev.Region] = map[string]uint64{}
		}
		out[ev.Region][ev.Location]++
	}
	return out
}

// tlogRoot computes the tree root of entries with x/mod's tlog, an
// implementation independent of custody's.
func tlogRoot(t testing.TB, entries [][]byte) string {
	t.Helper()
	var hashes []tlog.Hash
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = hashes[x]
		}
		return out, nil
	})
	for i, e := range entries {
		hs, err := tlog.StoredHashes(int64(i), e, r)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, hs...)
	}
	root, err := tlog.TreeHash(int64(len(entries)), r)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(root[:])
}

// auditJSON is the output of `custody audit --json`.
type auditJSON struct {
	Origin   string                       `json:"origin"`
	Size     uint64                       `json:"size"`
	Root     string                       `json:"root"`
	From     uint64                       `json:"from"`
	Findings []audit.Finding              `json:"findings"`
	Counts   map[string]map[string]uint64 `json:"counts"`
	// SampleIndex is "verified" or "not-committed".
	SampleIndex string `json:"sample_index"`
	// The activity aggregate's flows and collections, of the entries
	// from ActivityFrom on.
	ActivityFrom uint64                `json:"activity_from"`
	Flows        []activity.Flow       `json:"flows"`
	Collections  []activity.Collection `json:"collections"`
}

func parseAuditJSON(t testing.TB, out string) auditJSON {
	t.Helper()
	var r auditJSON
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("audit --json output %q: %v", out, err)
	}
	if r.Findings == nil {
		t.Fatalf("audit --json output has no findings array: %s", out)
	}
	return r
}

func absPath(t testing.TB, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// auditPolicy is the routing policy the audit data sets were made for.
func auditPolicy(t testing.TB) string { return absPath(t, filepath.Join(auditDataDir, "policy.yaml")) }

// signCheckpoint signs a checkpoint body with k.
func signCheckpoint(t testing.TB, k logKey, size uint64, root [32]byte) []byte {
	t.Helper()
	text := verify.Checkpoint{Origin: k.signer.Name(), Size: size, Root: root}.Marshal()
	b, err := note.Sign(&note.Note{Text: string(text)}, k.signer)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// httpGet returns the body of a 200 response (decompressed by net/http).
func httpGet(t testing.TB, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, b)
	}
	return b
}

// mirrorTiles lists every hash tile and entry bundle a tree of size
// entries consists of: at each level the full tiles and the partial one.
func mirrorTiles(size uint64) []verify.TileAddr {
	var as []verify.TileAddr
	for level := uint8(0); verify.FullTiles(level, size) > 0 || verify.PartialWidth(level, size) > 0; level++ {
		for n := uint64(0); n < verify.FullTiles(level, size); n++ {
			as = append(as, verify.TileAddr{Level: level, Index: n})
			if level == 0 {
				as = append(as, verify.TileAddr{Entries: true, Index: n})
			}
		}
		if w := verify.PartialWidth(level, size); w > 0 {
			as = append(as, verify.TileAddr{Level: level, Index: verify.FullTiles(level, size), Width: w})
			if level == 0 {
				as = append(as, verify.TileAddr{Entries: true, Index: verify.FullTiles(level, size), Width: w})
			}
		}
	}
	return as
}

// mirror copies the log at url into a new directory in the tlog-tiles
// layout: the checkpoint and every tile and bundle its tree implies. It
// returns the directory and the checkpoint.
func mirror(t testing.TB, url string, k logKey) (string, verify.Checkpoint) {
	t.Helper()
	dir := t.TempDir()
	signed := httpGet(t, url+"/checkpoint")
	cp, _, err := verify.OpenCheckpoint(signed, k.verifier.Name(), note.VerifierList(k.verifier))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "checkpoint"), signed)
	for _, a := range mirrorTiles(cp.Size) {
		writeFile(t, filepath.Join(dir, filepath.FromSlash(a.Path())), httpGet(t, url+"/"+a.Path()))
	}
	return dir, cp
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// evidenceIn returns the evidence files in dir, parsed.
func evidenceIn(t testing.TB, dir string) []verify.Evidence {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "evidence-*.json"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	var out []verify.Evidence
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		var ev verify.Evidence
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if !strings.HasPrefix(filepath.Base(n), "evidence-"+ev.Kind+"-") {
			t.Errorf("evidence file %s holds kind %q", n, ev.Kind)
		}
		out = append(out, ev)
	}
	return out
}

// wantFailure checks that a verify or audit run failed verification: exit
// 2, stderr naming the kind and the evidence file, and exactly one evidence
// file of that kind in dir, which it returns.
func wantFailure(t testing.TB, code int, stderr, dir, kind string) verify.Evidence {
	t.Helper()
	if code != exitInvalid {
		t.Fatalf("exit %d, want %d (log failed verification); stderr:\n%s", code, exitInvalid, stderr)
	}
	if !strings.Contains(stderr, "failed verification ("+kind+")") {
		t.Errorf("stderr does not name the failure %q:\n%s", kind, stderr)
	}
	evs := evidenceIn(t, dir)
	if len(evs) != 1 {
		t.Fatalf("%d evidence files in %s, want 1; stderr:\n%s", len(evs), dir, stderr)
	}
	if evs[0].Kind != kind {
		t.Fatalf("evidence kind %q, want %q", evs[0].Kind, kind)
	}
	if !strings.Contains(stderr, "custody: evidence written to "+filepath.Join(dir, "evidence-"+kind+"-")) {
		t.Errorf("stderr does not name the evidence file in %s:\n%s", dir, stderr)
	}
	return evs[0]
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lines returns the non-empty lines of s.
func lines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out
}
