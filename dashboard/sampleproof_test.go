package dashboard

import (
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/custodylog/custody/internal/browsertest"
)

// vectorResult is what the page's JS verifier says of one test vector.
type vectorResult struct {
	Name      string   `json:"name"`
	OK        bool     `json:"ok"`
	Absent    bool     `json:"absent"`
	ListSize  string   `json:"listSize"`
	ListRoot  string   `json:"listRoot"`
	Indexes   []string `json:"indexes"`
	Error     string   `json:"error"`
	Kind      string   `json:"kind"`
	Accepted  []int    `json:"accepted"` // byte positions whose flip was accepted
	Flipped   int      `json:"flipped"`
	Truncated []int    `json:"truncAccepted"` // prefix lengths not rejected as malformed
	MapRoot   string   `json:"mapRoot"`       // checkpoints: the parsed index line
	CheckSize string   `json:"checkSize"`     // checkpoints: the parsed size
}

// runVectorsJS verifies every proof of vectors.json with the browser's
// verifier (window.custodySampleProof) against the vector checkpoint of
// its size; for the valid ones, it also flips every byte of the proof in
// turn and records the flips the verifier accepted (there must be none).
const runVectorsJS = `(async () => {
  const V = JSON.parse(%s);
  const SP = window.custodySampleProof;
  const unhex = h => Uint8Array.from(h.match(/../g) || [], x => parseInt(x, 16));
  const hex = b => Array.from(b, x => x.toString(16).padStart(2, "0")).join("");
  const b64 = b => btoa(String.fromCharCode(...b));
  const cps = {};
  const out = [];
  for (const c of V.checkpoints) {
    const note = "vectors.test\n" + c.size + "\n" + b64(unhex(c.log_root)) + "\n" + c.extension_line + "\n";
    const cp = SP.checkpoint(note);
    cps[c.size] = cp;
    out.push({name: "checkpoint " + c.size, ok: true, mapRoot: hex(cp.mapRoot), checkSize: String(cp.size)});
  }
  for (const v of V.proofs) {
    const cp = cps[v.size];
    const req = {sample: v.sample, since: BigInt(v.since)};
    const data = unhex(v.proof);
    const r = {name: v.name, ok: false, indexes: [], accepted: [], flipped: 0, truncAccepted: []};
    try {
      const ch = await SP.verify(data, req, cp);
      r.ok = true; r.absent = ch.absent; r.listSize = String(ch.listSize); r.listRoot = ch.listRoot;
      r.indexes = ch.indexes.map(String);
    } catch (e) {
      r.error = e.message; r.kind = e.kind || "not a ProofError: " + e;
    }
    if (v.valid) {
      for (let i = 0; i < data.length; i++) {
        const bad = data.slice();
        bad[i] ^= 0x01;
        r.flipped++;
        try { await SP.verify(bad, req, cp); r.accepted.push(i); } catch (e) { if (!e.kind) r.accepted.push(-i - 1); }
      }
      // Every truncation is malformed.
      for (let k = 0; k < data.length; k++) {
        try { await SP.verify(data.subarray(0, k), req, cp); r.truncAccepted.push(k); } catch (e) { if (e.kind !== "malformed") r.truncAccepted.push(k); }
      }
    }
    out.push(r);
  }
  return out;
})()`

// goErrorKinds maps the vectors' Go error names to the JS verifier's
// ProofError kinds: the failing check must agree.
var goErrorKinds = map[string]string{
	"ErrDroppedEntry":     "dropped-entry",
	"ErrAddedEntry":       "added-entry",
	"ErrReorderedEntries": "reordered-entries",
	"ErrListRootMismatch": "list-root-mismatch",
	"ErrMapRootMismatch":  "map-root-mismatch",
	"ErrBadInclusion":     "bad-inclusion",
	"ErrWrongSize":        "wrong-size",
	"ErrMalformedProof":   "malformed",
}

