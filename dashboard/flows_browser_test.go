package dashboard

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/custodylog/custody/activity"
	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/internal/browsertest"
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

// flowEdgesJS reads the diagram's transfer edges as rendered: region,
// from, to, the title, whether the edge has the forbidden class, its
// path's computed dash pattern, its label and its link.
const flowEdgesJS = `Array.from(document.querySelectorAll("svg.flows a.edge.transfer")).map(a => [
	a.dataset.region, a.dataset.from, a.dataset.to, a.querySelector("title").textContent,
	String(a.classList.contains("forbidden")), getComputedStyle(a.querySelector("path")).strokeDasharray,
	(a.querySelector("text.label") || {textContent: ""}).textContent, a.getAttribute("href")])`

// flowRowsJS reads the flows table as rendered: each row's cells' text.
const flowRowsJS = `Array.from(document.querySelectorAll("table.flows tbody tr")).map(r => Array.from(r.cells).map(c => c.innerText))`

var titleCountRE = regexp.MustCompile(`^([A-Z]+|\(other\)): (\S+) → (\S+), ([0-9,]+) transfers?(, forbidden)?$`)

// TestBrowserFlows loads /flows in Chromium: the diagram's numbers, as
// rendered, equal the transfers counted from the log's entries and those
// of custody audit (audit.Audit over HTTP, AuditReport.Flows); the
// workload's reroutes by transfer are drawn as forbidden (dashed, ✕, the
// title says so) and only they; the table has the same numbers and says
// forbidden in text; the accessibility tree names every flow link by its
// flow; no console errors; Tab reaches every flow link of the
// diagram and of the table, each drawn with a focus outline; Enter on a
// forbidden flow lists its samples. Saves a screenshot (and docs/flows.png
// with CUSTODY_SCREENSHOTS=docs).
func TestBrowserFlows(t *testing.T) {
	p := testPolicy(t)
	s := flowSite(t, p)
	s.add(t, flowWorkload(s, 8)...)
	want, _, _ := logFlows(t, s)
	// The independent account: custody audit's flows, from the log it
	// downloads and verifies over HTTP, equal the log's entries' (and so,
	// below, the diagram's).
	c := verify.NewClient(verify.NewHTTPSource(s.srv.URL, nil), testOrigin, note.VerifierList(s.dash.cfg.Verifier), nil)
	rep, _, err := audit.Audit(context.Background(), c, audit.AuditOptions{Policy: p, NoState: true})
	if err != nil {
		t.Fatal(err)
	}
	audited := map[activity.Edge]uint64{}
	for _, f := range rep.Flows {
		audited[f.Edge] = f.Events
	}
	if !maps.Equal(audited, want) {
		t.Fatalf("the audit's flows %v differ from the log's %v", audited, want)
	}
	b := browsertest.New(t)

	b.Do(t, chromedp.Navigate(s.srv.URL+"/flows"), chromedp.WaitVisible(chromedp.CSS(`svg.flows`)))
	edges := browsertest.Value(t, b, chromedp.Evaluate[[][]string](flowEdgesJS))
	rows := browsertest.Value(t, b, chromedp.Evaluate[[][]string](flowRowsJS))
	summary := browsertest.Value(t, b, chromedp.Text(chromedp.CSS(`[data-testid="forbidden-summary"]`)))
	b.Screenshot(t, "flows")
	if os.Getenv("CUSTODY_SCREENSHOTS") == "docs" {
		png := browsertest.Value(t, b, chromedp.Screenshot(chromedp.ID("flows")))
		if err := os.WriteFile(filepath.Join("..", "docs", "flows.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b.NoErrors(t)

	if len(edges) != len(want) {
		t.Fatalf("the diagram draws %d flow links, the log has %d flows", len(edges), len(want))
	}
	var forbidden []string
	for _, e := range edges {
		k := activity.Edge{Region: e[0], From: e[1], To: e[2]}
		m := titleCountRE.FindStringSubmatch(e[3])
		if m == nil || m[1] != k.Region || m[2] != k.From || m[3] != k.To {
			t.Errorf("edge %v: title %q", k, e[3])
			continue
		}
		if n := atoi(t, m[4]); n != want[k] {
			t.Errorf("edge %v shows %d transfers, the log has %d", k, n, want[k])
		}
		bad := !allowedBy(p, k.Region, k.To)
		dashed := e[5] != "none" && e[5] != ""
		if (m[5] != "") != bad || (e[4] == "true") != bad || dashed != bad || strings.Contains(e[6], "✕ forbidden") != bad {
			t.Errorf("edge %v: title %q, forbidden class %s, dash %q, label %q; want forbidden %v", k, e[3], e[4], e[5], e[6], bad)
		}
		if bad {
			forbidden = append(forbidden, k.Region+" "+k.From+" "+k.To)
		}
	}
	if strings.Join(forbidden, ", ") != "EU ch-zrh-1 us-ash-1, UK ch-zrh-1 de-fra-1" {
		t.Errorf("forbidden flows drawn: %q, want the two reroutes by transfer", forbidden)
	}
	// Screen readers: each flow link is named by its title in the
	// diagram, and by the flow in the table.
	names := axLinkNames(t, b)
	for _, e := range edges {
		if !names[e[3]] {
			t.Errorf("no link in the accessibility tree named %q", e[3])
		}
		if table := "list the samples on " + e[0] + ": " + e[1] + " → " + e[2]; !names[table] {
			t.Errorf("no link in the accessibility tree named %q", table)
		}
	}
	if !strings.Contains(summary, "3 transfers on 2 flows went where the routing policy does not allow") {
		t.Errorf("summary %q", summary)
	}
	if len(rows) != len(want) {
		t.Fatalf("the table has %d rows, the log %d flows", len(rows), len(want))
	}
	for _, r := range rows {
		// Region, From, To, Transfers, Policy, Samples.
		k := activity.Edge{Region: r[0], From: r[1], To: r[2]}
		if n := atoi(t, r[3]); n != want[k] {
			t.Errorf("table row %v shows %d, the log has %d", k, n, want[k])
		}
		if wantText := map[bool]string{true: "✕ forbidden", false: "allowed"}[!allowedBy(p, k.Region, k.To)]; r[4] != wantText {
			t.Errorf("table row %v policy %q, want %q", k, r[4], wantText)
		}
	}

	// Keyboard: from the top, Tab reaches every flow link of the diagram
	// and of the table, and each shows a focus outline.
	b.Do(t, chromedp.Evaluate[chromedp.Void](`document.activeElement && document.activeElement.blur()`))
	reached := map[string]bool{}
	for i := 0; i < 2*len(edges)+40; i++ {
		b.Do(t, chromedp.KeyEvent(kb.Tab))
		got := browsertest.Value(t, b, chromedp.Evaluate[[]string](`(() => { const a = document.activeElement;
			if (!a || !a.closest) return ["", "", ""];
			const where = a.closest("svg.flows") ? "svg" : a.closest("table.flows") ? "table" : "";
			return [where, a.getAttribute("href") || "", getComputedStyle(a).outlineStyle]; })()`))
		if got[0] == "" {
			continue
		}
		reached[got[0]+" "+got[1]] = true
		if got[2] == "none" {
			t.Errorf("the focused %s link %s has no focus outline", got[0], got[1])
		}
	}
	for k := range want {
		for _, where := range []string{"svg", "table"} {
			if !reached[where+" "+flowLink(k, 0)] {
				t.Errorf("Tab never reaches the %s link of flow %v", where, k)
			}
		}
	}

	// Enter on the forbidden flow's edge lists its samples.
	bad := activity.Edge{Region: "EU", From: "ch-zrh-1", To: "us-ash-1"}
	b.Do(t,
		chromedp.Evaluate[chromedp.Void](`document.querySelector('svg.flows a.edge[data-region="EU"][data-from="ch-zrh-1"][data-to="us-ash-1"]').focus()`),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(`table.flowsamples`)),
	)
	samples := browsertest.Value(t, b, chromedp.Evaluate[[][]string](`Array.from(document.querySelectorAll("table.flowsamples tbody tr")).map(r => Array.from(r.cells).map(c => c.innerText))`))
	verdict := browsertest.Value(t, b, chromedp.Text(chromedp.CSS(`[data-testid="flow-forbidden"]`)))
	b.Screenshot(t, "flow-samples")
	b.NoErrors(t)
	if uint64(len(samples)) != want[bad] {
		t.Fatalf("the forbidden flow lists %d samples, want %d", len(samples), want[bad])
	}
	for i, sample := range []string{"smp-EU-002", "smp-EU-001"} { // newest first
		if samples[i][1] != sample || samples[i][3] != "ch-zrh-1 → us-ash-1" {
			t.Errorf("row %d: %q, want sample %s, ch-zrh-1 → us-ash-1", i, samples[i], sample)
		}
	}
	if !strings.Contains(verdict, "Forbidden: the routing policy does not allow EU samples at us-ash-1") {
		t.Errorf("the samples page says %q", verdict)
	}
}

// TestBrowserFlowsWithoutJavaScript: with scripts disabled the diagram, the
// table and a flow's samples are all there.
func TestBrowserFlowsWithoutJavaScript(t *testing.T) {
	s := flowSite(t, testPolicy(t))
	s.add(t, flowWorkload(s, 3)...)
	want, _, _ := logFlows(t, s)
	b := browsertest.New(t)
	b.Do(t, browsertest.Scripts(false), chromedp.Navigate(s.srv.URL+"/flows"), chromedp.WaitVisible(chromedp.CSS(`svg.flows`)), browsertest.Scripts(true))
	nedges := browsertest.Value(t, b, chromedp.Evaluate[int](`document.querySelectorAll("svg.flows a.edge.transfer").length`))
	nrows := browsertest.Value(t, b, chromedp.Evaluate[int](`document.querySelectorAll("table.flows tbody tr").length`))
	e := activity.Edge{Region: "EU", From: "de-fra-1", To: "ch-zrh-1"}
	b.Do(t, browsertest.Scripts(false), chromedp.Navigate(s.srv.URL+flowLink(e, 0)), chromedp.WaitVisible(chromedp.CSS(`table.flowsamples`)), browsertest.Scripts(true))
	nsamples := browsertest.Value(t, b, chromedp.Evaluate[int](`document.querySelectorAll("table.flowsamples tbody tr").length`))
	b.Screenshot(t, "flows-nojs")
	if nedges != len(want) || nrows != len(want) || uint64(nsamples) != want[e] {
		t.Errorf("without JavaScript: %d edges, %d rows, %d samples; want %d, %d, %d", nedges, nrows, nsamples, len(want), len(want), want[e])
	}
}
