package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/custodylog/custody/log"
	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/verify"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func newTestServer(t *testing.T, cfg log.Config) (*testLog, *httptest.Server) {
	tl := newTestLog(t, cfg)
	srv := httptest.NewServer(tl.Handler(Config{Tokens: []string{testToken}, MaxBody: 1 << 20, MaxEvents: 2000}))
	t.Cleanup(srv.Close)
	return tl, srv
}

func get(t *testing.T, url string) (int, []byte, http.Header) {
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
	return resp.StatusCode, b, resp.Header
}

func post(t *testing.T, url, token string, body []byte) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/v1/events", bytes.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func eventLines(from, n int) []byte {
	var buf bytes.Buffer
	for _, ev := range testEvents(from, n) {
		buf.Write(ev.Canonical())
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

// httpTiles reads C2SP tiles over HTTP for x/mod's TileHashReader, which
// authenticates every tile against the checkpoint's root before use.
type httpTiles struct {
	t    *testing.T
	base string
}

func (h httpTiles) Height() int { return 8 }

func (h httpTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, tile := range tiles {
		// x/mod paths are tile/8/L/N[.p/W]; C2SP drops the height.
		p := strings.Replace(tile.Path(), "tile/8/", "tile/", 1)
		code, b, _ := get(h.t, h.base+"/"+p)
		if code != 200 {
			return nil, fmt.Errorf("GET %s: %d %s", p, code, b)
		}
		out[i] = b
	}
	return out, nil
}

func (h httpTiles) SaveTiles([]tlog.Tile, [][]byte) {}

// checkServedLog checks everything a third party sees, with x/mod only.
func checkServedLog(t *testing.T, base, vkey string, want int) tlog.Tree {
	t.Helper()
	code, cpb, hdr := get(t, base+"/checkpoint")
	if code != 200 || hdr.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("GET /checkpoint: %d %q", code, hdr.Get("Content-Type"))
	}
	v, _ := note.NewVerifier(vkey)
	n, err := note.Open(cpb, note.VerifierList(v))
	if err != nil {
		t.Fatalf("x/mod note.Open(/checkpoint): %v", err)
	}
	// Origin, size, root and the sample index line (the log's store keeps
	// the index); x/mod's tlog.ParseTree reads the size and root lines
	// (under its own origin line).
	lines := strings.Split(n.Text, "\n")
	if len(lines) != 5 || lines[0] != v.Name() || lines[1] != fmt.Sprint(want) || !strings.HasPrefix(lines[3], "custody-sample-index ") {
		t.Fatalf("checkpoint text %q, want origin %s size %d and the sample index line", n.Text, v.Name(), want)
	}
	if tr, err := tlog.ParseTree([]byte("go.sum database tree\n" + strings.Join(lines[1:3], "\n") + "\n")); err != nil || tr.N != int64(want) {
		t.Fatalf("x/mod tlog.ParseTree(first three lines) = %v, %v", tr, err)
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != 32 {
		t.Fatalf("checkpoint root %q", lines[2])
	}
	tree := tlog.Tree{N: int64(want), Hash: tlog.Hash(root)}
	if want == 0 {
		if tree.Hash != tlog.Hash(sha256.Sum256(nil)) { // the empty tree's root
			t.Fatalf("size-0 root %x", root)
		}
		return tree
	}
	thr := tlog.TileHashReader(tree, httpTiles{t, base})
	idx := make([]int64, want)
	for i := range idx {
		idx[i] = tlog.StoredHashIndex(0, int64(i))
	}
	leaves, err := thr.ReadHashes(idx)
	if err != nil {
		t.Fatalf("x/mod TileHashReader at size %d: %v", want, err)
	}
	if h, err := tlog.TreeHash(tree.N, thr); err != nil || h != tree.Hash {
		t.Fatalf("x/mod TreeHash = %x, %v; checkpoint says %x", h, err, tree.Hash)
	}
	// Entry bundles: every entry hashes to its authenticated leaf.
	for b := 0; b*256 < want; b++ {
		w := min(256, want-b*256)
		p := verify.TileAddr{Entries: true, Index: uint64(b)}
		if w < 256 {
			p.Width = w
		}
		code, data, _ := get(t, base+"/"+p.Path())
		if code != 200 {
			t.Fatalf("GET %s: %d %s", p.Path(), code, data)
		}
		// Parse the bundle by hand: 2-byte big-endian length, then bytes.
		for j := 0; j < w; j++ {
			if len(data) < 2 {
				t.Fatalf("bundle %s truncated at entry %d", p.Path(), j)
			}
			l := int(data[0])<<8 | int(data[1])
			e := data[2 : 2+l]
			data = data[2+l:]
			if tlog.RecordHash(e) != leaves[b*256+j] {
				t.Fatalf("entry %d does not hash to its leaf", b*256+j)
			}
		}
		if len(data) != 0 {
			t.Fatalf("bundle %s has %d trailing bytes", p.Path(), len(data))
		}
	}
	// JSON inclusion proofs, for a spread of indexes, with x/mod CheckRecord.
	for _, i := range []int{0, want / 3, want / 2, want - 1} {
		code, b, _ := get(t, fmt.Sprintf("%s/v1/proof/inclusion?index=%d&size=%d", base, i, want))
		if code != 200 {
			t.Fatalf("inclusion %d: %d %s", i, code, b)
		}
		var p inclusionJSON
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatal(err)
		}
		if err := tlog.CheckRecord(tlog.RecordProof(toTLog(p.Proof)), tree.N, tree.Hash, int64(i), leaves[i]); err != nil {
			t.Fatalf("x/mod CheckRecord(%d in %d): %v", i, want, err)
		}
		// The same proof by leaf hash.
		code, b, _ = get(t, fmt.Sprintf("%s/v1/proof/inclusion?hash=%s&size=%d", base, urlB64(leaves[i][:]), want))
		var q inclusionJSON
		if code != 200 || json.Unmarshal(b, &q) != nil || q.Index != uint64(i) || len(q.Proof) != len(p.Proof) {
			t.Fatalf("inclusion by hash of %d: %d %s", i, code, b)
		}
	}
	return tree
}

