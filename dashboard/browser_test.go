package dashboard

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/custodylog/custody/internal/browsertest"
)

// TestBrowserDashboard loads the front page in Chromium: no console errors;
// the chart's numbers, as rendered, equal the log's counts; allowed cells
// are drawn apart from the rest; the injected violations appear in the
// findings panel; the page is keyboard-navigable.
func TestBrowserDashboard(t *testing.T) {
	s := newSite(t, testPolicy(t))
	s.add(t, s.workload(40, true)...)
	b := browsertest.New(t)

	b.Do(t, chromedp.Navigate(s.srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`#chart svg`)))
	cells := browsertest.Value(t, b, chromedp.Evaluate[[][]string](`Array.from(document.querySelectorAll("svg.chart g.cell")).map(g =>
		[g.dataset.region, g.dataset.location, g.querySelector("text").textContent, getComputedStyle(g.querySelector("rect")).stroke])`))
	findings := browsertest.Value(t, b, chromedp.Evaluate[[][]string](`Array.from(document.querySelectorAll("table.findings tbody tr")).map(r =>
		Array.from(r.cells).map(c => c.innerText))`))
	b.Screenshot(t, "dashboard")
	b.NoErrors(t)

	counts := s.stats.Counts()
	p := testPolicy(t)
	if len(cells) != len(p.Regions)*len(p.Locations) {
		t.Fatalf("%d cells rendered, want %d", len(cells), len(p.Regions)*len(p.Locations))
	}
	strokes := map[string]map[string]bool{} // allowed or not → border colours
	for _, c := range cells {
		region, loc, text, stroke := c[0], c[1], c[2], c[3]
		shown, err := strconv.ParseUint(strings.ReplaceAll(strings.TrimPrefix(text, "✕ "), ",", ""), 10, 64)
		if err != nil {
			t.Fatalf("cell %s/%s shows %q, not a number", region, loc, text)
		}
		if shown != counts[region][loc] {
			t.Errorf("cell %s/%s shows %d, the log counts %d", region, loc, shown, counts[region][loc])
		}
		cls := "allowed"
		if !contains(p.Regions[region].Allowed, loc) {
			cls = "not-allowed"
		}
		if strokes[cls] == nil {
			strokes[cls] = map[string]bool{}
		}
		strokes[cls][stroke] = true
	}
	if len(strokes["allowed"]) == 0 || len(strokes["not-allowed"]) == 0 {
		t.Fatalf("border colours: %v", strokes)
	}
	for st := range strokes["allowed"] {
		if strokes["not-allowed"][st] {
			t.Errorf("allowed and not-allowed cells share the border colour %s", st)
		}
	}

	var kinds []string
	for _, f := range findings {
		kinds = append(kinds, f[1]+" "+f[2])
	}
	for _, want := range []string{"smp-EU-000 reroute", "smp-UK-000 continuity"} {
		if !contains(kinds, want) {
			t.Errorf("finding %q not in the panel; the panel has %q", want, kinds)
		}
	}

	// Keyboard: the first Tab reaches the skip link.
	b.Do(t, chromedp.KeyEvent(kb.Tab))
	if focus := browsertest.Value(t, b, chromedp.Evaluate[string](`document.activeElement.textContent`)); focus != "Skip to content" {
		t.Errorf("the first Tab focuses %q, want the skip link", focus)
	}
	// Every form control has a label.
	if n := browsertest.Value(t, b, chromedp.Evaluate[int](`Array.from(document.querySelectorAll("input")).filter(i => i.labels.length === 0).length`)); n != 0 {
		t.Errorf("%d inputs without a label", n)
	}
}

// TestBrowserSampleLookup types a sample ID into the search box: the page
// shows its whole chain, each proof verified by the server and re-checked
// by the browser's own SHA-256.
func TestBrowserSampleLookup(t *testing.T) {
	s := newSite(t, testPolicy(t))
	evs := s.workload(10, true)
	s.add(t, evs...)
	b := browsertest.New(t)

	b.Do(t,
		chromedp.Navigate(s.srv.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("sample-id")),
		chromedp.SendKeys(chromedp.ID("sample-id"), "smp-EU-000"),
		chromedp.Submit(chromedp.ID("sample-id")),
		chromedp.WaitVisible(chromedp.CSS(`ol.chain`)),
		chromedp.WaitVisible(chromedp.CSS(`#browser-check[data-state="ok"], #browser-check[data-state="failed"]`)),
	)
	chain := browsertest.Value(t, b, chromedp.Evaluate[[][]string](`Array.from(document.querySelectorAll("ol.chain > li")).map(li =>
		[li.dataset.action, li.dataset.location, li.dataset.to, li.querySelector(".proof-status").innerText, li.querySelector(".browser-status").dataset.state])`))
	summary := browsertest.Value(t, b, chromedp.Text(chromedp.ID("browser-check")))
	state := browsertest.Value(t, b, chromedp.AttributeValue(chromedp.ID("browser-check"), "data-state")).Value
	b.Screenshot(t, "sample")
	b.NoErrors(t)

	var want [][2]string
	for _, ev := range evs {
		if ev.Sample == "smp-EU-000" {
			want = append(want, [2]string{string(ev.Action), ev.Location})
		}
	}
	if len(chain) != len(want) {
		t.Fatalf("the chain shows %d events, want %d", len(chain), len(want))
	}
	size := num(s.log.Checkpoint().Size)
	for i, c := range chain {
		if c[0] != want[i][0] || c[1] != want[i][1] {
			t.Errorf("event %d is %s at %s, want %s at %s", i, c[0], c[1], want[i][0], want[i][1])
		}
		if !strings.Contains(c[3], "included in the checkpoint of size "+size) {
			t.Errorf("event %d proof status %q", i, c[3])
		}
		if c[4] != "ok" {
			t.Errorf("event %d: the browser's own check says %q", i, c[4])
		}
	}
	if state != "ok" || !strings.Contains(summary, fmt.Sprintf("all %d proofs", len(want))) {
		t.Errorf("browser check summary %q (state %q)", summary, state)
	}
}

