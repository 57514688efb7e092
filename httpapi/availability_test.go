package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/custodylog/custody/log"
	"github.com/custodylog/custody/record"
)

// TestLoadTokensRefusesSharedFile: the README's old recipe
// (`openssl rand -hex 32 > tokens.txt`) makes a 0644 file; a token file
// group or others may read or write is refused, and the error names the
// file and its mode without quoting a token.
func TestLoadTokensRefusesSharedFile(t *testing.T) {
	const tok = "0123456789abcdef0123456789abcdef"
	dir := t.TempDir()
	for _, mode := range []os.FileMode{0o644, 0o666, 0o640, 0o604, 0o620, 0o602, 0o610} {
		p := filepath.Join(dir, "tokens-"+mode.String())
		if err := os.WriteFile(p, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		ts, err := LoadTokens(p)
		var me *TokenFileModeError
		if !errors.As(err, &me) || me.Mode != mode || me.Path != p {
			t.Fatalf("mode %04o: LoadTokens = %v, %v; want a *TokenFileModeError for mode %04o", mode, ts, err, mode)
		}
		if msg := err.Error(); !strings.Contains(msg, p) || !strings.Contains(msg, "group or others") || strings.Contains(msg, tok) {
			t.Errorf("mode %04o: error %q should name the file and the problem, and not quote the token", mode, msg)
		}
		if me.Hint() != "chmod 600 "+p || me.ExitCode() != 1 {
			t.Errorf("mode %04o: hint %q, exit code %d; want chmod 600 and 1", mode, me.Hint(), me.ExitCode())
		}
	}
	for _, mode := range []os.FileMode{0o600, 0o400} {
		p := filepath.Join(dir, "ok-"+mode.String())
		if err := os.WriteFile(p, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if ts, err := LoadTokens(p); err != nil || len(ts) != 1 || ts[0] != tok {
			t.Fatalf("mode %04o: LoadTokens = %q, %v; want the token", mode, ts, err)
		}
	}
	// A directory is not a token file.
	var fe *TokenFileError
	if _, err := LoadTokens(dir); !errors.As(err, &fe) || !strings.Contains(err.Error(), "not a regular file") || !strings.Contains(fe.Hint(), "openssl rand -hex 32 > "+dir) {
		t.Fatalf("LoadTokens(directory) = %v, want a *TokenFileError 'not a regular file' saying how to write one", err)
	}
}

// sampleEvents returns n distinct events of one sample (times a second
// apart, ending at testTime).
func sampleEvents(sample string, from, n int) []record.Event {
	evs := make([]record.Event, n)
	for i := range evs {
		evs[i] = record.Event{Sample: sample, Action: record.Stored, Location: "ch-zrh-1", Region: "EU",
			Time: testTime.Add(-time.Duration(from+i) * time.Second), Actor: "flood/1"}
	}
	return evs
}

// TestSamplePagesBounded: one sample with 50,000 events used to come back
// in one 22 MB answer to anyone. Now every answer holds at most
// MaxSamplePage events and names the next page; following the pages gives
// every event once, in log order, in the tree size of the first page even
// when the log grows in between.
func TestSamplePagesBounded(t *testing.T) {
	const n = 50_000
	tl := newTestLog(t, log.Config{MaxBatch: 10_000})
	ctx := context.Background()
	tl.AddMany(ctx, testEvents(0, 3)) // other samples first
	for i := 0; i < n; i += 10_000 {
		if _, err := tl.AddMany(ctx, sampleEvents("flood", i, 10_000)); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(tl.Handler(Config{}))
	t.Cleanup(srv.Close)
	size := tl.Checkpoint().Size

	var got []uint64
	path := "/v1/samples/flood"
	for pages := 0; path != ""; pages++ {
		if pages > n/MaxSamplePage {
			t.Fatalf("more than %d pages", n/MaxSamplePage)
		}
		code, b, _ := get(t, srv.URL+path)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, code, b)
		}
		// An entry's JSON is at most ~3 times its bytes (base64 + raw)
		// plus its hash: bounded by the page size, not the sample's.
		if max := MaxSamplePage * (3*record.MaxEventSize + 200); len(b) > max {
			t.Fatalf("GET %s: %d bytes, want at most %d", path, len(b), max)
		}
		var p SamplePage
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatal(err)
		}
		if len(p.Events) > MaxSamplePage || p.Size != size || p.Sample != "flood" {
			t.Fatalf("GET %s: %d events, size %d, sample %q", path, len(p.Events), p.Size, p.Sample)
		}
		for _, e := range p.Events {
			got = append(got, e.Index)
		}
		if pages == 0 {
			// The log grows between pages: the pages keep the first size.
			if _, err := tl.AddMany(ctx, sampleEvents("flood", n, 5)); err != nil {
				t.Fatal(err)
			}
		}
		path = p.Next
	}
	if len(got) != n {
		t.Fatalf("the pages hold %d events, want %d", len(got), n)
	}
	for i, idx := range got {
		if idx != uint64(3+i) {
			t.Fatalf("event %d of the pages has index %d, want %d", i, idx, 3+i)
		}
	}
	// The newest page at the new size has the 5 new events at its end.
	code, b, _ := get(t, fmt.Sprintf("%s/v1/samples/flood?after=%d", srv.URL, got[len(got)-1]))
	var p SamplePage
	if json.Unmarshal(b, &p); code != 200 || len(p.Events) != 5 || p.Next != "" || p.Size != size+5 {
		t.Fatalf("page after the last: %d, %d events, next %q, size %d", code, len(p.Events), p.Next, p.Size)
	}
	for _, c := range []struct {
		query string
		code  int
		want  string
	}{
		{"?after=x", 400, `parameter after=\"x\" is not a decimal number`},
		{"?size=" + fmt.Sprint(size+6), 400, "beyond the published tree"},
		{"?size=3", 404, `no events of sample \"flood\" in the tree of size 3`},
		{"?after=" + fmt.Sprint(size+5), 200, `"events":[]`},
	} {
		code, b, _ := get(t, srv.URL+"/v1/samples/flood"+c.query)
		if code != c.code || !strings.Contains(string(b), c.want) {
			t.Errorf("GET /v1/samples/flood%s: %d %s; want %d %q", c.query, code, b, c.code, c.want)
		}
	}
}