// TestBrowserSampleProofVectors is the interop test of the dashboard's
// JavaScript verifier against the Go implementation: in headless Chromium
// it accepts every valid proof of sampleindex/testdata/vectors.json with
// the list size, list root and entry indexes Go's verification gives,
// rejects every invalid one at the same check, rejects every one-bit flip
// of every valid proof and every truncation (as malformed), and reads the same map roots from the checkpoint
// lines.
func TestBrowserSampleProofVectors(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "sampleindex", "testdata", "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vec struct {
		Checkpoints []struct {
			Size    uint64 `json:"size"`
			MapRoot string `json:"map_root"`
		} `json:"checkpoints"`
		Proofs []struct {
			Name     string   `json:"name"`
			Valid    bool     `json:"valid"`
			Kind     string   `json:"kind"`
			ListSize uint64   `json:"list_size"`
			ListRoot string   `json:"list_root"`
			Indexes  []uint64 `json:"indexes"`
			Error    string   `json:"error"`
		} `json:"proofs"`
	}
	if err := json.Unmarshal(raw, &vec); err != nil {
		t.Fatal(err)
	}
	s := startSite(t, nil, false)
	b := browsertest.New(t)
	b.Do(t, chromedp.Navigate(s.srv.URL+"/sample"), chromedp.WaitReady(chromedp.CSS(`body`)))
	quoted, _ := json.Marshal(string(raw))
	res := browsertest.Value(t, b, chromedp.Evaluate[[]vectorResult](strings.Replace(runVectorsJS, "%s", string(quoted), 1), chromedp.EvalAwaitPromise))
	b.NoErrors(t)

	if len(res) != len(vec.Checkpoints)+len(vec.Proofs) {
		t.Fatalf("the browser returned %d results for %d checkpoints and %d proofs", len(res), len(vec.Checkpoints), len(vec.Proofs))
	}
	for i, c := range vec.Checkpoints {
		r := res[i]
		if r.MapRoot != c.MapRoot || r.CheckSize != strconv64(c.Size) {
			t.Errorf("checkpoint %d: the browser reads size %s, map root %s; want %d, %s", c.Size, r.CheckSize, r.MapRoot, c.Size, c.MapRoot)
		}
	}
	valid, invalid := 0, 0
	for i, v := range vec.Proofs {
		r := res[len(vec.Checkpoints)+i]
		if r.Name != v.Name {
			t.Fatalf("result %d is for %q, want %q", i, r.Name, v.Name)
		}
		if !v.Valid {
			invalid++
			if r.OK {
				t.Errorf("%s: the browser accepted an invalid proof (Go: %s)", v.Name, v.Error)
			} else if want := goErrorKinds[v.Error]; want == "" || r.Kind != want {
				t.Errorf("%s: the browser rejects it with %q (%s), Go with %s (want kind %q)", v.Name, r.Kind, r.Error, v.Error, want)
			}
			continue
		}
		valid++
		if !r.OK {
			t.Errorf("%s: the browser rejected a valid proof: %s", v.Name, r.Error)
			continue
		}
		var want []string
		for _, x := range v.Indexes {
			want = append(want, strconv64(x))
		}
		if r.ListSize != strconv64(v.ListSize) || r.Absent != (v.ListSize == 0) || !slices.Equal(r.Indexes, want) {
			t.Errorf("%s: the browser gives list size %s, absent %v, indexes %v; Go gives %d, %v", v.Name, r.ListSize, r.Absent, r.Indexes, v.ListSize, want)
		}
		if v.ListSize > 0 && r.ListRoot != v.ListRoot {
			t.Errorf("%s: the browser gives list root %s, Go %s", v.Name, r.ListRoot, v.ListRoot)
		}
		if len(r.Truncated) > 0 {
			t.Errorf("%s: prefixes of lengths %v were not rejected as malformed", v.Name, r.Truncated)
		}
		if r.Flipped == 0 || len(r.Accepted) > 0 {
			t.Errorf("%s: of %d one-bit flips the browser accepted (or threw a non-ProofError at, negative) byte positions %v", v.Name, r.Flipped, r.Accepted)
		}
	}
	if valid < 8 || invalid < 8 {
		t.Fatalf("only %d valid and %d invalid vectors", valid, invalid)
	}
}

func strconv64(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// tamperProxy serves the site through a front that changes one bit of the
// sample proof the sample page hands to the browser (the byte at
// at(len(proof))); everything else passes unchanged.
func tamperProxy(t *testing.T, s *site, at func(n int) int) *httptest.Server {
	t.Helper()
	re := regexp.MustCompile(`data-sample-proof="([^"]*)"`)
	p := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := http.Get(s.srv.URL + r.URL.RequestURI())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		if r.URL.Path == "/sample" {
			body = re.ReplaceAllFunc(body, func(m []byte) []byte {
				b64 := html.UnescapeString(string(re.FindSubmatch(m)[1]))
				proof, err := base64.StdEncoding.DecodeString(b64)
				if err != nil || len(proof) == 0 {
					t.Errorf("tamper proxy: the page's data-proof is not base64: %v", err)
					return m
				}
				proof[at(len(proof))] ^= 0x01
				return []byte(`data-sample-proof="` + html.EscapeString(base64.StdEncoding.EncodeToString(proof)) + `"`)
			})
		}
		for k, v := range resp.Header {
			if k != "Content-Length" {
				w.Header()[k] = v
			}
		}
		w.WriteHeader(resp.StatusCode)
		w.Write(body)
	}))
	t.Cleanup(p.Close)
	return p
}

