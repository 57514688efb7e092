package dashboard

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/custodylog/custody/internal/browsertest"
	"github.com/custodylog/custody/record"
)

// journeyEvents is a sample that travels de-fra-1 → ch-zrh-1 → us-ash-1
// (the last not allowed for EU), its times far enough apart to be drawn
// to scale: 7 steps, 2 transfers, 3 forbidden steps (the transfer to
// us-ash-1 and the two events there).
func journeyEvents(s *site) []record.Event {
	const id = "smp-journey"
	return []record.Event{
		s.ev(id, "EU", record.Collected, "de-fra-1", "", 0),
		s.ev(id, "EU", record.Transferred, "de-fra-1", "ch-zrh-1", 240),
		s.ev(id, "EU", record.Stored, "ch-zrh-1", "", 600),
		s.ev(id, "EU", record.Transferred, "ch-zrh-1", "us-ash-1", 900),
		s.ev(id, "EU", record.Analysed, "us-ash-1", "", 1200),
		s.ev(id, "EU", record.Deleted, "us-ash-1", "", 1440),
		s.ev(id, "EU", record.Deleted, "de-fra-1", "", 1700),
	}
}

// journeyStepsJS reads the journey's steps as rendered: index, action,
// data-server, data-browser, data-complete, data-forbidden, the marks'
// text, the title, whether a ✕ is drawn, and the node's stroke colour.
const journeyStepsJS = `Array.from(document.querySelectorAll("svg.journey a.step")).map(a => [
	a.dataset.index, a.dataset.action, a.dataset.server, a.dataset.browser, a.dataset.complete, a.dataset.forbidden,
	a.querySelector(".marks").textContent, a.querySelector("title").textContent,
	String(a.querySelector(".violation") !== null), getComputedStyle(a.querySelector(".node")).stroke])`

