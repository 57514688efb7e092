package log

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custodylog/custody/internal/logtest"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/store/sqlite"
	"github.com/custodylog/custody/store/witnessdb"
	"github.com/custodylog/custody/verify"
	"github.com/custodylog/custody/witness"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/mod/sumdb/note"
)

// testWitness is a real witness (package witness) behind an httptest
// server whose state can be wiped (a restart with an empty database) and
// which can be taken down (connections are dropped).
type testWitness struct {
	name   string
	vkey   string
	signer note.Signer
	v      note.Verifier
	logV   note.Verifier
	srv    *httptest.Server
	h      atomic.Pointer[http.Handler]
	down   atomic.Bool
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
	w := &testWitness{name: name, vkey: vkey, signer: signer, v: v, logV: logV}
	w.reset(t)
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if w.down.Load() {
			if hj, ok := rw.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					c.Close()
					return
				}
			}
			http.Error(rw, "down", http.StatusServiceUnavailable)
			return
		}
		(*w.h.Load()).ServeHTTP(rw, r)
	}))
	t.Cleanup(w.srv.Close)
	return w
}

// reset replaces the witness's state with an empty one (same key).
func (w *testWitness) reset(t testing.TB) {
	t.Helper()
	st, err := witnessdb.Open(filepath.Join(t.TempDir(), witnessdb.FileName))
	if err != nil {
		t.Fatal(err)
	}
	ws, err := witness.Open(witness.Config{State: st, Signer: w.signer, Logs: []note.Verifier{w.logV}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	h := ws.Handler()
	w.h.Store(&h)
}

func (w *testWitness) config() Witness { return Witness{URL: w.srv.URL, Verifier: w.v} }

// addDirect submits a checkpoint straight to the witness (old 0).
func (w *testWitness) addDirect(t testing.TB, signed []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	body := append([]byte("old 0\n\n"), signed...)
	(*w.h.Load()).ServeHTTP(rec, httptest.NewRequest("POST", "/add-checkpoint", bytes.NewReader(body)))
	if rec.Code != 200 {
		t.Fatalf("seeding witness %s: %d %s", w.name, rec.Code, rec.Body)
	}
}

// newBareLog creates a log in a fresh SQLite file without opening it.
func newBareLog(t testing.TB) *testLog {
	t.Helper()
	path := filepath.Join(t.TempDir(), "custody.db")
	st, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s, v, vkey := newKeys(t)
	if err := Create(context.Background(), st, s); err != nil {
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

// getCheckpoint is what the log publishes (GET /checkpoint serves its note).
func getCheckpoint(t testing.TB, tl *testLog) []byte {
	t.Helper()
	return bytes.Clone(tl.Checkpoint().Note)
}

func TestWitnessQuorum(t *testing.T) {
	ctx := context.Background()
	tl := newBareLog(t)
	a := newTestWitness(t, "witness-a.example", tl.verifier)
	b := newTestWitness(t, "witness-b.example", tl.verifier)

	// Grow the log unwitnessed; witness b cosigns the checkpoint of size 5
	// out of band, so the log's first request to it (old 0) gets a 409.
	tl.open(t, Config{})
	if _, err := tl.AddMany(ctx, testEvents(0, 5)); err != nil {
		t.Fatal(err)
	}
	b.addDirect(t, tl.Checkpoint().Note)
	if _, err := tl.AddMany(ctx, testEvents(5, 3)); err != nil {
		t.Fatal(err)
	}
	tl.Close()

	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	tl.open(t, Config{Witnesses: []Witness{a.config(), b.config()}, Quorum: 2, Metrics: m, WitnessTimeout: 2 * time.Second})
	// Open witnessed the stored checkpoint: b was caught up through a 409.
	if cp := tl.Checkpoint(); cp.Size != 8 {
		t.Fatalf("size %d, want 8", cp.Size)
	}
	checkCosigned(t, tl, tl.Checkpoint().Note, a, b)
	if got := metric(t, reg, `custody_witness_requests_total{code="409",witness="`+b.name+`"}`); got != 1 {
		t.Errorf("witness b 409s: %v, want 1", got)
	}

	rs, err := tl.AddMany(ctx, testEvents(100, 10))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		checkReceipt(t, tl.vkey, r)
		checkCosigned(t, tl, []byte(r.Checkpoint), a, b)
	}
	cur := getCheckpoint(t, tl)
	if !bytes.Equal(cur, tl.Checkpoint().Note) {
		t.Fatalf("/checkpoint serves\n%s\nwant\n%s", cur, tl.Checkpoint().Note)
	}
	checkCosigned(t, tl, cur, a, b)

	// Witness a restarts with an empty database: it answers 409 "0".
	a.reset(t)
	if _, err := tl.AddMany(ctx, testEvents(200, 2)); err != nil {
		t.Fatalf("after witness a lost its state: %v", err)
	}
	checkCosigned(t, tl, getCheckpoint(t, tl), a, b)
	if got := metric(t, reg, `custody_witness_requests_total{code="409",witness="`+a.name+`"}`); got != 1 {
		t.Errorf("witness a 409s: %v, want 1", got)
	}

	// Witness a is down: the batch is committed but not published.
	a.down.Store(true)
	before := getCheckpoint(t, tl)
	sizeBefore := tl.Checkpoint().Size
	evs := testEvents(300, 4)
	if _, err := tl.AddMany(ctx, evs); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("with a witness down and quorum 2: err %v, want ErrUnavailable", err)
	}
	if got := getCheckpoint(t, tl); !bytes.Equal(got, before) {
		t.Fatalf("/checkpoint changed without a quorum:\n%s", got)
	}
	if got := metric(t, reg, "custody_witness_quorum_failures_total"); got != 1 {
		t.Errorf("quorum failures %v, want 1", got)
	}
	if got := metric(t, reg, `custody_witness_requests_total{code="error",witness="`+a.name+`"}`); got != 1 {
		t.Errorf("witness a errors: %v, want 1", got)
	}
	// A retry while it is still down fails the same way.
	if _, err := tl.AddMany(ctx, evs); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("retry with a witness down: err %v, want ErrUnavailable", err)
	}

	// Back up: the retry gets the original indexes, cosigned.
	a.down.Store(false)
	rs, err = tl.AddMany(ctx, evs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		if want := sizeBefore + uint64(i); r.Index != want {
			t.Errorf("retried event %d has index %d, want %d", i, r.Index, want)
		}
		checkReceipt(t, tl.vkey, r)
		checkCosigned(t, tl, []byte(r.Checkpoint), a, b)
	}
	if cp := tl.Checkpoint(); cp.Size != sizeBefore+uint64(len(evs)) {
		t.Fatalf("size %d after the retry, want %d", cp.Size, sizeBefore+uint64(len(evs)))
	}
	checkCosigned(t, tl, getCheckpoint(t, tl), a, b)
}

func TestWitnessQuorumOneOfTwo(t *testing.T) {
	ctx := context.Background()
	tl := newBareLog(t)
	a := newTestWitness(t, "witness-a.example", tl.verifier)
	b := newTestWitness(t, "witness-b.example", tl.verifier)
	b.down.Store(true)
	tl.open(t, Config{Witnesses: []Witness{a.config(), b.config()}, Quorum: 1, WitnessTimeout: 2 * time.Second})
	rs, err := tl.AddMany(ctx, testEvents(0, 3))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		checkReceipt(t, tl.vkey, r)
		checkCosigned(t, tl, []byte(r.Checkpoint), a)
	}
	checkCosigned(t, tl, getCheckpoint(t, tl), a)
}