func urlB64(b []byte) string {
	return strings.NewReplacer("+", "%2B", "/", "%2F", "=", "%3D").Replace(base64.StdEncoding.EncodeToString(b))
}

func TestHTTPInteropEdgeSizes(t *testing.T) {
	tl, srv := newTestServer(t, log.Config{})
	var trees []tlog.Tree
	trees = append(trees, checkServedLog(t, srv.URL, tl.vkey, 0))
	total := 0
	for _, size := range []int{1, 255, 256, 257, 511, 513, 3000, 65536 + 7} {
		for total < size {
			n := min(size-total, 2000)
			code, b := post(t, srv.URL, testToken, eventLines(total, n))
			if code != 200 {
				t.Fatalf("POST %d events: %d %s", n, code, b)
			}
			total += n
		}
		trees = append(trees, checkServedLog(t, srv.URL, tl.vkey, size))
	}
	// Every checkpoint seen is consistent with every later one (x/mod CheckTree).
	last := trees[len(trees)-1]
	for _, old := range trees[1:] {
		code, b, _ := get(t, fmt.Sprintf("%s/v1/proof/consistency?from=%d&to=%d", srv.URL, old.N, last.N))
		if code != 200 {
			t.Fatalf("consistency: %d %s", code, b)
		}
		var p struct{ Proof [][]byte }
		json.Unmarshal(b, &p)
		if err := tlog.CheckTree(toTLog(p.Proof), last.N, last.Hash, old.N, old.Hash); err != nil {
			t.Fatalf("x/mod CheckTree(%d -> %d): %v", old.N, last.N, err)
		}
	}
}