// TestBrowserJourney loads a sample page in Chromium: after the page's
// scripts ran, every step of the journey is marked browser-verified and
// complete (the site keeps the sample index); lanes are in order of first
// visit; the forbidden steps carry the violation style and a ✕; no console
// errors; the keyboard reaches every step and Enter follows it to its
// event. Saves screenshots (and docs/journey.png with
// CUSTODY_SCREENSHOTS=docs).
func TestBrowserJourney(t *testing.T) {
	s := newSite(t, testPolicy(t))
	s.add(t, s.workload(2, true)...)
	evs := journeyEvents(s)
	s.add(t, evs...)
	b := browsertest.New(t)
	b.Do(t,
		chromedp.Navigate(s.srv.URL+"/sample?id=smp-journey"),
		chromedp.WaitVisible(chromedp.CSS(`svg.journey`)),
		chromedp.WaitVisible(chromedp.CSS(`#browser-check[data-state="ok"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#index-browser-check[data-state="ok"]`)),
	)
	steps := browsertest.Value(t, b, chromedp.Evaluate[[][]string](journeyStepsJS))
	lanes := browsertest.Value(t, b, chromedp.Evaluate[[][]string](`Array.from(document.querySelectorAll("svg.journey g.lane")).map(g => [g.dataset.lane, g.dataset.forbidden])`))
	transfers := browsertest.Value(t, b, chromedp.Evaluate[[][]string](`Array.from(document.querySelectorAll("svg.journey g.transfer")).map(g => [g.dataset.from, g.dataset.to, String(g.classList.contains("forbidden"))])`))
	b.Screenshot(t, "journey")
	if os.Getenv("CUSTODY_SCREENSHOTS") == "docs" {
		png := browsertest.Value(t, b, chromedp.Screenshot(chromedp.ID("journey")))
		if err := os.WriteFile(filepath.Join("..", "docs", "journey.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b.NoErrors(t)

	if len(steps) != len(evs) {
		t.Fatalf("the journey draws %d steps, want %d", len(steps), len(evs))
	}
	var forbiddenStroke, allowedStroke string
	for i, st := range steps {
		if st[1] != string(evs[i].Action) {
			t.Errorf("step %d is %s, want %s (time order)", i, st[1], evs[i].Action)
		}
		if st[2] != "ok" || st[3] != "ok" || st[4] != "browser" {
			t.Errorf("step %d (entry %s): server %q, browser %q, complete %q; want ok, ok, browser", i, st[0], st[2], st[3], st[4])
		}
		if st[6] != "S✓ B✓ C✓✓" {
			t.Errorf("step %d marks %q, want %q", i, st[6], "S✓ B✓ C✓✓")
		}
		if !strings.Contains(st[7], "entry "+st[0]) || !strings.Contains(st[7], "verified by the server") ||
			!strings.Contains(st[7], "re-checked by your browser") || !strings.Contains(st[7], "completeness as of checkpoint") {
			t.Errorf("step %d title %q", i, st[7])
		}
		forbidden := i >= 3 && i <= 5
		if (st[5] == "true") != forbidden || (st[8] == "true") != forbidden {
			t.Errorf("step %d (%s): forbidden %s, ✕ drawn %s; want %v", i, st[1], st[5], st[8], forbidden)
		}
		if forbidden {
			forbiddenStroke = st[9]
		} else {
			allowedStroke = st[9]
		}
	}
	if forbiddenStroke == allowedStroke {
		t.Errorf("forbidden and allowed steps share the outline colour %s", allowedStroke)
	}
	wantLanes := [][]string{{"de-fra-1", "false"}, {"ch-zrh-1", "false"}, {"us-ash-1", "true"}}
	if len(lanes) != len(wantLanes) {
		t.Fatalf("lanes %q, want %q", lanes, wantLanes)
	}
	for i := range lanes {
		if lanes[i][0] != wantLanes[i][0] || lanes[i][1] != wantLanes[i][1] {
			t.Errorf("lane %d is %q, want %q", i, lanes[i], wantLanes[i])
		}
	}
	wantTransfers := [][]string{{"de-fra-1", "ch-zrh-1", "false"}, {"ch-zrh-1", "us-ash-1", "true"}}
	if len(transfers) != 2 || strings.Join(transfers[0], " ") != strings.Join(wantTransfers[0], " ") || strings.Join(transfers[1], " ") != strings.Join(wantTransfers[1], " ") {
		t.Errorf("transfers %q, want %q", transfers, wantTransfers)
	}

	// Screen readers: each step is a link named by its title.
	names := axLinkNames(t, b)
	for i, st := range steps {
		if !names[st[7]] {
			t.Errorf("step %d: no link in the accessibility tree named %q", i, st[7])
		}
	}

	// Keyboard: Tab from the top of the page reaches every step, in time
	// order, and Enter on a step goes to its event in the chain.
	b.Do(t, chromedp.Evaluate[chromedp.Void](`document.activeElement && document.activeElement.blur()`))
	var reached []string
	for i := 0; i < 60 && len(reached) < len(steps); i++ {
		b.Do(t, chromedp.KeyEvent(kb.Tab))
		idx := browsertest.Value(t, b, chromedp.Evaluate[string](`(document.activeElement.closest && document.activeElement.closest("svg.journey a.step")) ? document.activeElement.dataset.index : ""`))
		if idx != "" {
			reached = append(reached, idx)
		}
	}
	if len(reached) != len(steps) {
		t.Fatalf("Tab reached steps %q, want all %d", reached, len(steps))
	}
	for i := range reached {
		if reached[i] != steps[i][0] {
			t.Errorf("Tab stop %d is entry %s, want %s", i, reached[i], steps[i][0])
		}
	}
	b.Do(t, chromedp.KeyEvent(kb.Enter))
	hash := browsertest.Value(t, b, chromedp.Evaluate[string](`location.hash`))
	if want := "#entry-" + reached[len(reached)-1]; hash != want {
		t.Errorf("Enter on the last step goes to %q, want %q", hash, want)
	}
}

// TestBrowserJourneyCatchesBadProof alters the first event's inclusion
// proof in the page and runs verify.js again: the journey marks that step
// failed (B✕, data-browser="failed", its title says so), the others
// browser-verified. Then it alters the sample proof and runs
// sampleproof.js again: every step's completeness is marked failed.
func TestBrowserJourneyCatchesBadProof(t *testing.T) {
	s := newSite(t, nil)
	s.add(t, s.workload(3, false)...)
	b := browsertest.New(t)
	b.Do(t,
		chromedp.Navigate(s.srv.URL+"/sample?id=smp-US-001"),
		chromedp.WaitVisible(chromedp.CSS(`#browser-check[data-state="ok"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#index-browser-check[data-state="ok"]`)),
		chromedp.Evaluate[chromedp.Void](`(() => { const el = document.querySelector("div.proof"); const p = el.dataset.proof;
			el.dataset.proof = (p[0] === "0" ? "1" : "0") + p.slice(1); document.getElementById("browser-check").dataset.state = "pending"; })()`),
		chromedp.Evaluate[chromedp.Void](`(() => { const s = document.createElement("script"); s.src = "/static/verify.js?again"; document.body.appendChild(s); })()`),
		chromedp.WaitVisible(chromedp.CSS(`#browser-check[data-state="failed"]`)),
	)
	steps := browsertest.Value(t, b, chromedp.Evaluate[[][]string](journeyStepsJS))
	if len(steps) < 2 {
		t.Fatalf("%d steps", len(steps))
	}
	first := browsertest.Value(t, b, chromedp.Evaluate[string](`document.querySelector("div.proof").dataset.index`))
	for i, st := range steps {
		want, mark := "ok", "B✓"
		if st[0] == first {
			want, mark = "failed", "B✕"
			if !strings.Contains(st[7], "your browser's check of the inclusion proof FAILED") {
				t.Errorf("the failed step's title %q", st[7])
			}
		}
		if st[3] != want || !strings.Contains(st[6], mark) {
			t.Errorf("step %d (entry %s): browser %q, marks %q; want %q, %q", i, st[0], st[3], st[6], want, mark)
		}
	}

	// The sample proof: flip one base64 character in the middle.
	b.Do(t,
		chromedp.Evaluate[chromedp.Void](`(() => { const el = document.getElementById("sample-index"); const p = el.dataset.sampleProof; const i = p.length >> 1;
			el.dataset.sampleProof = p.slice(0, i) + (p[i] === "A" ? "B" : "A") + p.slice(i + 1); document.getElementById("index-browser-check").dataset.state = "pending"; })()`),
		chromedp.Evaluate[chromedp.Void](`(() => { const s = document.createElement("script"); s.src = "/static/sampleproof.js?again"; document.body.appendChild(s); })()`),
		chromedp.WaitVisible(chromedp.CSS(`#index-browser-check[data-state="failed"]`)),
	)
	steps = browsertest.Value(t, b, chromedp.Evaluate[[][]string](journeyStepsJS))
	for i, st := range steps {
		if st[4] != "failed" || !strings.Contains(st[6], "C✕") || !strings.Contains(st[7], "check of completeness FAILED") {
			t.Errorf("step %d after the sample proof was altered: complete %q, marks %q, title %q", i, st[4], st[6], st[7])
		}
	}
	b.NoErrors(t)
}

// TestBrowserJourneyWithoutJavaScript loads the page with scripts off: the
// journey is there, every step marked verified by the server (S✓) and
// complete (C✓, proven by the server), the browser's mark pending (B…).
func TestBrowserJourneyWithoutJavaScript(t *testing.T) {
	s := newSite(t, testPolicy(t))
	evs := journeyEvents(s)
	s.add(t, evs...)
	b := browsertest.New(t)
	b.Do(t, browsertest.Scripts(false), chromedp.Navigate(s.srv.URL+"/sample?id=smp-journey"), chromedp.WaitVisible(chromedp.CSS(`svg.journey`)), browsertest.Scripts(true))
	steps := browsertest.Value(t, b, chromedp.Evaluate[[][]string](journeyStepsJS))
	legend := browsertest.Value(t, b, chromedp.Text(chromedp.CSS(`[data-testid="journey-legend"]`)))
	b.Screenshot(t, "journey-nojs")
	b.NoErrors(t)
	if len(steps) != len(evs) {
		t.Fatalf("without JavaScript the journey draws %d steps, want %d", len(steps), len(evs))
	}
	for i, st := range steps {
		if st[2] != "ok" || st[3] != "pending" || st[4] != "ok" || st[6] != "S✓ B… C✓" {
			t.Errorf("step %d without JavaScript: server %q, browser %q, complete %q, marks %q; want ok, pending, ok, \"S✓ B… C✓\"", i, st[2], st[3], st[4], st[6])
		}
	}
	for _, want := range []string{"S✓", "B✓", "C✓", "not allowed by the policy"} {
		if !strings.Contains(legend, want) {
			t.Errorf("the legend does not explain %q: %q", want, legend)
		}
	}
}

// axLinkNames is the set of the accessible names of the page's links, as
// Chromium's accessibility tree has them.
func axLinkNames(t *testing.T, b *browsertest.Browser) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	b.Do(t, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		res, err := cdp.Call(ctx, tg, accessibility.GetFullAXTree, accessibility.GetFullAXTreeParams{})
		if err != nil {
			return err
		}
		for _, n := range res.Nodes {
			if n.Role == nil || n.Name == nil {
				continue
			}
			var role, name string
			if json.Unmarshal(n.Role.Value, &role) == nil && role == "link" && json.Unmarshal(n.Name.Value, &name) == nil {
				names[name] = true
			}
		}
		return nil
	}))
	return names
}
