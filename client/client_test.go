package client

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custodylog/custody/httpapi"
	"github.com/custodylog/custody/log"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/store/sqlite"
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

const testToken = "0123456789abcdef0123456789abcdef"

// testLog is a real log on SQLite served over HTTP.
type testLog struct {
	l   *log.Log
	srv *httptest.Server
	key note.Verifier
}

func newTestLog(t *testing.T) *testLog {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "custody.db"))
	if err != nil {
		t.Fatal(err)
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, "client.test/log")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	verifier, _ := note.NewVerifier(vkey)
	if err := log.Create(ctx, st, signer); err != nil {
		t.Fatal(err)
	}
	l, err := log.Open(ctx, log.Config{Store: st, Signer: signer, Verifier: verifier})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.New(l, httpapi.Config{Tokens: []string{testToken}}))
	t.Cleanup(func() { srv.Close(); l.Close(); st.Close() })
	return &testLog{l: l, srv: srv, key: verifier}
}

func events(n int, tag string) []record.Event {
	base := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	out := make([]record.Event, n)
	for i := range out {
		out[i] = record.Event{Sample: fmt.Sprintf("smp-%s-%d", tag, i), Action: record.Collected, Location: "ch-zrh-1",
			Region: "EU", Actor: "sensor/1", Time: base.Add(time.Duration(i) * time.Second)}
	}
	return out
}

// newClient returns a client whose waits are recorded, not slept.
func newClient(t *testing.T, url string, key note.Verifier, opts ...Option) (*Client, *[]time.Duration) {
	t.Helper()
	c, err := New(url, testToken, key, opts...)
	if err != nil {
		t.Fatal(err)
	}
	var waits []time.Duration
	var mu sync.Mutex
	c.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		defer mu.Unlock()
		waits = append(waits, d)
		return ctx.Err()
	}
	return c, &waits
}

func TestAppendBatchesAndVerifies(t *testing.T) {
	tl := newTestLog(t)
	c, _ := newClient(t, tl.srv.URL, tl.key, WithBatch(300))
	evs := events(1000, "a")
	rs, err := c.Append(context.Background(), evs)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != len(evs) {
		t.Fatalf("%d receipts for %d events", len(rs), len(evs))
	}
	for i, r := range rs {
		if r.Index != uint64(i) || r.Logged.Sample != evs[i].Sample || r.Logged.Logged.IsZero() {
			t.Fatalf("receipt %d: index %d sample %q logged %v", i, r.Index, r.Logged.Sample, r.Logged.Logged)
		}
		if r.Checked.Size <= r.Index {
			t.Fatalf("receipt %d proves against a tree of size %d", i, r.Checked.Size)
		}
	}
	// Idempotent: the same events again get their original indexes and
	// the tree does not grow.
	again, err := c.Append(context.Background(), evs[200:700])
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range again {
		if r.Index != uint64(200+i) {
			t.Fatalf("re-appended event %d got index %d, want %d", 200+i, r.Index, 200+i)
		}
	}
	if got := tl.l.Checkpoint().Size; got != 1000 {
		t.Fatalf("tree grew to %d on re-append", got)
	}
}