// TestSamplePathEscaping: sample IDs are path segments. ".." is a valid
// sample ID and must reach the handler (not be resolved away); IDs with
// "/", "%" or a space are invalid and get 400 naming the character, not a
// redirect, 404 or 405.
func TestSamplePathEscaping(t *testing.T) {
	tl := newTestLog(t, log.Config{})
	ctx := context.Background()
	for _, id := range []string{"..", ".", "a..b", ".hidden"} {
		if _, err := tl.AddMany(ctx, sampleEvents(id, 0, 2)); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(tl.Handler(Config{}))
	t.Cleanup(srv.Close)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	fetch := func(rawPath string) (int, SamplePage, string) {
		t.Helper()
		req, err := http.NewRequest("GET", srv.URL+rawPath, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		if _, err := io.Copy(&b, resp.Body); err != nil {
			t.Fatal(err)
		}
		var p SamplePage
		json.Unmarshal([]byte(b.String()), &p)
		return resp.StatusCode, p, b.String()
	}
	for _, id := range []string{"..", ".", "a..b", ".hidden"} {
		path := SamplePath(id)
		code, p, body := fetch(path)
		if code != 200 || p.Sample != id || len(p.Events) != 2 {
			t.Errorf("sample %q at %s: %d %s; want its 2 events", id, path, code, body)
		}
	}
	if got := SamplePath(".."); got != "/v1/samples/%2E%2E" {
		t.Errorf("SamplePath(..) = %q", got)
	}
	for _, c := range []struct{ id, char string }{{"a/b", "'/'"}, {"%", "'%'"}, {"a b", "' '"}, {"../..", "'/'"}} {
		code, _, body := fetch(SamplePath(c.id))
		if code != 400 || !strings.Contains(body, "character "+c.char+" not allowed") {
			t.Errorf("sample %q at %s: %d %s; want 400 naming %s", c.id, SamplePath(c.id), code, body, c.char)
		}
	}
}

// TestAPIPathWithoutIDs: GET /v1/entries/ used to answer 405 "use GET" to
// a GET. A missing ID is 400 and an extra path segment 404, each saying
// what the route looks like; other methods still get 405.
func TestAPIPathWithoutIDs(t *testing.T) {
	_, srv := newTestServer(t, log.Config{})
	for _, c := range []struct {
		method, path string
		code         int
		want         string
	}{
		{"GET", "/v1/entries/", 400, "missing entry index: use GET /v1/entries/{index}"},
		{"HEAD", "/v1/entries/", 400, ""},
		{"GET", "/v1/samples/", 400, "missing sample ID: use GET /v1/samples/{sample}"},
		{"GET", "/v1/entries/1/2", 404, "no such endpoint: GET /v1/entries/1/2 (entries are at /v1/entries/{index})"},
		{"GET", "/v1/samples/a/b", 404, "no such endpoint: GET /v1/samples/a/b"},
		{"POST", "/v1/entries/", 405, "POST /v1/entries/: use GET"},
		{"DELETE", "/v1/samples/x", 405, "use GET"},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.code || !strings.Contains(string(b), c.want) {
			t.Errorf("%s %s: %d %s; want %d %q", c.method, c.path, resp.StatusCode, b, c.code, c.want)
		}
	}
}

// TestAPIDocTexts pins what docs/api.md says the code does: the 404 text
// for an unknown leaf hash, and the size rule of an event (white space
// inside the object counts, white space around it on its line does not).
func TestAPIDocTexts(t *testing.T) {
	tl, srv := newTestServer(t, log.Config{})
	post(t, srv.URL, testToken, eventLines(0, 3))
	code, b, _ := get(t, srv.URL+"/v1/proof/inclusion?hash="+urlB64(make([]byte, 32)))
	want := `{"error":"no entry with leaf hash AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= in the published tree of size 3"}`
	if code != 404 || strings.TrimSpace(string(b)) != want {
		t.Errorf("unknown hash: %d %s, want 404 %s", code, b, want)
	}

	ev := string(testEvent(10).Canonical())
	inner := func(n int) string { // ev padded inside to n bytes
		return ev[:1] + strings.Repeat(" ", n-len(ev)) + ev[1:]
	}
	pad := strings.Repeat(" \t", 200)
	for _, c := range []struct {
		name, body string
		code       int
	}{
		{"MaxEventSize inside, white space around, one line of JSON lines", pad + inner(record.MaxEventSize) + pad + "\n" + string(testEvent(11).Canonical()) + "\n", 200},
		{"MaxEventSize inside, white space around, single event", "\n" + pad + inner(record.MaxEventSize) + pad + "\n", 200},
		{"one byte over inside", inner(record.MaxEventSize+1) + "\n" + string(testEvent(12).Canonical()) + "\n", 400},
	} {
		code, b := post(t, srv.URL, testToken, []byte(c.body))
		if code != c.code {
			t.Errorf("%s: %d %s, want %d", c.name, code, b, c.code)
		}
		if c.code == 400 && !strings.Contains(string(b), "more than the maximum of 4096") {
			t.Errorf("%s: %s does not say why", c.name, b)
		}
	}
	if got := tl.Checkpoint().Size; got != 5 {
		t.Errorf("tree size %d, want 5", got)
	}
}

// trickle starts a POST /v1/events whose body sends part of one event and
// then nothing more until done is closed. The answer's status goes to
// codes (-1 on a transport error).
func trickle(url, token string, done <-chan struct{}, codes chan<- int) {
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte(`{"sample":"trickle",`))
		<-done
		pw.CloseWithError(errors.New("trickler gave up"))
	}()
	req, _ := http.NewRequest("POST", url+"/v1/events", pr)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		codes <- -1
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	codes <- resp.StatusCode
}