func TestHTTPAppendReceiptsAndIdempotence(t *testing.T) {
	tl, srv := newTestServer(t, log.Config{})
	body := eventLines(0, 20)
	code, b := post(t, srv.URL, testToken, body)
	if code != 200 {
		t.Fatalf("POST: %d %s", code, b)
	}
	rs, err := decodeReceipts(b)
	if err != nil || len(rs) != 20 {
		t.Fatalf("%d receipts, %v", len(rs), err)
	}
	for i, r := range rs {
		if r.Index != uint64(i) {
			t.Fatalf("receipt %d has index %d", i, r.Index)
		}
		checkReceipt(t, tl.vkey, r)
	}
	// The same body again: the same indexes, the tree does not grow.
	code, b = post(t, srv.URL, testToken, body)
	again, _ := decodeReceipts(b)
	if code != 200 || len(again) != 20 {
		t.Fatalf("second POST: %d %s", code, b)
	}
	for i := range again {
		if again[i].Index != rs[i].Index || !bytes.Equal(again[i].Entry, rs[i].Entry) {
			t.Fatalf("resubmitted event %d: index %d, want %d", i, again[i].Index, rs[i].Index)
		}
	}
	if got := tl.Checkpoint().Size; got != 20 {
		t.Fatalf("size %d after resubmitting, want 20", got)
	}
	// A single pretty-printed event is accepted too; its event is shown
	// byte for byte (no HTML escaping of <, > and &).
	ev := testEvent(99)
	ev.Note = "a<b & c>d"
	var pretty bytes.Buffer
	json.Indent(&pretty, ev.Canonical(), "", "  ")
	code, b = post(t, srv.URL, testToken, pretty.Bytes())
	one, _ := decodeReceipts(b)
	if code != 200 || len(one) != 1 || one[0].Index != 20 {
		t.Fatalf("pretty single event: %d %s", code, b)
	}
	checkReceipt(t, tl.vkey, one[0])
}

