package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custodylog/custody/httpapi"
	"github.com/custodylog/custody/log"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/stats"
	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/store/sqlite"
	"golang.org/x/mod/sumdb/note"
)

const testToken = "0123456789abcdef-server-test"

// newLogConfig creates a log in a fresh SQLite file and returns the log
// part of a server's Config.
func newLogConfig(t *testing.T) log.Config {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "custody.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	skey, vkey, err := note.GenerateKey(rand.Reader, "server.test/log")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	verifier, _ := note.NewVerifier(vkey)
	if err := log.Create(context.Background(), st, signer); err != nil {
		t.Fatal(err)
	}
	return log.Config{Store: st, Signer: signer, Verifier: verifier}
}

// start runs a server with cfg until the test ends (or stop is called) and
// returns its base URL and the channel of Run's result.
func start(t *testing.T, cfg Config) (base string, stop func(), result <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	errc := make(chan error, 1)
	cfg.Listen = "127.0.0.1:0"
	cfg.Ready = func(addr string) { ready <- addr }
	go func() { errc <- Run(ctx, cfg) }()
	select {
	case addr := <-ready:
		base = "http://" + addr
	case err := <-errc:
		t.Fatalf("Run: %v", err)
	}
	t.Cleanup(cancel)
	return base, cancel, errc
}

func events(n int) []byte {
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		ev := record.Event{Sample: fmt.Sprintf("s-%d", i), Action: record.Collected, Location: "ch-zrh-1", Region: "EU",
			Actor: "t", Time: time.Now().UTC().Truncate(time.Second).Add(-time.Minute)}
		b.Write(ev.Canonical())
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func post(base string, body []byte) (int, string, error) {
	req, _ := http.NewRequest("POST", base+"/v1/events", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// TestRunServesAndStops: the assembled server takes writes, serves the
// API, its counts (fed by the log's commits) and the dashboard, and stops
// cleanly when its context ends: Run returns nil, the log has drained.
func TestRunServesAndStops(t *testing.T) {
	lc := newLogConfig(t)
	base, stop, result := start(t, Config{Log: lc, API: httpapi.Config{Tokens: []string{testToken}}})
	if code, body, err := post(base, events(5)); err != nil || code != 200 {
		t.Fatalf("POST: %d %s %v", code, body, err)
	}
	var st struct{ Size, Counted uint64 }
	for deadline := time.Now().Add(10 * time.Second); st.Counted < 5; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("/v1/stats did not count the 5 events: %+v", st)
		}
		resp, err := http.Get(base + "/v1/stats")
		if err != nil {
			t.Fatal(err)
		}
		json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
	}
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "server.test/log") {
		t.Fatalf("dashboard: %d", resp.StatusCode)
	}
	stop()
	if err := <-result; err != nil {
		t.Fatalf("Run after its context ended: %v", err)
	}
	if cp, err := lc.Store.Latest(context.Background()); err != nil || cp.Size != 5 {
		t.Fatalf("stored size %d (%v), want 5", cp.Size, err)
	}
}

// TestRunListenError: an address in use is a *ListenError, and the log is
// closed again.
func TestRunListenError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = Run(context.Background(), Config{Log: newLogConfig(t), Listen: ln.Addr().String()})
	var le *ListenError
	if !errors.As(err, &le) || le.Addr != ln.Addr().String() {
		t.Fatalf("Run on a used address: %v, want a *ListenError", err)
	}
}

// deafStore's Append, once hang is set, blocks until release is closed,
// whatever its context says.
type deafStore struct {
	store.Store
	mu      sync.Mutex
	hang    bool
	entered chan struct{}
	release chan struct{}
}

func (d *deafStore) Append(ctx context.Context, b store.Batch) error {
	d.mu.Lock()
	hang := d.hang
	d.mu.Unlock()
	if !hang {
		return d.Store.Append(ctx, b)
	}
	d.entered <- struct{}{}
	<-d.release
	return errors.New("injected: the store answered at last")
}

// TestRunNotDrained: a store hung in a commit cannot hold Run past its
// shutdown timeouts; the error says the log did not stop (ErrNotDrained),
// so the caller knows not to wait on closing the store.
func TestRunNotDrained(t *testing.T) {
	lc := newLogConfig(t)
	ds := &deafStore{Store: lc.Store, entered: make(chan struct{}, 1), release: make(chan struct{})}
	t.Cleanup(func() { close(ds.release) })
	lc.Store = ds
	base, stop, result := start(t, Config{Log: lc, API: httpapi.Config{Tokens: []string{testToken}}, NoDashboard: true, ShutdownTimeout: 100 * time.Millisecond})
	ds.mu.Lock()
	ds.hang = true
	ds.mu.Unlock()
	go post(base, events(1))
	<-ds.entered
	stop()
	select {
	case err := <-result:
		if !errors.Is(err, ErrNotDrained) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Run with a hung store: %v, want ErrNotDrained wrapping context.DeadlineExceeded", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return with the store hung")
	}
}

// TestRunKeepsCountsAcrossRestarts: the region counts are saved when the
// server stops and restored when it starts again, so the restarted server
// reads no entry to count them (its log says so, and the saved size is
// the log's).
func TestRunKeepsCountsAcrossRestarts(t *testing.T) {
	lc := newLogConfig(t)
	ctx := context.Background()
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	base, stop, result := start(t, Config{Log: lc, API: httpapi.Config{Tokens: []string{testToken}}, Logger: logger})
	if code, body, err := post(base, events(7)); err != nil || code != 200 {
		t.Fatalf("POST: %d %s %v", code, body, err)
	}
	stop()
	if err := <-result; err != nil {
		t.Fatal(err)
	}
	size, _, err := lc.Store.(store.Aggregator).LoadAggregate(ctx, stats.AggregateName)
	if err != nil || size != 7 {
		t.Fatalf("saved counts cover %d entries (%v), want 7", size, err)
	}
	mu.Lock()
	logs.Reset()
	mu.Unlock()
	_, stop, result = start(t, Config{Log: lc, API: httpapi.Config{Tokens: []string{testToken}}, Logger: logger})
	stop()
	if err := <-result; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "restored the saved counts") || !strings.Contains(logs.String(), "size=7") {
		t.Fatalf("the restarted server did not restore the counts:\n%s", logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
