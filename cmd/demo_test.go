package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/custodylog/custody/internal/browsertest"
)

type demoStats struct {
	Size    uint64                       `json:"size"`
	Counted uint64                       `json:"counted"`
	Counts  map[string]map[string]uint64 `json:"counts"`
	page    string                       // the dashboard, GET /, once counted
}

// runDemo runs the demo in-process until its report is printed, fetches
// /v1/stats, stops it and returns its stdout and the stats.
// visit, if given, runs while the demo serves, after the page is fetched.
func runDemo(t *testing.T, o demoOptions, visit ...func(base string)) (string, demoStats) {
	t.Helper()
	var out, errb syncBuffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o.dir = filepath.Join(t.TempDir(), "demo")
	o.listen = "127.0.0.1:0"
	var stats demoStats
	var statsErr error
	o.reported = func(base string) {
		defer cancel()
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			resp, err := http.Get(base + "/v1/stats")
			if err != nil {
				statsErr = err
				return
			}
			stats = demoStats{}
			statsErr = json.NewDecoder(resp.Body).Decode(&stats)
			resp.Body.Close()
			if statsErr != nil {
				return
			}
			if stats.Counted == stats.Size {
				resp, err := http.Get(base + "/")
				if err != nil {
					statsErr = err
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					statsErr = fmt.Errorf("GET /: %d %v", resp.StatusCode, err)
					return
				}
				stats.page = string(b)
				if strings.Contains(stats.page, "All "+strconv.FormatUint(stats.Size, 10)+" entries audited") {
					for _, f := range visit {
						f(base)
					}
					return
				}
			}
		}
	}
	done := make(chan error, 1)
	go func() { done <- e.demo(ctx, o) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("demo did not finish\nstdout:\n%s\nstderr:\n%s", out.String(), errb.String())
	}
	if statsErr != nil {
		t.Fatalf("/v1/stats: %v", statsErr)
	}
	if !strings.Contains(errb.String(), "appended 300/300 events") {
		t.Errorf("no progress on stderr:\n%s", errb.String())
	}
	if !strings.Contains(out.String(), "dashboard:") || !strings.Contains(out.String(), "/checkpoint") {
		t.Errorf("no URLs printed:\n%s", out.String())
	}
	checkDashboardMatchesAudit(t, out.String(), stats.page)
	return out.String(), stats
}

// checkDashboardMatchesAudit checks that the dashboard's chart shows, cell
// for cell, the counts of the audit report the demo printed (the audit read
// the log over HTTP and trusted nothing).
func checkDashboardMatchesAudit(t *testing.T, report, page string) {
	t.Helper()
	audit := map[string]string{}
	lines := strings.Split(report, "\n")
	var header []string
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) > 1 && f[0] == "REGION" {
			header = f
			continue
		}
		if header != nil {
			if len(f) != len(header) {
				break
			}
			for i := 1; i < len(f)-1; i++ {
				if f[i] != "-" {
					audit[f[0]+"/"+header[i]] = f[i]
				}
			}
		}
	}
	if len(audit) == 0 {
		t.Fatalf("no counts table in the report:\n%s", report)
	}
	cells := regexp.MustCompile(`<g class="cell [a-z]+" data-region="([A-Z]+)" data-location="([a-z0-9-]+)" data-count="(\d+)"`).FindAllStringSubmatch(page, -1)
	if len(cells) == 0 {
		t.Fatalf("no chart on the dashboard:\n%.2000s", page)
	}
	shown := map[string]string{}
	for _, c := range cells {
		if c[3] != "0" {
			shown[c[1]+"/"+c[2]] = c[3]
		}
	}
	if !reflect.DeepEqual(audit, shown) {
		t.Errorf("dashboard counts %v, audit report counts %v", shown, audit)
	}
}

