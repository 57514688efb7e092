package dashboard

import (
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/internal/browsertest"
	"github.com/custodylog/custody/internal/svgchart"
)

// timelineMarkersJS reads the timeline's markers as rendered: time, entry,
// label, link, the x of the triangle's tip (the centre of its box, in the
// chart's units), its title, and the x the rendered axis puts the
// marker's time at, interpolated between the two ticks around it, or
// extrapolated from the nearest two past the first or last tick (the
// ticks' positions and times read from the page).
const timelineMarkersJS = `(() => {
	const svg = document.querySelector("svg.timeline");
	const ticks = Array.from(svg.querySelectorAll("text.tick")).map(t => [Number(t.dataset.t), Number(t.getAttribute("x"))]);
	const axisX = (t) => {
		if (ticks.length < 2) return -1;
		// Between the two ticks around t; before the first or after the
		// last tick (the range need not end on one), on the line through
		// the nearest two.
		let i = 0;
		while (i + 2 < ticks.length && t > ticks[i+1][0]) i++;
		const [t0, x0] = ticks[i], [t1, x1] = ticks[i+1];
		return x0 + (t - t0) / (t1 - t0) * (x1 - x0);
	};
	return Array.from(svg.querySelectorAll("a.marker")).map(a => {
		const bb = a.querySelector("path").getBBox();
		return [a.dataset.time, a.dataset.id, a.dataset.label, a.getAttribute("href"), String(bb.x + bb.width / 2),
			a.querySelector("title").textContent, String(axisX(Number(a.dataset.time)))];
	});
})()`

