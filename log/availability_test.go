package log

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/store"
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
	if _, err := LoadTokens(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("LoadTokens(directory) = %v, want 'not a regular file'", err)
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
	tl := newTestLog(t, Config{MaxBatch: 10_000})
	ctx := context.Background()
	tl.AddMany(ctx, testEvents(0, 3)) // other samples first
	for i := 0; i < n; i += 10_000 {
		if _, err := tl.AddMany(ctx, sampleEvents("flood", i, 10_000)); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(tl.Handler(HandlerConfig{}))
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
	tl := newTestLog(t, Config{})
	ctx := context.Background()
	for _, id := range []string{"..", ".", "a..b", ".hidden"} {
		if _, err := tl.AddMany(ctx, sampleEvents(id, 0, 2)); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(tl.Handler(HandlerConfig{}))
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
	_, srv := newTestServer(t, Config{})
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
	tl, srv := newTestServer(t, Config{})
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

// regionName is the i-th of many distinct region names ("RAAAA", "RAAAB", …).
func regionName(i int) string {
	b := []byte("RAAAA")
	for j := len(b) - 1; j > 0 && i > 0; j-- {
		b[j] = 'A' + byte(i%26)
		i /= 26
	}
	return string(b)
}

// TestStatsBounded: a token holder logs events with ever new regions and
// locations. The counts keep at most MaxStatsRegions regions and
// MaxStatsPairs pairs (plus the OtherKey buckets), and still add up to
// every event counted.
func TestStatsBounded(t *testing.T) {
	const n = MaxStatsPairs + 4000
	s := newStats()
	var es []store.Entry
	for i := 0; i < n; i++ {
		ev := record.Event{Sample: "s", Action: record.Stored, Region: regionName(i % (MaxStatsRegions + 50)),
			Location: fmt.Sprintf("l-%d", i), Time: testTime, Logged: testTime, Actor: "a"}
		es = append(es, store.Entry{Index: uint64(i), Data: ev.Canonical()})
	}
	if err := s.addEntries(es); err != nil {
		t.Fatal(err)
	}
	counts := s.Counts()
	var sum uint64
	pairs := 0
	for _, m := range counts {
		for l, c := range m {
			sum += c
			if l != OtherKey {
				pairs++
			}
		}
	}
	if len(counts) > MaxStatsRegions+1 || counts[OtherKey] == nil {
		t.Errorf("%d regions counted (want at most %d and an %s row)", len(counts), MaxStatsRegions+1, OtherKey)
	}
	if pairs > MaxStatsPairs {
		t.Errorf("%d pairs counted, want at most %d", pairs, MaxStatsPairs)
	}
	if sum != n || s.Total() != n || s.Counted() != n {
		t.Errorf("counts add up to %d, total %d, counted %d; want %d each", sum, s.Total(), s.Counted(), n)
	}
	// The first regions seen keep their names, and their later events at
	// new locations go to their own OtherKey column.
	if c := counts[regionName(0)][OtherKey]; c == 0 {
		t.Errorf("region %s has no %s column after the pair cap", regionName(0), OtherKey)
	}
}
