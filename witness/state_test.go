package witness

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

// memState is an in-memory StateStore for tests: it keeps the
// StateStore contract (absent counts as the empty tree) and can be made to
// fail or to lose a race.
type memState struct {
	mu      sync.Mutex
	entries map[string]memEntry
	closed  bool

	failGet, failCheckpoint, failCAS error
	// beforeCAS, if set, runs at the start of CompareAndSwap, before the
	// comparison (as another writer slipping in would).
	beforeCAS func()
	cas       int // CompareAndSwap calls
}

type memEntry struct {
	size uint64
	root [32]byte
	cp   []byte
}

func newMemState() *memState { return &memState{entries: map[string]memEntry{}} }

func (m *memState) Get(_ context.Context, origin string) (uint64, [32]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failGet != nil {
		return 0, [32]byte{}, false, m.failGet
	}
	e, ok := m.entries[origin]
	return e.size, e.root, ok, nil
}

func (m *memState) Checkpoint(_ context.Context, origin string) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failCheckpoint != nil {
		return nil, false, m.failCheckpoint
	}
	e, ok := m.entries[origin]
	return bytes.Clone(e.cp), ok, nil
}

func (m *memState) CompareAndSwap(_ context.Context, origin string, oldSize uint64, oldRoot [32]byte, size uint64, root [32]byte, cp []byte) (bool, error) {
	if f := m.beforeCAS; f != nil {
		f()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cas++
	if m.failCAS != nil {
		return false, m.failCAS
	}
	cur, ok := m.entries[origin]
	if !ok {
		cur.root = sha256.Sum256(nil)
	}
	if cur.size != oldSize || cur.root != oldRoot {
		return false, nil
	}
	m.entries[origin] = memEntry{size, root, bytes.Clone(cp)}
	return true, nil
}

func (m *memState) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

// memFixture is a fixture whose witness keeps its state in a memState and
// logs to a buffer.
func memFixture(t *testing.T) (*fixture, *memState, *bytes.Buffer) {
	t.Helper()
	f := newFixture(t)
	st := newMemState()
	var logs bytes.Buffer
	signer, _, err := verify.NewCosignatureSignerFromKey(f.witSkey, f.now)
	if err != nil {
		t.Fatal(err)
	}
	w, err := Open(Config{State: st, Signer: signer, Logs: []note.Verifier{f.logVK}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	f.w, f.h = w, w.Handler()
	return f, st, &logs
}

// wantStoreFailure checks that r is a 500 without a cosignature and that
// the store's error reached the log.
func wantStoreFailure(t *testing.T, r response, logs *bytes.Buffer, cause error) {
	t.Helper()
	if r.code != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500; body %q", r.code, r.body)
	}
	if r.body != "internal error\n" || strings.Contains(r.body, "—") {
		t.Fatalf("500 body %q: want \"internal error\" and no cosignature", r.body)
	}
	if !strings.Contains(logs.String(), cause.Error()) {
		t.Fatalf("the store error %q is not in the log:\n%s", cause, logs)
	}
}

// TestStateStoreFails: when the state store fails, the witness answers
// 500, sends no cosignature and changes nothing; once the store works
// again, the same request is cosigned.
func TestStateStoreFails(t *testing.T) {
	leaves := makeLeaves("a", 9)
	diskFull := errors.New("disk full (test)")

	t.Run("compare-and-swap", func(t *testing.T) {
		f, st, logs := memFixture(t)
		f.verifyCosig(f.add(0, leaves[:4]), f.checkpoint(leaves[:4]))
		st.failCAS = diskFull
		wantStoreFailure(t, f.add(4, leaves), logs, diskFull)
		if size, _, _, _ := st.Get(context.Background(), testOrigin); size != 4 {
			t.Fatalf("state at size %d after a failed store, want 4", size)
		}
		st.failCAS = nil
		f.verifyCosig(f.add(4, leaves), f.checkpoint(leaves))
	})
	t.Run("first compare-and-swap", func(t *testing.T) {
		f, st, logs := memFixture(t)
		st.failCAS = diskFull
		wantStoreFailure(t, f.add(0, leaves), logs, diskFull)
		if _, _, ok, _ := st.Get(context.Background(), testOrigin); ok {
			t.Fatal("a state was stored by a failed compare-and-swap")
		}
		st.failCAS = nil
		f.verifyCosig(f.add(0, leaves), f.checkpoint(leaves))
	})
	t.Run("read", func(t *testing.T) {
		f, st, logs := memFixture(t)
		st.failGet = diskFull
		wantStoreFailure(t, f.add(0, leaves), logs, diskFull)
		if st.cas != 0 {
			t.Fatalf("%d compare-and-swaps after a failed read", st.cas)
		}
	})
	t.Run("GET checkpoint", func(t *testing.T) {
		f, st, logs := memFixture(t)
		f.verifyCosig(f.add(0, leaves), f.checkpoint(leaves))
		st.failCheckpoint = diskFull
		sum := sha256.Sum256([]byte(testOrigin))
		rec := httptest.NewRecorder()
		f.h.ServeHTTP(rec, httptest.NewRequest("GET", "/"+hex.EncodeToString(sum[:])+"/checkpoint", nil))
		wantStoreFailure(t, response{rec.Code, rec.Header().Get("Content-Type"), rec.Body.String()}, logs, diskFull)
	})
}

// TestLostRace: another writer of the state (another process sharing the
// store) moves it between the witness's read and its compare-and-swap; the
// witness answers 409 with the new size and no cosignature, even for a
// checkpoint consistent with what it read.
func TestLostRace(t *testing.T) {
	f, st, _ := memFixture(t)
	a, b := makeLeaves("a", 12), makeLeaves("b", 12)
	f.verifyCosig(f.add(0, a[:5]), f.checkpoint(a[:5]))
	st.beforeCAS = func() {
		st.beforeCAS = nil
		if ok, err := st.CompareAndSwap(context.Background(), testOrigin, 5, mth(a[:5]), 8, mth(a[:8]), f.checkpoint(a[:8])); !ok || err != nil {
			t.Errorf("the other writer's compare-and-swap: %v, %v", ok, err)
		}
	}
	f.wantConflict(f.add(5, a[:12]), 8)
	// And a fork of the size the other writer stored is refused.
	f.want(f.post(body(8, nil, f.checkpoint(b[:8]))), http.StatusUnprocessableEntity)
	f.verifyCosig(f.add(8, a[:12]), f.checkpoint(a[:12]))
}

// committedWriter checks, when the witness starts its answer, that the
// state store already holds the state the answer is about.
type committedWriter struct {
	*httptest.ResponseRecorder
	t        *testing.T
	st       *memState
	wantSize uint64
	started  bool // the answer's status was written
	checked  bool // the state was checked for a 200
}

func (c *committedWriter) WriteHeader(code int) {
	c.started = true
	if code == http.StatusOK {
		size, _, _, _ := c.st.Get(context.Background(), testOrigin)
		if size != c.wantSize {
			c.t.Errorf("answer 200 started with the stored size at %d, want %d: the cosignature would leave before the state is stored", size, c.wantSize)
		}
		c.checked = true
	}
	c.ResponseRecorder.WriteHeader(code)
}

func (c *committedWriter) Write(b []byte) (int, error) {
	if !c.started {
		c.WriteHeader(http.StatusOK)
	}
	return c.ResponseRecorder.Write(b)
}

// TestCosignsOnlyAfterCommit: the new state is in the store before the
// first byte of the cosignature is written.
func TestCosignsOnlyAfterCommit(t *testing.T) {
	f, st, _ := memFixture(t)
	leaves := makeLeaves("a", 6)
	for _, n := range []int{3, 6} {
		old, _, _, _ := st.Get(context.Background(), testOrigin)
		cw := &committedWriter{ResponseRecorder: httptest.NewRecorder(), t: t, st: st, wantSize: uint64(n)}
		f.h.ServeHTTP(cw, httptest.NewRequest("POST", "/add-checkpoint", bytes.NewReader(body(int(old), consistency(int(old), leaves[:n]), f.checkpoint(leaves[:n])))))
		if !cw.checked {
			t.Fatalf("size %d: no 200 answer: %d %q", n, cw.Code, cw.Body)
		}
		f.verifyCosig(response{cw.Code, cw.Header().Get("Content-Type"), cw.Body.String()}, f.checkpoint(leaves[:n]))
	}
}

// TestConcurrentProcesses: two witnesses with their own connections to one
// SQLite state file (as two processes sharing it would be; the per-log lock
// of one process does not serialise them) receive conflicting checkpoints
// of one size at once: exactly one root is cosigned, by one of them, and
// both then refuse the others.
func TestConcurrentProcesses(t *testing.T) {
	f := newFixture(t)
	signer, _, err := verify.NewCosignatureSignerFromKey(f.witSkey, f.now)
	if err != nil {
		t.Fatal(err)
	}
	w2, err := Open(Config{State: openState(t, f.dir), Signer: signer, Logs: []note.Verifier{f.logVK}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w2.Close() })
	handlers := []http.Handler{f.h, w2.Handler()}

	const n = 16
	var cps [n][]byte
	for i := range n {
		cps[i] = f.checkpoint(makeLeaves(fmt.Sprintf("p%d", i), 9))
	}
	var wg sync.WaitGroup
	var codes [n]int
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			rec := httptest.NewRecorder()
			handlers[i%2].ServeHTTP(rec, httptest.NewRequest("POST", "/add-checkpoint", bytes.NewReader(body(0, nil, cps[i]))))
			codes[i] = rec.Code
			if rec.Code == http.StatusConflict && rec.Body.String() != "9\n" {
				t.Errorf("checkpoint %d: 409 body %q, want \"9\\n\"", i, rec.Body)
			}
		}()
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, c := range codes {
		switch c {
		case http.StatusOK:
			if winner >= 0 {
				t.Fatalf("two roots of size 9 cosigned: checkpoints %d and %d", winner, i)
			}
			winner = i
		case http.StatusConflict:
		default:
			t.Fatalf("checkpoint %d: status %d", i, c)
		}
	}
	if winner < 0 {
		t.Fatal("no checkpoint cosigned")
	}
	for i := range n {
		for j, h := range handlers {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("POST", "/add-checkpoint", bytes.NewReader(body(9, nil, cps[i]))))
			if (i == winner) != (rec.Code == http.StatusOK) {
				t.Errorf("witness %d, checkpoint %d (winner %d) resubmitted: status %d", j, i, winner, rec.Code)
			}
		}
	}
}
