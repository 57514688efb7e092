package dashboard

import (
	"encoding/json"
	"os"
	"path/filepath"
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
	MapRoot   string   `json:"mapRoot"`   // checkpoints: the parsed index line
	CheckSize string   `json:"checkSize"` // checkpoints: the parsed size
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
    const r = {name: v.name, ok: false, indexes: [], accepted: [], flipped: 0};
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
// of every valid proof, and reads the same map roots from the checkpoint
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