func TestWitnessQuorumPolicy(t *testing.T) {
	ctx := context.Background()
	tl := newBareLog(t)
	a := newTestWitness(t, "witness-a.example", tl.verifier)
	b := newTestWitness(t, "witness-b.example", tl.verifier)
	policy := fmt.Sprintf("log %s\nwitness a %s\nwitness b %s\ngroup both all a b\nquorum both\n",
		tl.vkey, a.vkey, b.vkey)
	p, err := verify.ParseTrustPolicy([]byte(policy))
	if err != nil {
		t.Fatal(err)
	}
	qf := func(signed []byte, cp verify.Checkpoint) bool {
		_, err := p.Evaluate(signed, cp, time.Now())
		return err == nil
	}
	b.down.Store(true)
	tl.open(t, Config{Witnesses: []Witness{a.config(), b.config()}, QuorumFunc: qf, WitnessTimeout: 2 * time.Second})
	if _, err := tl.AddMany(ctx, testEvents(0, 2)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("policy needs both: err %v", err)
	}
	b.down.Store(false)
	rs, err := tl.AddMany(ctx, testEvents(0, 2))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if _, _, err := verify.CheckReceipt(r, tl.Origin(), note.VerifierList(tl.verifier), p); err != nil {
			t.Fatalf("receipt does not meet the policy: %v", err)
		}
	}
}

func TestWitnessOptional(t *testing.T) {
	ctx := context.Background()
	tl := newBareLog(t)
	a := newTestWitness(t, "witness-a.example", tl.verifier)
	tl.open(t, Config{Witnesses: []Witness{a.config()}})
	rs, err := tl.AddMany(ctx, testEvents(0, 3))
	if err != nil {
		t.Fatal(err)
	}
	checkReceipt(t, tl.vkey, rs[0])
	deadline := time.Now().Add(5 * time.Second)
	for {
		cp := tl.Checkpoint()
		if cp.Size == 3 && bytes.Contains(cp.Note, []byte("— "+a.name+" ")) {
			checkCosigned(t, tl, getCheckpoint(t, tl), a)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("published checkpoint never got the cosignature:\n%s", cp.Note)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkAddWitnessed reports the latency witnessing adds: AddMany
// (64 callers, 16 events each) with no witness and with two local witnesses
// (quorum 2, real witness package over HTTP on loopback, SQLite each).
func BenchmarkAddWitnessed(b *testing.B) {
	for _, nw := range []int{0, 2} {
		b.Run(fmt.Sprintf("witnesses=%d", nw), func(b *testing.B) {
			tl := newBareLog(b)
			var ws []Witness
			for i := range nw {
				ws = append(ws, newTestWitness(b, fmt.Sprintf("witness-%d.example", i), tl.verifier).config())
			}
			tl.open(b, Config{Witnesses: ws, Quorum: nw})
			ctx := context.Background()
			const workers, per = 64, 16
			evs := make([]record.Event, b.N*per)
			for i := range evs {
				evs[i] = testEvent(i)
			}
			var mu sync.Mutex
			var lat []time.Duration
			next := 0
			b.ResetTimer()
			var wg sync.WaitGroup
			for range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						mu.Lock()
						i := next
						next += per
						mu.Unlock()
						if i >= len(evs) {
							return
						}
						t0 := time.Now()
						if _, err := tl.AddMany(ctx, evs[i:i+per]); err != nil {
							b.Error(err)
							return
						}
						d := time.Since(t0)
						mu.Lock()
						lat = append(lat, d)
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			slices.Sort(lat)
			if len(lat) > 0 {
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			}
		})
	}
}

// metric returns the value of the sample named (with labels, as exposed)
// in reg's text exposition, or 0.
func metric(t testing.TB, reg *prometheus.Registry, sample string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return 0
}