func TestDemoClean(t *testing.T) {
	out, stats := runDemo(t, demoOptions{events: 300, seed: 7})
	// Every data centre signs its own events: the log holds them and
	// their sites' attestations.
	if !strings.Contains(out, "site signatures: 300 of 300 events covered by a valid site attestation") || !strings.Contains(out, "\nno findings\n") {
		t.Fatalf("report:\n%s", out)
	}
	if stats.Size <= 300 || !strings.Contains(out, fmt.Sprintf(": %d entries verified", stats.Size)) {
		t.Fatalf("stats size %d", stats.Size)
	}
	for _, r := range []string{"US", "EU", "UK", "ROW"} {
		if len(stats.Counts[r]) == 0 {
			t.Errorf("no events for region %s: %v", r, stats.Counts)
		}
	}
	// The same seed gives the same workload.
	_, again := runDemo(t, demoOptions{events: 300, seed: 7})
	stats.page, again.page = "", ""
	if !reflect.DeepEqual(stats, again) {
		t.Fatalf("seed 7 twice: %v, then %v", stats, again)
	}
	_, other := runDemo(t, demoOptions{events: 300, seed: 8})
	if reflect.DeepEqual(stats.Counts, other.Counts) {
		t.Errorf("seeds 7 and 8 gave the same counts %v", other.Counts)
	}
}

func TestDemoViolations(t *testing.T) {
	out, stats := runDemo(t, demoOptions{events: 300, seed: 7, violations: true})
	if !strings.Contains(out, "12 findings:") {
		t.Fatalf("want 12 findings:\n%s", out)
	}
	kinds := map[string]map[string]bool{} // sample → kinds
	re := regexp.MustCompile(`(?m)^\d+\s+(\S+)\s+(\S+)\s`)
	for _, m := range re.FindAllStringSubmatch(out[strings.Index(out, "findings:"):], -1) {
		if kinds[m[1]] == nil {
			kinds[m[1]] = map[string]bool{}
		}
		kinds[m[1]][m[2]] = true
	}
	var rerouted, transferred, broken int
	for s, k := range kinds {
		switch {
		case strings.HasPrefix(s, "smp-eu-") && len(k) == 2 && k["reroute"] && k["continuity"]:
			rerouted++
		case strings.HasPrefix(s, "smp-eu-") && len(k) == 1 && k["reroute"]:
			transferred++ // logged its transfer to ru-mow-1: a forbidden flow
		case len(k) == 1 && k["continuity"]:
			broken++
		case s == "smp-eu-forged" && len(k) == 1 && k["site-not-allowed"]:
			// claims ch-zrh-1, signed by the ru-mow-1 site's key
		default:
			t.Errorf("sample %s: unexpected findings %v", s, k)
		}
	}
	if rerouted != 3 || transferred != 1 || broken != 1 {
		t.Fatalf("want 3 EU samples analysed at ru-mow-1 without a transfer, 1 transferred there and 1 broken transfer, got %d, %d and %d:\n%s", rerouted, transferred, broken, out)
	}
	if !strings.Contains(out, "analysed at ru-mow-1") || !strings.Contains(out, "transferred to ru-mow-1 (RU), not allowed for region EU") {
		t.Errorf("no ru-mow-1 finding:\n%s", out)
	}
	// The planted event's receipt verifies, but its site signature fails
	// the policy.
	if m := regexp.MustCompile(`custody verify receipt (\S+forged-receipt.jsonl) --key (\S+) --policy (\S+)`).FindStringSubmatch(out); m == nil {
		t.Errorf("no forged receipt in the intro:\n%s", out)
	} else if code, vout, _ := run(t, "", "verify", "receipt", m[1], "--key", m[2], "--policy", m[3]); code != exitFailure ||
		!strings.Contains(vout, "site: entry 0: site-not-allowed: ") {
		t.Errorf("verify receipt of the forged event: %d %s", code, vout)
	}
	// The dashboard's findings panel has the same findings.
	if !strings.Contains(stats.page, `data-total="12"`) {
		t.Errorf("the dashboard's findings panel does not total 12")
	}
	if !strings.Contains(stats.page, `data-signature="site signature fails: site-not-allowed"`) && !strings.Contains(out, "smp-eu-forged") {
		t.Errorf("the forged event is not shown")
	}
	for s := range kinds {
		if !strings.Contains(stats.page, `data-sample="`+s+`"`) {
			t.Errorf("sample %s is not in the dashboard's findings panel", s)
		}
	}
}