// TestBrowserTimeline loads /timeline in Chromium with the violations
// workload: every finding of the audit, the reroutes among them, is a
// marker at its event's time (its data, its drawn position on the chart's
// scale, and its position on the axis as rendered, between its ticks), a
// link to its sample with a title; Tab reaches every marker, each drawn
// with a focus outline; no console errors. Saves a screenshot (and
// docs/timeline.png with CUSTODY_SCREENSHOTS=docs).
func TestBrowserTimeline(t *testing.T) {
	s := timelineSite(t, testPolicy(t))
	s.add(t, s.workload(40, true)...)
	s.stepHistory(t)
	times := eventTimes(t, s)
	findings := s.dash.auditor.view(s.log.Checkpoint().Size).Recent
	b := browsertest.New(t)

	b.Do(t, chromedp.Navigate(s.srv.URL+"/timeline?range=24h"), chromedp.WaitVisible(chromedp.CSS(`svg.timeline`)))
	markers := browsertest.Value(t, b, chromedp.Evaluate[[][]string](timelineMarkersJS))
	rng := browsertest.Value(t, b, chromedp.Evaluate[[]int64](`(() => { const r = document.querySelector('[data-testid="range"]'); return [Number(r.dataset.from), Number(r.dataset.to)]; })()`))
	b.Screenshot(t, "timeline")
	if os.Getenv("CUSTODY_SCREENSHOTS") == "docs" {
		png := browsertest.Value(t, b, chromedp.Screenshot(chromedp.ID("events")))
		if err := os.WriteFile(filepath.Join("..", "docs", "timeline.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b.NoErrors(t)

	from, to := time.Unix(rng[0], 0).UTC(), time.Unix(rng[1], 0).UTC()
	if len(markers) != len(findings) {
		t.Fatalf("%d markers drawn, the audit has %d findings", len(markers), len(findings))
	}
	left := map[string]int{} // "index kind" -> findings not yet matched
	reroutes := 0
	for _, f := range findings {
		left[strconv.FormatUint(f.Index, 10)+" "+string(f.Kind)]++
		if f.Kind == audit.KindReroute {
			reroutes++
		}
	}
	if reroutes == 0 {
		t.Fatal("the violations workload has no reroute finding")
	}
	for _, m := range markers {
		idx, _ := strconv.ParseUint(m[1], 10, 64)
		sec, _ := strconv.ParseInt(m[0], 10, 64)
		key := m[1] + " " + m[2]
		if left[key] == 0 {
			t.Errorf("marker %s: no such finding (or drawn twice)", key)
			continue
		}
		left[key]--
		at := times[idx]
		if !time.Unix(sec, 0).Equal(at) {
			t.Errorf("marker %s at %v, its event is at %v", key, time.Unix(sec, 0).UTC(), at)
		}
		tip, _ := strconv.ParseFloat(m[4], 64)
		if want := svgchart.X(from, to, 0, at); tip < want-0.1 || tip > want+0.1 {
			t.Errorf("marker %s drawn at x=%.2f, its time is at x=%.2f", key, tip, want)
		}
		if ax, _ := strconv.ParseFloat(m[6], 64); ax < 0 || tip < ax-0.6 || tip > ax+0.6 {
			t.Errorf("marker %s drawn at x=%.2f; between the rendered axis's ticks its time is at x=%.2f", key, tip, ax)
		}
		var sample string
		for _, f := range findings {
			if f.Index == idx {
				sample = f.Sample
			}
		}
		if m[3] != "/sample?id="+url.QueryEscape(sample) || !strings.Contains(m[5], "entry "+m[1]) || !strings.Contains(m[5], utc(at)) {
			t.Errorf("marker %s: link %q, title %q", key, m[3], m[5])
		}
	}

	// Keyboard: from the top, Tab reaches every marker, each drawn with a
	// focus outline.
	b.Do(t, chromedp.Evaluate[chromedp.Void](`document.activeElement && document.activeElement.blur()`))
	reached := map[string]bool{}
	for i := 0; i < len(markers)+40 && len(reached) < len(markers); i++ {
		b.Do(t, chromedp.KeyEvent(kb.Tab))
		got := browsertest.Value(t, b, chromedp.Evaluate[[]string](`(() => { const a = document.activeElement;
			if (!a || !a.classList || !a.classList.contains("marker")) return ["", ""];
			return [a.dataset.id + " " + a.dataset.label + " " + a.dataset.time, getComputedStyle(a).outlineStyle]; })()`))
		if got[0] == "" {
			continue
		}
		reached[got[0]] = true
		if got[1] == "none" {
			t.Errorf("the focused marker %s has no focus outline", got[0])
		}
	}
	for _, m := range markers {
		if !reached[m[1]+" "+m[2]+" "+m[0]] {
			t.Errorf("Tab does not reach the marker of entry %s (%s)", m[1], m[2])
		}
	}
	// Enter on a focused marker opens its sample.
	b.Do(t, chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.CSS(`ol.chain`)))
	if loc := browsertest.Value(t, b, chromedp.Location()); !strings.Contains(loc, "/sample?id=") {
		t.Errorf("Enter on a marker went to %s", loc)
	}
	// Every input has a label.
	b.Do(t, chromedp.Navigate(s.srv.URL+"/timeline"), chromedp.WaitVisible(chromedp.CSS(`form.range`)))
	if n := browsertest.Value(t, b, chromedp.Evaluate[int](`Array.from(document.querySelectorAll("input")).filter(i => i.labels.length === 0).length`)); n != 0 {
		t.Errorf("%d inputs without a label", n)
	}
	b.NoErrors(t)
}

// TestBrowserTimelineWithoutJavaScript: with scripts disabled, the chart,
// markers and tables are there, a preset link and the range form (Enter
// on its button, with the dates it shows) choose the range.
func TestBrowserTimelineWithoutJavaScript(t *testing.T) {
	s := timelineSite(t, testPolicy(t))
	s.add(t, s.workload(3, true)...)
	s.stepHistory(t)
	nfindings := len(s.dash.auditor.view(s.log.Checkpoint().Size).Recent)
	b := browsertest.New(t)

	b.Do(t, browsertest.Scripts(false), chromedp.Navigate(s.srv.URL+"/timeline?range=30d"), chromedp.WaitVisible(chromedp.CSS(`svg.timeline`)),
		// A preset link, clicked.
		chromedp.Click(chromedp.CSS(`a[data-range="24h"]`)), chromedp.WaitVisible(chromedp.CSS(`a[data-range="24h"][aria-current="page"]`)),
		// The form, submitted with Enter on its button.
		chromedp.Focus(chromedp.CSS(`form.range button`)), chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(`svg.timeline`)), browsertest.Scripts(true))
	loc := browsertest.Value(t, b, chromedp.Location())
	nmarkers := browsertest.Value(t, b, chromedp.Evaluate[int](`document.querySelectorAll("svg.timeline a.marker").length`))
	nrows := browsertest.Value(t, b, chromedp.Evaluate[int](`document.querySelectorAll("table.timeline-counts tbody tr").length`))
	nwitnesses := browsertest.Value(t, b, chromedp.Evaluate[int](`document.querySelectorAll("table.witnesses tbody tr").length`))
	b.Screenshot(t, "timeline-nojs")
	today := time.Now().UTC().Format(time.DateOnly)
	if !strings.Contains(loc, "from=") || !strings.Contains(loc, "to="+today) {
		t.Errorf("the form went to %s, want from= and to=%s", loc, today)
	}
	if nmarkers != nfindings || nrows == 0 || nwitnesses != 1 {
		t.Errorf("without JavaScript: %d markers (want %d), %d table rows, %d witnesses (want 1)", nmarkers, nfindings, nrows, nwitnesses)
	}
}
