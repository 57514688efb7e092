package httpapi

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custodylog/custody/log"
)

// readSignal wraps a request body and closes started on the first Read, so
// a test knows the handler is inside the request (holding its write slot).
type readSignal struct {
	io.ReadCloser
	once    *sync.Once
	started chan struct{}
}

func (r readSignal) Read(p []byte) (int, error) {
	r.once.Do(func() { close(r.started) })
	return r.ReadCloser.Read(p)
}

func TestConcurrentWriteCap(t *testing.T) {
	tl := newTestLog(t, log.Config{})
	h := tl.Handler(Config{Tokens: []string{testToken}, MaxConcurrentWrites: 1})
	started := make(chan struct{})
	var once sync.Once
	var first sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		first.Do(func() { r.Body = readSignal{r.Body, &once, started} })
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)

	// The first request holds the only slot: its body blocks until released.
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	var firstBody []byte
	go func() {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/events", pr)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- -1
			return
		}
		firstBody, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	// The first bytes of the body, written (and read by the handler)
	// before the rest: a pipe write returns once the reader took it.
	wrote := make(chan struct{})
	go func() {
		pw.Write(eventLines(0, 1)[:5])
		close(wrote)
	}()
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("the first request never reached the handler")
	}
	<-wrote

	req, _ := http.NewRequest("POST", srv.URL+"/v1/events", bytes.NewReader(eventLines(1, 1)))
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("second write while the slot is held: %d Retry-After=%q %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	if got := tl.Checkpoint().Size; got != 0 {
		t.Fatalf("tree size %d after a refused request, want 0", got)
	}

	// Release the first request: it completes, and the slot is free again.
	pw.Write(eventLines(0, 1)[5:])
	pw.Close()
	if code := <-done; code != http.StatusOK {
		t.Fatalf("first request: %d %s", code, firstBody)
	}
	if code, b := post(t, srv.URL, testToken, eventLines(1, 1)); code != http.StatusOK {
		t.Fatalf("write after the slot is released: %d %s", code, b)
	}
	if got := tl.Checkpoint().Size; got != 2 {
		t.Fatalf("tree size %d, want 2", got)
	}
}

func TestTokenRateLimit(t *testing.T) {
	const other = "fedcba9876543210-other-token"
	const third = "fedcba9876543210-third-token"
	tl := newTestLog(t, log.Config{})
	srv := httptest.NewServer(tl.Handler(Config{Tokens: []string{testToken, other, third}, TokenRate: 10, TokenBurst: 10}))
	t.Cleanup(srv.Close)

	if code, b := post(t, srv.URL, testToken, eventLines(0, 10)); code != http.StatusOK {
		t.Fatalf("first 10 events: %d %s", code, b)
	}
	req, _ := http.NewRequest("POST", srv.URL+"/v1/events", bytes.NewReader(eventLines(10, 10)))
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if resp.StatusCode != http.StatusTooManyRequests || err != nil || ra < 1 {
		t.Fatalf("immediate second batch: %d Retry-After=%q %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	if got := tl.Checkpoint().Size; got != 10 {
		t.Fatalf("tree size %d after a refused request, want 10", got)
	}
	// Another token has its own bucket.
	if code, b := post(t, srv.URL, other, eventLines(10, 10)); code != http.StatusOK {
		t.Fatalf("other token: %d %s", code, b)
	}
	// More events than the burst can never pass; the events received
	// are charged all the same, so the token is then over its rate.
	if code, b := post(t, srv.URL, third, eventLines(20, 11)); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("batch over the burst: %d %s", code, b)
	}
	if code, b := post(t, srv.URL, third, eventLines(20, 1)); code != http.StatusTooManyRequests {
		t.Fatalf("after a batch over the burst: %d %s, want 429", code, b)
	}
	if got := tl.Checkpoint().Size; got != 20 {
		t.Fatalf("tree size %d, want 20", got)
	}
}

func TestTokenLimiterRefill(t *testing.T) {
	now := time.Unix(0, 0)
	l := newTokenLimiter(10, 10)
	l.now = func() time.Time { return now }
	var k [32]byte
	if ok, _ := l.admit(k); !ok {
		t.Fatal("full bucket refused")
	}
	l.charge(k, 10)
	if ok, wait := l.admit(k); ok || wait != 100*time.Millisecond {
		t.Fatalf("empty bucket: ok=%v wait=%v, want a wait for one event (100ms)", ok, wait)
	}
	// A charge beyond the bucket is a debt: 5 events more wait 600 ms.
	l.charge(k, 5)
	if ok, wait := l.admit(k); ok || wait != 600*time.Millisecond {
		t.Fatalf("bucket in debt: ok=%v wait=%v, want 600ms", ok, wait)
	}
	now = now.Add(600 * time.Millisecond)
	if ok, _ := l.admit(k); !ok {
		t.Fatal("refilled bucket refused")
	}
	now = now.Add(time.Hour)
	if l.charge(k, 0); l.buckets[k].tokens != 10 {
		t.Fatalf("a bucket refills to the burst only, holds %g", l.buckets[k].tokens)
	}
	if retryAfterSeconds(10*time.Millisecond) != 1 || retryAfterSeconds(1500*time.Millisecond) != 2 {
		t.Fatal("retryAfterSeconds")
	}
	if newTokenLimiter(0, 5) != nil {
		t.Fatal("rate 0 must mean unlimited")
	}
}