// TestTricklingTokenCannotBlockOthers: one token holder opens 64 POSTs
// (every write slot, by default) whose bodies trickle and never end. Its
// requests beyond its share (16 of 64) are refused at once; the others
// hold slots; another token's writes still succeed.
func TestTricklingTokenCannotBlockOthers(t *testing.T) {
	const a, b = "token-A-0123456789abcdef", "token-B-0123456789abcdef"
	tl := newTestLog(t, log.Config{})
	srv := httptest.NewServer(tl.Handler(Config{Tokens: []string{a, b}, BodyTimeout: time.Hour}))
	t.Cleanup(srv.Close)
	done := make(chan struct{})
	codes := make(chan int, DefaultMaxConcurrentWrites)
	for i := 0; i < DefaultMaxConcurrentWrites; i++ {
		go trickle(srv.URL, a, done, codes)
	}
	share := perTokenWrites(DefaultMaxConcurrentWrites, 2)
	if share != 16 || perTokenWrites(DefaultMaxConcurrentWrites, 1) != DefaultMaxConcurrentWrites {
		t.Fatalf("one token's share of the write slots is %d, want 16 of 64 (all 64 with a single token)", share)
	}
	// Every request beyond the share is answered at once with 429; those
	// answers prove the share is held (a slot is freed only when its
	// body ends, and none does).
	for i := 0; i < DefaultMaxConcurrentWrites-share; i++ {
		if code := <-codes; code != http.StatusTooManyRequests {
			t.Fatalf("trickling request %d: %d, want 429", i, code)
		}
	}
	if code, body := post(t, srv.URL, b, eventLines(0, 3)); code != http.StatusOK {
		t.Fatalf("token B while token A trickles on %d requests: %d %s", share, code, body)
	}
	code, body := post(t, srv.URL, a, eventLines(3, 1))
	if code != http.StatusTooManyRequests || !strings.Contains(string(body), "this token already has 16 write requests in flight") {
		t.Fatalf("token A's next request: %d %s, want 429 naming its share", code, body)
	}
	if got := tl.Checkpoint().Size; got != 3 {
		t.Fatalf("tree size %d, want 3", got)
	}
	close(done)
	for i := 0; i < share; i++ {
		if code := <-codes; code == http.StatusOK {
			t.Fatalf("a trickled, truncated body was accepted")
		}
	}
	// The slots are free again.
	if code, body := post(t, srv.URL, a, eventLines(3, 1)); code != http.StatusOK {
		t.Fatalf("token A after its tricklers ended: %d %s", code, body)
	}
}

