package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/custodylog/custody/internal/logtest"
	"github.com/custodylog/custody/log"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/stats"
	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/store/sqlite"
	"github.com/custodylog/custody/store/witnessdb"
	"github.com/custodylog/custody/verify"
	"github.com/custodylog/custody/witness"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// The harness: a real log (package log) on a fresh SQLite file, its counts
// fed by its commits, served by the API under test.

var testTime = logtest.Time

// testNow is the clock of the test logs and APIs: a minute after testTime.
func testNow() time.Time { return testTime.Add(time.Minute) }

const testToken = "0123456789abcdef-test-token"

type testLog struct {
	*log.Log
	counter  *stats.Counter
	st       store.Store
	path     string
	signer   note.Signer
	verifier note.Verifier
	vkey     string
}

func newKeys(t testing.TB) (note.Signer, note.Verifier, string) { return logtest.Keys(t) }

// newBareLog creates a log in a fresh SQLite file without opening it.
func newBareLog(t testing.TB) *testLog {
	t.Helper()
	path := filepath.Join(t.TempDir(), "custody.db")
	st, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s, v, vkey := newKeys(t)
	if err := log.Create(context.Background(), st, s); err != nil {
		t.Fatal(err)
	}
	tl := &testLog{st: st, path: path, signer: s, verifier: v, vkey: vkey}
	t.Cleanup(func() {
		if tl.Log != nil {
			tl.Close()
		}
		tl.st.Close()
	})
	return tl
}

// newTestLog creates and opens a log in a fresh SQLite file.
func newTestLog(t testing.TB, cfg log.Config) *testLog {
	t.Helper()
	tl := newBareLog(t)
	tl.open(t, cfg)
	return tl
}

func (tl *testLog) open(t testing.TB, cfg log.Config) {
	t.Helper()
	if cfg.Store == nil {
		cfg.Store = tl.st
	}
	cfg.Signer, cfg.Verifier = tl.signer, tl.verifier
	if cfg.Now == nil {
		cfg.Now = testNow
	}
	counter := stats.New(cfg.Store, nil)
	cfg.OnCommit = counter.Committed
	l, err := log.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); counter.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	tl.Log, tl.counter = l, counter
}

// restart closes the log and its store and opens both again with cfg.
func (tl *testLog) restart(t *testing.T, cfg log.Config) {
	t.Helper()
	tl.Close()
	tl.Log = nil
	if err := tl.st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(tl.path)
	if err != nil {
		t.Fatal(err)
	}
	tl.st = st
	tl.open(t, cfg)
}

// Handler is the API of tl (New), on the test clock and with tl's counts
// unless cfg says otherwise.
func (tl *testLog) Handler(cfg Config) http.Handler {
	if cfg.Now == nil {
		cfg.Now = testNow
	}
	if cfg.Stats == nil {
		cfg.Stats = tl.counter
	}
	return New(tl.Log, cfg)
}

// openPeer opens a second server's Log on tl's database file, through its
// own Store handle, as another process sharing the store would.
func openPeer(t *testing.T, tl *testLog) (*log.Log, store.Store) {
	t.Helper()
	st, err := sqlite.Open(tl.path)
	if err != nil {
		t.Fatal(err)
	}
	l, err := log.Open(context.Background(), log.Config{Store: st, Signer: tl.signer, Verifier: tl.verifier, Shared: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(); st.Close() })
	return l, st
}

func testEvent(i int) record.Event { return logtest.Event(i) }

func testEvents(from, n int) []record.Event { return logtest.Events(from, n) }

// checkReceipt verifies a receipt with x/mod's note and tlog, not our code.
func checkReceipt(t testing.TB, vkey string, r verify.Receipt) tlog.Tree {
	t.Helper()
	return logtest.CheckReceipt(t, vkey, r)
}

// testWitness is a real witness (package witness) behind an httptest
// server.
type testWitness struct {
	v   note.Verifier
	srv *httptest.Server
}

func newTestWitness(t testing.TB, name string, logV note.Verifier) *testWitness {
	t.Helper()
	skey, _, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	signer, vkey, err := verify.NewCosignatureSignerFromKey(skey, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.NewCosignatureVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	st, err := witnessdb.Open(filepath.Join(t.TempDir(), witnessdb.FileName))
	if err != nil {
		t.Fatal(err)
	}
	ws, err := witness.Open(witness.Config{State: st, Signer: signer, Logs: []note.Verifier{logV}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	w := &testWitness{v: v, srv: httptest.NewServer(ws.Handler())}
	t.Cleanup(w.srv.Close)
	return w
}

func (w *testWitness) config() log.Witness { return log.Witness{URL: w.srv.URL, Verifier: w.v} }

// checkCosigned checks with x/mod's note that signed carries the log's
// signature and a valid cosignature from each of ws, and no other line.
func checkCosigned(t testing.TB, tl *testLog, signed []byte, ws ...*testWitness) {
	t.Helper()
	var vs []note.Verifier
	for _, w := range ws {
		vs = append(vs, w.v)
	}
	logtest.CheckCosigned(t, signed, tl.verifier, vs...)
}

// getCheckpoint is GET /checkpoint of tl's API.
func getCheckpoint(t testing.TB, tl *testLog) []byte {
	t.Helper()
	rec := httptest.NewRecorder()
	tl.Handler(Config{}).ServeHTTP(rec, httptest.NewRequest("GET", "/checkpoint", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /checkpoint: %d", rec.Code)
	}
	return bytes.Clone(rec.Body.Bytes())
}

func toTLog(p [][]byte) tlog.TreeProof {
	out := make(tlog.TreeProof, len(p))
	for i := range p {
		out[i] = tlog.Hash(p[i])
	}
	return out
}