// TestBrowserCatchesBadProof alters a proof in the page: the browser's own
// check must fail it (the script is not a rubber stamp of the server's
// verdict).
func TestBrowserCatchesBadProof(t *testing.T) {
	s := newSite(t, nil)
	s.add(t, s.workload(3, false)...)
	b := browsertest.New(t)
	b.Do(t,
		chromedp.Navigate(s.srv.URL+"/sample?id=smp-US-001"),
		chromedp.WaitVisible(chromedp.CSS(`#browser-check[data-state="ok"]`)),
		// Flip one hex digit of the first event's first proof hash, then
		// run the check again.
		chromedp.Evaluate[chromedp.Void](`(() => { const el = document.querySelector("div.proof"); const p = el.dataset.proof;
			el.dataset.proof = (p[0] === "0" ? "1" : "0") + p.slice(1); document.getElementById("browser-check").dataset.state = "pending"; })()`),
		chromedp.Evaluate[chromedp.Void](`(() => { const s = document.createElement("script"); s.src = "/static/verify.js?again"; document.body.appendChild(s); })()`),
		chromedp.WaitVisible(chromedp.CSS(`#browser-check[data-state="failed"]`)),
	)
	states := browsertest.Value(t, b, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll(".browser-status")).map(e => e.dataset.state)`))
	if len(states) < 2 || states[0] != "failed" {
		t.Fatalf("browser states %q: the altered first proof is not failed", states)
	}
	for i, st := range states[1:] {
		if st != "ok" {
			t.Errorf("untouched proof %d: browser state %q", i+1, st)
		}
	}
}

// TestBrowserWithoutJavaScript checks the basic view is complete with
// scripts disabled: the chart, the newest events and the server-verified
// chain are all there.
func TestBrowserWithoutJavaScript(t *testing.T) {
	s := newSite(t, testPolicy(t))
	s.add(t, s.workload(3, true)...)
	b := browsertest.New(t)
	// Load with scripts off; turn them on only to read the DOM (a page's
	// script tags do not run retroactively).
	b.Do(t, browsertest.Scripts(false), chromedp.Navigate(s.srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`#chart svg`)), browsertest.Scripts(true))
	ncells := browsertest.Value(t, b, chromedp.Evaluate[int](`document.querySelectorAll("svg.chart g.cell").length`))
	nrecent := browsertest.Value(t, b, chromedp.Evaluate[int](`document.querySelectorAll("table.events tbody tr").length`))
	b.Do(t, browsertest.Scripts(false), chromedp.Navigate(s.srv.URL+"/sample?id=smp-EU-000"), chromedp.WaitVisible(chromedp.CSS(`ol.chain`)), browsertest.Scripts(true))
	nincluded := browsertest.Value(t, b, chromedp.Evaluate[int](`document.querySelectorAll('ol.chain > li[data-included="true"]').length`))
	pending := browsertest.Value(t, b, chromedp.AttributeValue(chromedp.ID("browser-check"), "data-state")).Value
	indexPending := browsertest.Value(t, b, chromedp.AttributeValue(chromedp.ID("index-browser-check"), "data-state")).Value
	claim := browsertest.Value(t, b, chromedp.Text(chromedp.CSS(`[data-testid="index-claim"]`)))
	b.Screenshot(t, "sample-nojs")
	if ncells != 24 || nrecent != DefaultRecent || nincluded != 7 {
		t.Errorf("without JavaScript: %d cells, %d recent events, %d verified chain events; want 24, %d, 7", ncells, nrecent, nincluded, DefaultRecent)
	}
	if pending != "pending" || indexPending != "pending" {
		t.Errorf("with scripts off the browser checks ran anyway (states %q, %q)", pending, indexPending)
	}
	if !strings.Contains(claim, "Complete as of checkpoint "+num(s.log.Checkpoint().Size)) {
		t.Errorf("without JavaScript the completeness claim is %q", claim)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