// indexCheck loads a sample page and waits for the browser's check of the
// sample proof to end; it returns the server's claim, the browser's
// verdict (its data-state) and text, and the number of events it proved.
func indexCheck(t *testing.T, b *browsertest.Browser, url string) (claim, state, text, events string) {
	t.Helper()
	b.Do(t, chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.CSS(`#index-browser-check[data-state="ok"], #index-browser-check[data-state="failed"]`)))
	claim = browsertest.Value(t, b, chromedp.Text(chromedp.CSS(`[data-testid="index-claim"]`)))
	state = browsertest.Value(t, b, chromedp.AttributeValue(chromedp.ID("index-browser-check"), "data-state")).Value
	text = browsertest.Value(t, b, chromedp.Text(chromedp.ID("index-browser-check")))
	events = browsertest.Value(t, b, chromedp.AttributeValue(chromedp.ID("index-browser-check"), "data-events")).Value
	return
}

// TestBrowserSampleComplete runs a log that keeps the sample index: a
// sample with several events is "complete as of checkpoint N", verified
// by the server and again by the browser; an unknown sample shows a
// verified absence; a proof altered by one bit on its way to the browser
// is flagged by the browser (the server's claim, made on the real proof,
// still stands: the browser does not take its word).
func TestBrowserSampleComplete(t *testing.T) {
	s := newSite(t, nil)
	evs := s.workload(10, true)
	s.add(t, evs...)
	n := 0
	for _, ev := range evs {
		if ev.Sample == "smp-EU-000" {
			n++
		}
	}
	if n < 3 {
		t.Fatalf("the workload has %d events of smp-EU-000, want several", n)
	}
	size := num(s.log.Checkpoint().Size)
	b := browsertest.New(t)

	claim, state, text, events := indexCheck(t, b, s.srv.URL+"/sample?id=smp-EU-000")
	b.Screenshot(t, "sample-complete")
	b.NoErrors(t)
	if !strings.Contains(claim, "Complete as of checkpoint "+size) {
		t.Errorf("the server's claim is %q, want \"Complete as of checkpoint %s\"", claim, size)
	}
	if state != "ok" || !strings.Contains(text, "complete (verified in your browser") || events != strconv64(uint64(n)) {
		t.Errorf("the browser's check: state %q, %q, %s events; want ok, complete, %d", state, text, events, n)
	}

	claim, state, text, events = indexCheck(t, b, s.srv.URL+"/sample?id=smp-never-logged")
	b.Screenshot(t, "sample-absent")
	if !strings.Contains(claim, "Never logged as of checkpoint "+size+" (verified absence)") {
		t.Errorf("the server's claim for an unknown sample is %q", claim)
	}
	if state != "ok" || !strings.Contains(text, "never logged as of checkpoint "+strings.ReplaceAll(size, ",", "")) || events != "0" {
		t.Errorf("the browser's check of the absence: state %q, %q, %s events", state, text, events)
	}

	// One bit of an entry's bytes (the middle of the proof), or of the
	// deepest map sibling (10 bytes before the end of a membership proof:
	// the end is the kind byte; of an absence proof, the other key's list
	// root).
	for _, at := range []func(n int) int{func(n int) int { return n / 2 }, func(n int) int { return n - 10 }} {
		proxy := tamperProxy(t, s, at)
		for _, id := range []string{"smp-EU-000", "smp-never-logged"} {
			claim, state, text, _ = indexCheck(t, b, proxy.URL+"/sample?id="+id)
			if state != "failed" || !strings.Contains(text, "FAILED") {
				t.Errorf("%s, byte %d of the proof changed: the browser says %q (state %q), want it flagged", id, at(1000), text, state)
			}
			if !strings.Contains(claim, "as of checkpoint "+size) {
				t.Errorf("%s: through the proxy the server's claim is %q", id, claim)
			}
			t.Logf("%s, byte at(1000)=%d changed: %s", id, at(1000), text)
		}
	}
	b.Screenshot(t, "sample-tampered")
}