func decodeReceipts(b []byte) ([]verify.Receipt, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	var out []verify.Receipt
	for dec.More() {
		var r verify.Receipt
		if err := dec.Decode(&r); err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

func TestHTTPBadInputChangesNothing(t *testing.T) {
	tl, srv := newTestServer(t, log.Config{})
	if code, b := post(t, srv.URL, testToken, eventLines(0, 3)); code != 200 {
		t.Fatalf("setup: %d %s", code, b)
	}
	before := tl.Checkpoint()
	good := string(testEvent(50).Canonical())
	cases := []struct {
		name, token, body string
		code              int
		errHas            string
	}{
		{"no token", "", good, 401, "token"},
		{"wrong token", "not-the-token-at-all", good, 401, "token"},
		{"wrong token same length", strings.Repeat("x", len(testToken)), good, 401, "token"},
		{"unknown field", testToken, strings.Replace(good, `"actor"`, `"colour":"red","actor"`, 1), 400, `"colour"`},
		{"missing to on transfer", testToken, strings.Replace(good, "collected", "transferred", 1), 400, `"to"`},
		{"logged set by client", testToken, strings.Replace(good, `"actor"`, `"logged":"2026-11-01T12:00:00Z","actor"`, 1), 400, `"logged"`},
		{"bad line in a batch", testToken, good + "\n" + `{"sample":"x"}` + "\n", 400, "line 2"},
		{"empty", testToken, "", 400, "empty"},
		// Fewer events than the limit (lines padded with white space), so
		// that the size limit is the one hit.
		{"oversized body", testToken, strings.Repeat(good+strings.Repeat(" ", 4000)+"\n", (1<<20)/4000+2), 413, "larger than"},
		{"too many events", testToken, string(eventLines(100, 2001)), 413, "more than 2000"},
		{"pretty event with a bad field", testToken, strings.Replace(strings.Replace(good, ",", ",\n  ", -1), `"EU"`, `"eu"`, 1), 400, `"region"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, b := post(t, srv.URL, c.token, []byte(c.body))
			var e struct{ Error string }
			if json.Unmarshal(b, &e) != nil || e.Error == "" {
				t.Fatalf("error body %q is not {\"error\": …}", b)
			}
			if code != c.code || !strings.Contains(e.Error, c.errHas) {
				t.Fatalf("got %d %q, want %d containing %q", code, e.Error, c.code, c.errHas)
			}
			if got := tl.Checkpoint(); got.Size != before.Size || string(got.Note) != string(before.Note) {
				t.Fatalf("bad request changed the log: size %d -> %d", before.Size, got.Size)
			}
		})
	}
}

func TestHTTPReadErrors(t *testing.T) {
	_, srv := newTestServer(t, log.Config{})
	post(t, srv.URL, testToken, eventLines(0, 300))
	cases := []struct {
		path string
		code int
	}{
		{"/v1/entries/299", 200},
		{"/v1/entries/300", 404},
		{"/v1/entries/01", 400},
		{"/v1/entries/-1", 400},
		{"/v1/samples/s-000007", 200},
		{"/v1/samples/nope", 404},
		{"/v1/samples/bad%20id", 400},
		{"/v1/proof/inclusion?index=5&size=300", 200},
		{"/v1/proof/inclusion?index=5&size=301", 400},
		{"/v1/proof/inclusion?index=300&size=300", 404},
		{"/v1/proof/inclusion?index=x&size=3", 400},
		{"/v1/proof/inclusion?size=3", 400},
		{"/v1/proof/inclusion?hash=AAAA&size=3", 400},
		{"/v1/proof/inclusion?hash=" + urlB64(make([]byte, 32)), 404},
		{"/v1/proof/consistency?from=3&to=300", 200},
		{"/v1/proof/consistency?from=0&to=300", 200},
		{"/v1/proof/consistency?from=301&to=300", 400},
		{"/v1/proof/consistency?from=3&to=301", 400},
		{"/tile/0/000", 200},
		{"/tile/0/001.p/44", 200},
		{"/tile/0/001.p/45", 404},
		{"/tile/0/001", 404},
		{"/tile/1/000.p/1", 200},
		{"/tile/1/000.p/2", 404},
		{"/tile/entries/001.p/44", 200},
		{"/tile/entries/001", 404},
		{"/tile/0/1", 400},
		{"/tile/0/000.p/0", 400},
		{"/tile/0/000.p/256", 400},
		{"/tile/entries/x072/x057/x594/x037/x927/935", 404}, // index*256 overflows uint64
		{"/tile/2/x072/x057/x594/x037/x927/935", 404},
		{"/v1/stats", 200},
		{"/healthz", 200},
		{"/nothing-here", 404},
	}
	for _, c := range cases {
		code, b, hdr := get(t, srv.URL+c.path)
		if code != c.code {
			t.Errorf("GET %s = %d %s, want %d", c.path, code, b, c.code)
			continue
		}
		if code != 200 && !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
			t.Errorf("GET %s: error with Content-Type %q", c.path, hdr.Get("Content-Type"))
		}
	}
	// A wrong method on an API path is 405 with Allow.
	resp, err := http.Post(srv.URL+"/checkpoint", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET" {
		t.Errorf("POST /checkpoint = %d Allow %q, want 405 GET", resp.StatusCode, resp.Header.Get("Allow"))
	}
	// Cache headers of DESIGN.md.
	_, _, hdr := get(t, srv.URL+"/tile/0/000")
	if got := hdr.Get("Cache-Control"); got != "public, max-age=31536000, immutable" {
		t.Errorf("full tile Cache-Control %q", got)
	}
	_, _, hdr = get(t, srv.URL+"/checkpoint")
	if got := hdr.Get("Cache-Control"); got != "no-cache" {
		t.Errorf("checkpoint Cache-Control %q", got)
	}
}

func TestHTTPStatsAndSample(t *testing.T) {
	_, srv := newTestServer(t, log.Config{})
	evs := testEvents(0, 4)
	evs[1].Region, evs[2].Location = "US", "us-nyc-1"
	evs[3].Sample = evs[0].Sample
	evs[3].Action, evs[3].To = "transferred", "us-nyc-1"
	var body bytes.Buffer
	for _, ev := range evs {
		body.Write(ev.Canonical())
		body.WriteByte('\n')
	}
	if code, b := post(t, srv.URL, testToken, body.Bytes()); code != 200 {
		t.Fatalf("POST: %d %s", code, b)
	}
	// The counts are kept in the background: counted reaches size.
	var st struct {
		Size    uint64
		Counted uint64
		Counts  map[string]map[string]uint64
	}
	var b []byte
	for deadline := time.Now().Add(10 * time.Second); st.Counted < 4 && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		_, b, _ = get(t, srv.URL+"/v1/stats")
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatalf("/v1/stats: %v: %s", err, b)
		}
	}
	want := map[string]map[string]uint64{"EU": {"ch-zrh-1": 2, "us-nyc-1": 1}, "US": {"ch-zrh-1": 1}}
	if fmt.Sprint(st.Counts) != fmt.Sprint(want) || st.Size != 4 {
		t.Fatalf("stats %s, want counts %v", b, want)
	}
	_, b, _ = get(t, srv.URL+"/v1/samples/"+evs[0].Sample)
	var chain struct{ Events []EntryJSON }
	json.Unmarshal(b, &chain)
	if len(chain.Events) != 2 || chain.Events[0].Index != 0 || chain.Events[1].Index != 3 {
		t.Fatalf("sample chain %s", b)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	tl := newTestLog(t, log.Config{Metrics: log.NewMetrics(reg)})
	srv := httptest.NewServer(tl.Handler(Config{Tokens: []string{testToken}, Metrics: NewMetrics(reg), Gatherer: reg}))
	defer srv.Close()
	post(t, srv.URL, testToken, eventLines(0, 5))
	post(t, srv.URL, testToken, eventLines(0, 5)) // duplicates: not appended again
	post(t, srv.URL, "", eventLines(5, 1))        // 401
	_, b, _ := get(t, srv.URL+"/metrics")
	for _, want := range []string{
		"custody_events_appended_total 5\n",
		"custody_tree_size 5\n",
		"custody_batch_size_count 1\n",
		`custody_http_requests_total{code="200",route="POST /v1/events"} 2` + "\n",
		`custody_http_requests_total{code="401",route="POST /v1/events"} 1` + "\n",
		"custody_commit_seconds_count 1\n",
		"custody_integration_seconds_count 2\n",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// hungStore's Append hangs until its context is done.
type hungStore struct{ store.Store }

func (h hungStore) Append(ctx context.Context, b store.Batch) error {
	<-ctx.Done()
	return fmt.Errorf("injected: hung: %w", ctx.Err())
}

// TestCommitTimeoutAnswers503: a write whose commit times out in the store
// is answered like any storage failure (503, Retry-After: 1, "storage
// unavailable"), not as a request the client cancelled, although the
// error's chain holds context.DeadlineExceeded.
func TestCommitTimeoutAnswers503(t *testing.T) {
	tl := newBareLog(t)
	tl.open(t, log.Config{Store: hungStore{tl.st}, CommitTimeout: 20 * time.Millisecond})
	srv := httptest.NewServer(tl.Handler(Config{Tokens: []string{testToken}}))
	defer srv.Close()
	req, _ := http.NewRequest("POST", srv.URL+"/v1/events", bytes.NewReader(eventLines(0, 2)))
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" || !strings.Contains(string(b), "storage unavailable") {
		t.Fatalf("POST with a hung store: %d, Retry-After %q, %s; want 503, 1, storage unavailable", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
}