// TestSlowBodyCutOff: a body that stops arriving is cut off after
// BodyTimeout (408), not after the server's 30 s read timeout, and its
// slot is free again at once.
func TestSlowBodyCutOff(t *testing.T) {
	tl := newTestLog(t, log.Config{})
	srv := httptest.NewServer(tl.Handler(Config{Tokens: []string{testToken}, MaxConcurrentWrites: 1, MaxConcurrentWritesPerToken: 1, BodyTimeout: 200 * time.Millisecond}))
	t.Cleanup(srv.Close)
	done := make(chan struct{})
	defer close(done)
	codes := make(chan int, 1)
	go trickle(srv.URL, testToken, done, codes)
	select {
	case code := <-codes:
		if code != http.StatusRequestTimeout {
			t.Fatalf("stalled body: %d, want 408", code)
		}
	case <-time.After(20 * time.Second): // a hang guard, not a timing check
		t.Fatal("a stalled body still holds its slot after 20s")
	}
	if code, body := post(t, srv.URL, testToken, eventLines(0, 2)); code != http.StatusOK {
		t.Fatalf("the only slot after the stalled body: %d %s", code, body)
	}
}

// TestEveryEventIsCharged: the rate limit charges every event a request
// carries, before knowing whether it is new: duplicates, which add nothing
// to the tree, and requests rejected for a bad event. (The rate is so low
// that nothing refills during the test.)
func TestEveryEventIsCharged(t *testing.T) {
	const b, c = "token-B-0123456789abcdef", "token-C-0123456789abcdef"
	tl := newTestLog(t, log.Config{})
	srv := httptest.NewServer(tl.Handler(Config{Tokens: []string{b, c}, TokenRate: 0.001, TokenBurst: 100}))
	t.Cleanup(srv.Close)

	batch := eventLines(0, 60)
	if code, body := post(t, srv.URL, b, batch); code != http.StatusOK {
		t.Fatalf("60 new events: %d %s", code, body)
	}
	// The same 60 again: duplicates, but charged (the bucket had 40).
	if code, body := post(t, srv.URL, b, batch); code != http.StatusOK {
		t.Fatalf("60 duplicates: %d %s", code, body)
	}
	if got := tl.Checkpoint().Size; got != 60 {
		t.Fatalf("duplicates grew the tree to %d", got)
	}
	code, body := post(t, srv.URL, b, eventLines(60, 1))
	if code != http.StatusTooManyRequests || !strings.Contains(string(body), "rate limit") {
		t.Fatalf("after 60 new and 60 duplicate events of a 100-event bucket: %d %s, want 429", code, body)
	}

	// A rejected request is charged for the events it carried.
	bad := append(eventLines(100, 99), []byte(`{"sample":"bad"}`+"\n")...)
	if code, body := post(t, srv.URL, c, bad); code != http.StatusBadRequest {
		t.Fatalf("100 events, the last bad: %d %s", code, body)
	}
	if code, body := post(t, srv.URL, c, eventLines(200, 1)); code != http.StatusTooManyRequests {
		t.Fatalf("after a rejected 100-event request: %d %s, want 429", code, body)
	}
	if got := tl.Checkpoint().Size; got != 60 {
		t.Fatalf("tree size %d, want 60", got)
	}
}