// TestSampleClaimWithoutIndex: a log that keeps no sample index makes no
// completeness claim and hands the browser no proof; a log that keeps one
// says so in the page itself, without JavaScript.
func TestSampleClaimWithoutIndex(t *testing.T) {
	for _, index := range []bool{false, true} {
		s := startSiteIndex(t, nil, false, index)
		s.add(t, s.workload(3, false)...)
		size := num(s.log.Checkpoint().Size)
		for _, c := range []struct {
			id, claim string
			status    int
		}{
			{"smp-US-001", "Complete as of checkpoint " + size, 200},
			{"smp-never-logged", "Never logged as of checkpoint " + size + " (verified absence)", 404},
		} {
			status, body, _ := s.get(t, "/sample?id="+c.id)
			if status != c.status {
				t.Fatalf("index %v: GET /sample?id=%s = %d, want %d", index, c.id, status, c.status)
			}
			has := strings.Contains(body, c.claim)
			hasSection := strings.Contains(body, `id="sample-index"`)
			if has != index || hasSection != index || strings.Contains(body, "Completeness not proven") {
				t.Errorf("index %v: %s: claim %q shown %v, proof section %v", index, c.id, c.claim, has, hasSection)
			}
		}
	}
}

// TestSampleProofTooLargeForPage: a proof above maxBrowserProof is
// verified by the server (the claim stands) but not put in the page; the
// page says how to check it instead.
func TestSampleProofTooLargeForPage(t *testing.T) {
	s := startSite(t, nil, false)
	s.add(t, s.workload(3, false)...)
	defer func(n int) { maxBrowserProof = n }(maxBrowserProof)
	maxBrowserProof = 100
	status, body, _ := s.get(t, "/sample?id=smp-US-001")
	if status != 200 || !strings.Contains(body, "Complete as of checkpoint") {
		t.Fatalf("GET /sample = %d, no completeness claim:\n%s", status, body)
	}
	if !strings.Contains(body, `data-sample-proof=""`) || strings.Contains(body, `id="index-browser-check"`) || !strings.Contains(body, `data-testid="index-too-large"`) {
		t.Errorf("a proof above maxBrowserProof is in the page, or the page does not say why it is not:\n%s", body)
	}
}

// TestBrowserCheckpointLine: the browser reads the map root only from
// exactly one well-formed custody-sample-index line
// (sampleindex.FindExtension's rule).
func TestBrowserCheckpointLine(t *testing.T) {
	s := startSite(t, nil, false)
	b := browsertest.New(t)
	b.Do(t, chromedp.Navigate(s.srv.URL+"/sample"), chromedp.WaitReady(chromedp.CSS(`body`)))
	const root = "Zd4eLE0LNxt7VopwBv9kOqgtxXgy4agAIjh05wVGlIs="
	head := "o.test\n30\nIsd/LXsow1pu9bDKXltBusk1dDFpKTH0eR4efs7wZpI=\n"
	for _, c := range []struct {
		name, ext string
		ok        bool
	}{
		{"one line", "custody-sample-index " + root + "\n", true},
		{"with another extension", "other-ext 1\ncustody-sample-index " + root + "\n", true},
		{"none", "", true},
		{"two lines", "custody-sample-index " + root + "\ncustody-sample-index " + root + "\n", false},
		{"keyword alone", "custody-sample-index\n", false},
		{"not canonical", "custody-sample-index " + root[:42] + "t=\n", false},
		{"trailing space", "custody-sample-index " + root + " \n", false},
		{"two spaces", "custody-sample-index  " + root + "\n", false},
		{"short", "custody-sample-index " + root[4:] + "\n", false},
	} {
		note, _ := json.Marshal(head + c.ext + "\n\u2014 o.test sig\n")
		js := `(() => { try { const cp = window.custodySampleProof.checkpoint(` + string(note) + `);
			return cp.mapRoot === null ? "none" : btoa(String.fromCharCode(...cp.mapRoot)); } catch (e) { return "error " + e.kind; } })()`
		got := browsertest.Value(t, b, chromedp.Evaluate[string](js))
		switch {
		case c.ok && c.ext == "" && got != "none", c.ok && c.ext != "" && got != root:
			t.Errorf("%s: the browser reads %q, want %s", c.name, got, root)
		case !c.ok && got != "error bad-checkpoint":
			t.Errorf("%s: the browser reads %q, want it rejected", c.name, got)
		}
	}
	b.NoErrors(t)
}