// proxy puts a handler in front of the log; fn may answer itself (return
// true) or let the request through.
func proxy(t *testing.T, tl *testLog, fn func(w http.ResponseWriter, r *http.Request, n int) bool, rewrite func([]byte) []byte) *httptest.Server {
	t.Helper()
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		k := n
		mu.Unlock()
		if fn != nil && fn(w, r, k) {
			return
		}
		body, _ := io.ReadAll(r.Body)
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, tl.srv.URL+r.URL.Path, bytes.NewReader(body))
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if rewrite != nil && resp.StatusCode == http.StatusOK {
			b = rewrite(b)
		}
		w.WriteHeader(resp.StatusCode)
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestRetryHonoursRetryAfter(t *testing.T) {
	tl := newTestLog(t)
	p := proxy(t, tl, func(w http.ResponseWriter, r *http.Request, n int) bool {
		switch n {
		case 1:
			w.Header().Set("Retry-After", "3")
			http.Error(w, `{"error":"rate limit"}`, http.StatusTooManyRequests)
			return true
		case 2:
			w.Header().Set("Retry-After", "60")
			http.Error(w, `{"error":"failover"}`, http.StatusServiceUnavailable)
			return true
		case 3:
			http.Error(w, "bad gateway", http.StatusBadGateway)
			return true
		}
		return false
	}, nil)
	c, waits := newClient(t, p.URL, tl.key, WithMaxBackoff(20*time.Second))
	rs, err := c.Append(context.Background(), events(5, "r"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 5 {
		t.Fatalf("%d receipts", len(rs))
	}
	w := *waits
	if len(w) != 3 || w[0] != 3*time.Second || w[1] != 20*time.Second || w[2] <= 0 || w[2] > 20*time.Second {
		t.Fatalf("waits %v, want [3s 20s (Retry-After 60 capped) backoff]", w)
	}
}

func TestNoRetryOnClientErrors(t *testing.T) {
	tl := newTestLog(t)
	calls := 0
	p := proxy(t, tl, func(w http.ResponseWriter, r *http.Request, n int) bool {
		calls++
		http.Error(w, `{"error":"event 1: field \"region\": not allowed"}`, http.StatusBadRequest)
		return true
	}, nil)
	c, waits := newClient(t, p.URL, tl.key)
	_, err := c.Append(context.Background(), events(2, "b"))
	var se *StatusError
	if !errors.As(err, &se) || se.Code != 400 || !strings.Contains(se.Message, "not allowed") {
		t.Fatalf("err = %v, want a StatusError 400 with the server's message", err)
	}
	if calls != 1 || len(*waits) != 0 {
		t.Fatalf("a 400 was retried: %d calls, waits %v", calls, *waits)
	}
	// A wrong token is not retried either.
	bad, _ := New(tl.srv.URL, "wrong-token-wrong-token-wrong-tok", tl.key)
	bad.sleep = func(context.Context, time.Duration) error { t.Fatal("a 401 was retried"); return nil }
	if _, err := bad.Append(context.Background(), events(1, "c")); !errors.As(err, &se) || se.Code != 401 {
		t.Fatalf("wrong token: err = %v, want 401", err)
	}
}

func TestRetriesGiveUp(t *testing.T) {
	tl := newTestLog(t)
	p := proxy(t, tl, func(w http.ResponseWriter, r *http.Request, n int) bool {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return true
	}, nil)
	c, waits := newClient(t, p.URL, tl.key, WithRetries(3))
	_, err := c.Append(context.Background(), events(1, "d"))
	if err == nil || !strings.Contains(err.Error(), "after 4 attempts") || len(*waits) != 3 {
		t.Fatalf("err = %v after %d waits, want to give up after 4 attempts", err, len(*waits))
	}
}

// rewriteReceipts applies fn to each receipt of an answer.
func rewriteReceipts(fn func(i int, r *verify.Receipt)) func([]byte) []byte {
	return func(b []byte) []byte {
		var out bytes.Buffer
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, 1<<20)
		for i := 0; sc.Scan(); i++ {
			var r verify.Receipt
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				panic(err)
			}
			fn(i, &r)
			j, _ := json.Marshal(r)
			out.Write(append(j, '\n'))
		}
		return out.Bytes()
	}
}