// servedLikeServe serves h over a real http.Server with serve's timeouts,
// but a short ReadHeaderTimeout.
func servedLikeServe(t *testing.T, h http.Handler) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 200 * time.Millisecond,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          nil,
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func TestSlowlorisIsCutOff(t *testing.T) {
	tl := newTestLog(t, log.Config{})
	addr := servedLikeServe(t, tl.Handler(Config{Tokens: []string{testToken}}))

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	closed := make(chan error, 1)
	go func() {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := io.Copy(io.Discard, conn)
		if err == nil {
			err = io.EOF
		}
		closed <- err
	}()
	// Dribble a header, one byte every 20ms, while checking another client
	// is served meanwhile.
	go func() {
		for _, c := range []byte("GET /checkpoint HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa") {
			if _, err := conn.Write([]byte{c}); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	code, _, _ := get(t, "http://"+addr+"/healthz")
	if code != http.StatusOK {
		t.Fatalf("other client during slowloris: %d", code)
	}
	select {
	case err := <-closed:
		if el := time.Since(start); el > 1500*time.Millisecond {
			t.Fatalf("slow connection closed after %v (%v), want about 200ms", el, err)
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("the server never closed the slow connection: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the server still holds the slow connection after 3s")
	}
	code, _, _ = get(t, "http://"+addr+"/healthz")
	if code != http.StatusOK {
		t.Fatalf("other client after slowloris: %d", code)
	}
}

func TestGETWithHugeBodyIsNotRead(t *testing.T) {
	tl := newTestLog(t, log.Config{})
	addr := servedLikeServe(t, tl.Handler(Config{Tokens: []string{testToken}}))
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const size = 50 << 20
	fmt.Fprintf(conn, "GET /checkpoint HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", size)
	// Send a little of the body only: the response must arrive anyway.
	conn.Write(bytes.Repeat([]byte("x"), 1024))
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no response before the 50 MB body was sent: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(b) == 0 {
		t.Fatalf("GET /checkpoint with a body: %d %q", resp.StatusCode, b)
	}
	// Sending the rest is refused early: the server closes the connection
	// rather than read 50 MB, so the write fails long before the end.
	sent := 1024
	conn.SetWriteDeadline(time.Now().Add(3 * time.Second))
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	for sent < size {
		n, err := conn.Write(chunk)
		sent += n
		if err != nil {
			break
		}
	}
	if sent >= size {
		t.Fatalf("the server accepted all %d body bytes of a GET", sent)
	}
}

func TestPanicIsHidden(t *testing.T) {
	tl := newTestLog(t, log.Config{})
	var logs bytes.Buffer
	h := tl.Handler(Config{
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
		Extra: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			panic("secret internal state at /var/lib/custody")
		}),
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	code, b, hdr := get(t, srv.URL+"/dashboard")
	if code != http.StatusInternalServerError || strings.TrimSpace(string(b)) != `{"error":"internal error"}` {
		t.Fatalf("panicking handler: %d %q", code, b)
	}
	if strings.Contains(string(b), "goroutine") || strings.Contains(string(b), "secret") || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("panic details leaked: %q", b)
	}
	if !strings.Contains(logs.String(), "secret internal state") || !strings.Contains(logs.String(), `"level":"ERROR"`) {
		t.Fatalf("panic not logged at error level: %s", logs.String())
	}
	// The server keeps serving.
	if code, _, _ := get(t, srv.URL+"/healthz"); code != http.StatusOK {
		t.Fatalf("healthz after a panic: %d", code)
	}
}

func TestTokensNeverLogged(t *testing.T) {
	const wrong = "wrong-token-0123456789-never-log-me"
	tl := newTestLog(t, log.Config{})
	var logs bytes.Buffer
	srv := httptest.NewServer(tl.Handler(Config{
		Tokens:    []string{testToken},
		Logger:    slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		TokenRate: 1, TokenBurst: 1,
	}))
	t.Cleanup(srv.Close)
	if code, b := post(t, srv.URL, wrong, eventLines(0, 1)); code != http.StatusUnauthorized || strings.Contains(string(b), wrong) {
		t.Fatalf("wrong token: %d %s", code, b)
	}
	if code, b := post(t, srv.URL, testToken, eventLines(0, 1)); code != http.StatusOK {
		t.Fatalf("right token: %d %s", code, b)
	}
	// Rate-limited, bad request and failing requests with the right token.
	post(t, srv.URL, testToken, eventLines(1, 1))
	post(t, srv.URL, testToken, []byte("{not json"))
	tl.Close()
	post(t, srv.URL, testToken, eventLines(2, 1))
	for _, tok := range []string{wrong, testToken} {
		if strings.Contains(logs.String(), tok) {
			t.Fatalf("logs contain token %q:\n%s", tok, logs.String())
		}
	}
}