// TestDemoViolationsInBrowser opens the dashboard of `custody demo
// --violations` in headless Chromium: the injected violations are in the
// findings panel and the chart shows the rerouted EU events as forbidden;
// the flow diagram shows the transfer to ru-mow-1 as the one forbidden
// flow, and the timeline marks every finding.
func TestDemoViolationsInBrowser(t *testing.T) {
	var findings [][]string
	var forbidden, flows, markers []string
	var visited bool
	runDemo(t, demoOptions{events: 300, seed: 7, violations: true}, func(base string) {
		b := browsertest.New(t)
		b.Do(t, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`#findings`)))
		findings = browsertest.Value(t, b, chromedp.Evaluate[[][]string](`Array.from(document.querySelectorAll("table.findings tbody tr")).map(r =>
			Array.from(r.cells).map(c => c.innerText))`))
		forbidden = browsertest.Value(t, b, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("svg.chart g.cell.forbidden")).map(g =>
			g.dataset.region + "/" + g.dataset.location + "=" + g.dataset.count)`))
		b.Screenshot(t, "demo-violations")
		// The flow diagram: the transfer to ru-mow-1 is a forbidden flow.
		b.Do(t, chromedp.Navigate(base+"/flows"), chromedp.WaitVisible(chromedp.CSS(`svg`)))
		flows = browsertest.Value(t, b, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("svg [data-forbidden]")).filter(e => e.dataset.forbidden !== "0").map(e =>
			e.dataset.region + ":" + e.dataset.from + ">" + e.dataset.to + "=" + e.dataset.count)`))
		// The timeline: every finding is a marker at its event's time.
		b.Do(t, chromedp.Navigate(base+"/timeline?range=24h"), chromedp.WaitVisible(chromedp.CSS(`svg.timeline`)))
		markers = browsertest.Value(t, b, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("svg.timeline .marker")).map(m => m.dataset.id + " " + m.dataset.label + " " + m.dataset.time)`))
		// Each marker is at its event's time, as the log has it.
		for _, m := range markers {
			f := strings.Fields(m)
			resp, err := http.Get(base + "/v1/entries/" + f[0])
			if err != nil {
				t.Fatal(err)
			}
			var e struct {
				Event struct {
					Time time.Time `json:"time"`
				} `json:"event"`
			}
			err = json.NewDecoder(resp.Body).Decode(&e)
			resp.Body.Close()
			if err != nil || strconv.FormatInt(e.Event.Time.Unix(), 10) != f[2] {
				t.Errorf("marker %q: its entry's event time is %v (%v)", m, e.Event.Time, err)
			}
		}
		b.NoErrors(t)
		visited = true
	})
	if !visited {
		t.Fatal("the dashboard was never visited")
	}
	reroutes := 0
	for _, f := range findings {
		if len(f) == 4 && f[2] == "reroute" && strings.HasPrefix(f[1], "smp-eu-") && strings.Contains(f[3], "ru-mow-1") {
			reroutes++
		}
	}
	if len(findings) != 12 || reroutes != 7 {
		t.Errorf("findings panel: %d rows, %d EU reroutes to ru-mow-1; want 12 and 7: %q", len(findings), reroutes, findings)
	}
	if len(forbidden) != 1 || forbidden[0] != "EU/ru-mow-1=6" {
		t.Errorf("forbidden cells %q, want EU/ru-mow-1=6", forbidden)
	}
	if len(flows) != 1 || !strings.HasPrefix(flows[0], "EU:") || !strings.HasSuffix(flows[0], ">ru-mow-1=1") {
		t.Errorf("forbidden flows %q, want the one EU transfer to ru-mow-1", flows)
	}
	// Each finding of the panel is marked on the timeline (by entry and
	// kind; each marker at its event's time, checked above).
	marked := map[string]bool{}
	for _, m := range markers {
		f := strings.Fields(m)
		marked[f[0]+" "+f[1]] = true
	}
	for _, f := range findings {
		if !marked[f[0]+" "+f[2]] {
			t.Errorf("finding %q is not marked on the timeline (markers %q)", f, markers)
		}
	}
}