// heapAtFirstWrite is a ResponseWriter that, at the first Write of the
// answer (when every receipt of the old code was built and marshalled),
// collects garbage and records the live heap.
type heapAtFirstWrite struct {
	h    http.Header
	code int
	n    int
	live uint64
	skip bool // do not measure
}

func (w *heapAtFirstWrite) Header() http.Header { return w.h }
func (w *heapAtFirstWrite) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}
func (w *heapAtFirstWrite) Write(b []byte) (int, error) {
	if w.n == 0 && !w.skip {
		w.live = liveHeap()
	}
	w.n += len(b)
	return len(b), nil
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestWriteRequestMemoryBounded: a request of 10,000 duplicate events used
// to hold its 10,000 receipts and their JSON (about 50 MB) before the
// first byte of the answer; 64 of them took a server to 5 GB. The receipts
// are now built and sent one at a time: while the answer is being sent, a
// request holds a few bytes per event.
func TestWriteRequestMemoryBounded(t *testing.T) {
	const n = DefaultMaxEvents
	tl := newTestLog(t, log.Config{MaxBatch: n})
	h := tl.Handler(Config{Tokens: []string{testToken}, MaxBody: DefaultMaxBody})
	body := eventLines(0, n)
	serve := func() *heapAtFirstWrite {
		req := httptest.NewRequest("POST", "/v1/events", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		w := &heapAtFirstWrite{h: http.Header{}}
		h.ServeHTTP(w, req)
		if w.code != 0 && w.code != http.StatusOK {
			t.Fatalf("POST of %d events: %d", n, w.code)
		}
		return w
	}
	serve() // the events are new; the log's caches fill
	before := liveHeap()
	w := serve() // all duplicates: the attack
	if tl.Checkpoint().Size != n {
		t.Fatalf("tree size %d, want %d", tl.Checkpoint().Size, n)
	}
	held := int64(w.live) - int64(before)
	t.Logf("answer of %d bytes; live heap at its first byte: %+d bytes over the idle log", w.n, held)
	if w.n < n*1000 {
		t.Fatalf("answer of %d bytes for %d receipts", w.n, n)
	}
	// Well under 1 KB per event, where the old code held over 5 KB.
	if limit := int64(n * 1024); held > limit {
		t.Fatalf("a %d-event request holds %d bytes while answering, want at most %d", n, held, limit)
	}
}

// TestLargeBodiesDecodedAsTheyArrive: a body over peekBody is JSON lines,
// decoded line by line: blank lines and CRLF are fine; a body of nothing
// but white space is an empty request; a line over maxLine, a bad line or
// one event too many stop the request with the right status.
func TestLargeBodiesDecodedAsTheyArrive(t *testing.T) {
	tl, srv := newTestServer(t, log.Config{}) // MaxEvents 2000
	half := strings.Repeat(" ", peekBody/2)
	pad := half + "\n" + half + "\n" + half // more than peekBody, lines within maxLine
	for _, c := range []struct {
		name string
		body string
		code int
		want string
	}{
		{"white space only", pad + "\n" + pad, 400, "empty request"},
		{"CRLF and blank lines", string(bytes.ReplaceAll(eventLines(0, 400), []byte("\n"), []byte("\r\n\r\n"))) + pad, 200, ""},
		{"a line over maxLine", string(eventLines(400, 1)) + strings.Repeat(" ", maxLine) + string(eventLines(401, 1)), 400, "line 2 is longer than 65536 bytes"},
		{"a bad line", pad + "\n" + string(eventLines(402, 5)) + "{}\n" + string(eventLines(407, 5)), 400, "line 9: "},
		{"one event too many", string(eventLines(500, 2001)) + pad, 413, "more than 2000 events"},
	} {
		code, b := post(t, srv.URL, testToken, []byte(c.body))
		if code != c.code || !strings.Contains(string(b), c.want) {
			t.Errorf("%s: %d %.200s; want %d %q", c.name, code, b, c.code, c.want)
		}
	}
	if got := tl.Checkpoint().Size; got != 400 {
		t.Errorf("tree size %d, want 400", got)
	}
}

// FuzzReadEvents checks that decoding a body as it arrives (bodies over
// peekBody) gives what decoding it whole gives: for any JSON-lines body,
// the same events, or an error for both; and that readEvents never
// returns more events than its limit or fewer received than events.
func FuzzReadEvents(f *testing.F) {
	f.Add(eventLines(0, 3))
	f.Add([]byte("\n\n" + string(eventLines(5, 2)) + "{}\n"))
	f.Add([]byte(string(testEvent(9).Canonical()) + "\r\n  \r\n" + string(testEvent(10).Canonical())))
	f.Add([]byte("{\"sample\":\n\"x\"}\n{}"))
	tl := newTestLog(f, log.Config{})
	a := &api{l: tl.Log, now: testNow, maxEvents: 50}
	f.Fuzz(func(t *testing.T, body []byte) {
		whole, _, errWhole := a.parseEvents(body, nil)
		trimmed := bytes.TrimSpace(body)
		lines := bytes.Contains(trimmed, []byte("\n")) && !json.Valid(trimmed)
		for l := range bytes.Lines(body) {
			if len(l) > maxLine/2 {
				return
			}
		}
		half := strings.Repeat(" ", peekBody/2)
		padded := []byte(half + "\n" + half + "\n" + string(body))
		evs, received, err := a.readEvents(bytes.NewReader(padded), 20, nil)
		if len(evs) > 20 || received < len(evs) || (err == nil && len(evs) == 0) {
			t.Fatalf("%d events, %d received, err %v", len(evs), received, err)
		}
		if !lines || len(whole) > 20 {
			return
		}
		if (err == nil) != (errWhole == nil) {
			t.Fatalf("streamed: %v; whole: %v", err, errWhole)
		}
		if err != nil {
			return
		}
		if len(evs) != len(whole) {
			t.Fatalf("streamed %d events, whole %d", len(evs), len(whole))
		}
		for i := range evs {
			if evs[i].Identity() != whole[i].Identity() {
				t.Fatalf("event %d differs", i)
			}
		}
	})
}