// TestTamperedReceiptsAreCaught: a log (or anything between it and the
// submitter) that hands out bad receipts is caught before the caller sees
// them.
func TestTamperedReceiptsAreCaught(t *testing.T) {
	var held []verify.Receipt
	cases := []struct {
		name string
		fn   func(i int, r *verify.Receipt)
	}{
		{"proof hash flipped", func(i int, r *verify.Receipt) {
			if i == 1 && len(r.Proof) > 0 {
				r.Proof[0][0] ^= 1
			}
		}},
		{"index moved", func(i int, r *verify.Receipt) {
			if i == 1 {
				r.Index++
			}
		}},
		{"receipts swapped", func(i int, r *verify.Receipt) {
			// Two valid receipts, each handed out for the other's event.
			held = append(held, *r)
			if i == 1 {
				*r = held[0]
			}
		}},
		{"checkpoint re-signed by another key", func(i int, r *verify.Receipt) {
			if i == 0 {
				sk, _, _ := note.GenerateKey(rand.Reader, "client.test/log")
				s, _ := note.NewSigner(sk)
				text := r.Checkpoint[:strings.Index(r.Checkpoint, "\n\n")+1]
				b, _ := note.Sign(&note.Note{Text: text}, s)
				r.Checkpoint = string(b)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			held = nil
			tl := newTestLog(t)
			p := proxy(t, tl, nil, rewriteReceipts(tc.fn))
			c, _ := newClient(t, p.URL, tl.key)
			rs, err := c.Append(context.Background(), events(3, "t"))
			var ve *verify.VerificationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want a *verify.VerificationError", err)
			}
			if len(rs) != 0 {
				t.Fatalf("%d receipts returned from a batch with a bad receipt", len(rs))
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	_, vkey, _ := note.GenerateKey(rand.Reader, "client.test/log")
	v, _ := note.NewVerifier(vkey)
	for _, tc := range []struct {
		name, url, token string
		key              note.Verifier
		opts             []Option
		want             string
	}{
		{"no scheme", "127.0.0.1:8080", testToken, v, nil, "not an http(s) URL"},
		{"ftp", "ftp://log.example", testToken, v, nil, "not an http(s) URL"},
		{"no token", "http://log.example", "", v, nil, "no token"},
		{"no key", "http://log.example", testToken, nil, nil, "no log key"},
		{"batch 0", "http://log.example", testToken, v, []Option{WithBatch(0)}, "batch of 0"},
		{"batch too big", "http://log.example", testToken, v, []Option{WithBatch(MaxBatch + 1)}, "batch of 10001"},
		{"negative retries", "http://log.example", testToken, v, []Option{WithRetries(-1)}, "negative"},
	} {
		_, err := New(tc.url, tc.token, tc.key, tc.opts...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestAppendRejectsBadEventsLocally(t *testing.T) {
	tl := newTestLog(t)
	c, _ := newClient(t, tl.srv.URL, tl.key)
	evs := events(2, "v")
	evs[1].Logged = time.Now()
	if _, err := c.Append(context.Background(), evs); err == nil || !strings.Contains(err.Error(), "event 1 sets logged") {
		t.Fatalf("err = %v", err)
	}
	evs = events(2, "v")
	evs[0].Region = ""
	if _, err := c.Append(context.Background(), evs); err == nil || !strings.Contains(err.Error(), "event 0") {
		t.Fatalf("err = %v", err)
	}
	if tl.l.Checkpoint().Size != 0 {
		t.Fatal("a rejected batch reached the log")
	}
	if _, err := c.AppendJSON(context.Background(), [][]byte{[]byte(`{"sample":1}`)}); err == nil {
		t.Fatal("AppendJSON accepted a malformed event")
	}
}

// TestUnverified: a client made by NewUnverified hands receipts on as the
// log sent them (a tampered one included: verifying is left to whoever
// keeps them), but still requires one receipt per event.
func TestUnverified(t *testing.T) {
	tl := newTestLog(t)
	p := proxy(t, tl, nil, rewriteReceipts(func(i int, r *verify.Receipt) {
		if i == 1 && len(r.Proof) > 0 {
			r.Proof[0][0] ^= 1
		}
	}))
	c, err := NewUnverified(p.URL, testToken)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := c.Append(context.Background(), events(3, "u"))
	if err != nil || len(rs) != 3 {
		t.Fatalf("unverified Append = %d receipts, %v; want 3 and no error", len(rs), err)
	}
	if _, _, err := verify.CheckReceipt(rs[1].Receipt, tl.key.Name(), note.VerifierList(tl.key), nil); err == nil {
		t.Error("the tampered receipt was not handed on as sent")
	}
	if rs[0].Checked.Size != 0 || !rs[0].Logged.Time.IsZero() {
		t.Error("an unverified receipt carries a checked checkpoint or event")
	}
	short := proxy(t, tl, nil, func(b []byte) []byte { return b[:bytes.IndexByte(b, '\n')+1] })
	c, _ = NewUnverified(short.URL, testToken)
	if _, err := c.Append(context.Background(), events(3, "v")); err == nil || !strings.Contains(err.Error(), "1 receipts for 3 events") {
		t.Errorf("unverified Append with receipts missing = %v, want an error", err)
	}
}

// TestSend: Send counts the receipt lines of one request without decoding
// them, retries as Append does, and reports refusals as a *StatusError.
func TestSend(t *testing.T) {
	tl := newTestLog(t)
	ctx := context.Background()
	lines := make([][]byte, 5)
	for i, e := range events(5, "s") {
		lines[i] = e.Canonical()
	}
	p := proxy(t, tl, func(w http.ResponseWriter, r *http.Request, n int) bool {
		if n == 1 {
			w.Header().Set("Retry-After", "2")
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return true
		}
		return false
	}, nil)
	c, waits := newClient(t, p.URL, tl.key)
	if n, err := c.Send(ctx, lines); n != 5 || err != nil || len(*waits) != 1 || (*waits)[0] != 2*time.Second {
		t.Fatalf("Send() = %d, %v after waits %v; want 5 receipts after one 2 s wait", n, err, *waits)
	}
	if got := tl.l.Checkpoint().Size; got != 5 {
		t.Fatalf("the log holds %d entries after Send, want 5", got)
	}
	refuse := proxy(t, tl, func(w http.ResponseWriter, r *http.Request, n int) bool {
		http.Error(w, "slow down", http.StatusTooManyRequests)
		return true
	}, nil)
	c, _ = newClient(t, refuse.URL, tl.key, WithRetries(0))
	var se *StatusError
	if _, err := c.Send(ctx, lines); !errors.As(err, &se) || se.Code != http.StatusTooManyRequests {
		t.Errorf("Send() refused = %v, want a *StatusError 429", err)
	}
	if _, err := c.Send(ctx, nil); err == nil {
		t.Error("Send() of no events succeeded")
	}
}
