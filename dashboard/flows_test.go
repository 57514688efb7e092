package dashboard

import (
	"context"
	"fmt"
	"html"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/custodylog/custody/activity"
	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/internal/fuzzseeds"
	"github.com/custodylog/custody/record"
)

// flowSite is newSite with the dashboard's Activity set to the site's
// counter, as custody serve does.
func flowSite(t testing.TB, policy *audit.Policy) *site {
	t.Helper()
	s := newSite(t, policy)
	if s.dash.cfg.Activity == nil {
		s.dash.cfg.Activity = s.stats
	}
	return s
}

// flowWorkload is workload(n, true) (whose reroute is an analysis, not a
// transfer) and reroutes by transfer: two EU samples sent on from the lab
// to us-ash-1 and one UK sample to de-fra-1 (both not allowed for their
// region), and one ROW sample to ru-mow-1 (allowed for ROW).
func flowWorkload(s *site, n int) []record.Event {
	evs := s.workload(n, true)
	t := 7 * 4 * n
	return append(evs,
		s.ev("smp-EU-001", "EU", record.Transferred, "ch-zrh-1", "us-ash-1", t),
		s.ev("smp-EU-002", "EU", record.Transferred, "ch-zrh-1", "us-ash-1", t+1),
		s.ev("smp-UK-001", "UK", record.Transferred, "ch-zrh-1", "de-fra-1", t+2),
		s.ev("smp-ROW-001", "ROW", record.Transferred, "sg-sin-1", "ru-mow-1", t+3),
	)
}

// logFlows counts the transfers per flow, and the collections, from the
// log's own entries (not from the counts the dashboard shows), and
// returns the indices of each flow's transfers in log order.
func logFlows(t testing.TB, s *site) (flows map[activity.Edge]uint64, colls map[[2]string]uint64, indices map[activity.Edge][]uint64) {
	t.Helper()
	size := s.log.Checkpoint().Size
	es, err := s.log.Entries(context.Background(), 0, size)
	if err != nil {
		t.Fatal(err)
	}
	flows, colls, indices = map[activity.Edge]uint64{}, map[[2]string]uint64{}, map[activity.Edge][]uint64{}
	for _, e := range es {
		ev, err := record.DecodeEntry(e.Data)
		if err != nil {
			t.Fatal(err)
		}
		switch ev.Action {
		case record.Transferred:
			k := activity.Edge{Region: ev.Region, From: ev.Location, To: ev.To}
			flows[k]++
			indices[k] = append(indices[k], e.Index)
		case record.Collected:
			colls[[2]string{ev.Region, ev.Location}]++
		}
	}
	return flows, colls, indices
}

// allowedBy is the test's own reading of the policy.
func allowedBy(p *audit.Policy, region, location string) bool {
	return slices.Contains(p.Regions[region].Allowed, location)
}

var (
	flowRowRE   = regexp.MustCompile(`<tr class="([a-z]*)" data-region="([^"]*)" data-from="([^"]*)" data-to="([^"]*)" data-count="(\d+)" data-policy="([a-z]*)">`)
	collRowRE   = regexp.MustCompile(`<tr class="([a-z]*)" data-region="([^"]*)" data-location="([^"]*)" data-count="(\d+)" data-policy="([a-z]*)">`)
	flowEdgeRE  = regexp.MustCompile(`<a href="([^"]*)" class="edge transfer( forbidden)?" data-region="([^"]*)" data-from="([^"]*)" data-to="([^"]*)" data-count="(\d+)" data-forbidden="(\d+)"><title>([^<]*)</title>`)
	totalRE     = regexp.MustCompile(`data-testid="flows-total">([0-9,]+)<`)
	sampleRowRE = regexp.MustCompile(`<tr data-index="(\d+)" data-sample="([^"]*)"( class="problem")?>`)
)

func atoi(t testing.TB, s string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(strings.ReplaceAll(s, ",", ""), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestFlowsPage: the table's and the diagram's numbers equal the
// transfers counted from the log's entries, every flow is in both, the
// forbidden ones (by the policy) are marked in the table's text and drawn
// in the diagram's forbidden style, the totals add up, and each flow links
// to its samples.
func TestFlowsPage(t *testing.T) {
	p := testPolicy(t)
	s := flowSite(t, p)
	s.add(t, flowWorkload(s, 5)...)
	want, wantColls, _ := logFlows(t, s)

	code, body, _ := s.get(t, "/flows")
	if code != 200 {
		t.Fatalf("GET /flows: %d\n%s", code, body)
	}
	rows := flowRowRE.FindAllStringSubmatch(body, -1)
	if len(rows) != len(want) {
		t.Fatalf("the table has %d flows, the log %d: %q", len(rows), len(want), rows)
	}
	var sum uint64
	forbiddenRows := 0
	for _, r := range rows {
		e := activity.Edge{Region: r[2], From: r[3], To: r[4]}
		n := atoi(t, r[5])
		sum += n
		if n != want[e] {
			t.Errorf("table: flow %v has %d transfers, the log %d", e, n, want[e])
		}
		wantPolicy := "allowed"
		if !allowedBy(p, e.Region, e.To) {
			wantPolicy = "forbidden"
			forbiddenRows++
		}
		if r[6] != wantPolicy || r[1] != wantPolicy {
			t.Errorf("table: flow %v policy %q (class %q), want %q", e, r[6], r[1], wantPolicy)
		}
	}
	if forbiddenRows != 2 {
		t.Errorf("%d forbidden flows in the table, want 2 (EU → us-ash-1, UK → de-fra-1)", forbiddenRows)
	}
	if got := strings.Count(body, `<strong class="bad">✕ forbidden</strong>`); got != forbiddenRows {
		t.Errorf("%d rows say ✕ forbidden in text, want %d", got, forbiddenRows)
	}
	m := totalRE.FindStringSubmatch(body)
	if m == nil || atoi(t, m[1]) != sum || sum != s.stats.Transfers() {
		t.Errorf("total %q; rows sum to %d; the counter has %d transfers", m, sum, s.stats.Transfers())
	}

	edges := flowEdgeRE.FindAllStringSubmatch(body, -1)
	if len(edges) != len(want) {
		t.Fatalf("the diagram draws %d flow links, want %d", len(edges), len(want))
	}
	for _, m := range edges {
		e := activity.Edge{Region: m[3], From: m[4], To: m[5]}
		n := atoi(t, m[6])
		if n != want[e] {
			t.Errorf("diagram: flow %v has %d transfers, the log %d", e, n, want[e])
		}
		bad := !allowedBy(p, e.Region, e.To)
		title := fmt.Sprintf("%s: %s → %s, %d transfer", e.Region, e.From, e.To, n)
		if n != 1 {
			title += "s"
		}
		if bad {
			title += ", forbidden"
		}
		if (m[2] != "") != bad || (m[7] != "0") != bad || html.UnescapeString(m[8]) != title {
			t.Errorf("diagram: flow %v: class %q, data-forbidden %s, title %q; want forbidden %v, title %q", e, m[2], m[7], m[8], bad, title)
		}
		if href := html.UnescapeString(m[1]); href != flowLink(e, 0) {
			t.Errorf("diagram: flow %v links to %q, want %q", e, href, flowLink(e, 0))
		}
	}
	colls := collRowRE.FindAllStringSubmatch(body, -1)
	if len(colls) != len(wantColls) {
		t.Fatalf("the collections table has %d rows, the log %d pairs", len(colls), len(wantColls))
	}
	for _, c := range colls {
		if n := atoi(t, c[4]); n != wantColls[[2]string{c[2], c[3]}] {
			t.Errorf("collections: %s at %s: %d, the log %d", c[2], c[3], n, wantColls[[2]string{c[2], c[3]}])
		}
	}
	for _, want := range []string{"3 transfers on 2 flows went where the routing policy does not allow", "<caption>Transfers per customer region"} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}

// TestFlowsPageWithoutPolicy: no verdicts, nothing marked forbidden.
func TestFlowsPageWithoutPolicy(t *testing.T) {
	s := flowSite(t, nil)
	s.add(t, flowWorkload(s, 2)...)
	_, body, _ := s.get(t, "/flows")
	rows := flowRowRE.FindAllStringSubmatch(body, -1)
	if len(rows) == 0 {
		t.Fatal("no flows in the table")
	}
	for _, r := range rows {
		if r[6] != "" {
			t.Errorf("without a policy flow %v has policy %q", r[2:5], r[6])
		}
	}
	if strings.Contains(body, "✕") || strings.Contains(body, `class="edge transfer forbidden"`) {
		t.Error("without a policy something is marked forbidden")
	}
}

// TestFlowsPageWithoutActivity: a clear message, not an empty diagram.
func TestFlowsPageWithoutActivity(t *testing.T) {
	s := newSite(t, nil)
	s.dash.cfg.Activity = nil
	s.add(t, s.workload(1, false)...)
	for _, path := range []string{"/flows", "/flows?region=EU&from=de-fra-1&to=ch-zrh-1"} {
		code, body, _ := s.get(t, path)
		if code != 200 || !strings.Contains(body, `data-testid="no-activity"`) || strings.Contains(body, "<svg class") {
			t.Errorf("GET %s without activity: %d, no message or a diagram", path, code)
		}
	}
}

// TestFlowSamples pages through the samples on one flow: newest first,
// FlowSamplesPerPage at a time, each row the log's entry at that index
// (sample, time, from → to), linked to its sample's page.
func TestFlowSamples(t *testing.T) {
	s := flowSite(t, testPolicy(t))
	const n = 2*FlowSamplesPerPage + 7
	s.add(t, s.workload(n/4+1, false)...) // 4 regions; EU has n/4+1 transfers de-fra-1 → ch-zrh-1
	var evs []record.Event
	for i := 0; i < n; i++ {
		evs = append(evs, s.ev(fmt.Sprintf("smp-fw-%03d", i), "EU", record.Transferred, "ch-zrh-1", "us-ash-1", 1000+i))
	}
	s.add(t, evs...)
	_, _, indices := logFlows(t, s)
	e := activity.Edge{Region: "EU", From: "ch-zrh-1", To: "us-ash-1"}
	want := slices.Clone(indices[e])
	slices.Reverse(want) // newest first
	if len(want) != n {
		t.Fatalf("the log has %d transfers on the flow, want %d", len(want), n)
	}
	entries, err := s.log.Entries(context.Background(), 0, s.log.Checkpoint().Size)
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	pages := (n + FlowSamplesPerPage - 1) / FlowSamplesPerPage
	for page := 1; page <= pages; page++ {
		code, body, _ := s.get(t, flowLink(e, page))
		if code != 200 {
			t.Fatalf("page %d: %d\n%s", page, code, body)
		}
		rows := sampleRowRE.FindAllStringSubmatch(body, -1)
		wantRows := min(FlowSamplesPerPage, n-(page-1)*FlowSamplesPerPage)
		if len(rows) != wantRows {
			t.Fatalf("page %d lists %d transfers, want %d", page, len(rows), wantRows)
		}
		for _, r := range rows {
			idx := atoi(t, r[1])
			ev, err := record.DecodeEntry(entries[idx].Data)
			if err != nil {
				t.Fatal(err)
			}
			if r[2] != ev.Sample || r[3] != "" {
				t.Errorf("page %d: entry %d listed as sample %q (problem %q), the log has %q", page, idx, r[2], r[3], ev.Sample)
			}
			if !strings.Contains(body, `<a href="/sample?id=`+ev.Sample+`">`) || !strings.Contains(body, utc(ev.Time)) {
				t.Errorf("page %d: entry %d has no sample link or time", page, idx)
			}
			got = append(got, idx)
		}
		if !strings.Contains(body, "✕ Forbidden: the routing policy does not allow EU samples at us-ash-1") {
			t.Errorf("page %d does not say the flow is forbidden", page)
		}
		if older := strings.Contains(body, `rel="next"`); older != (page < pages) {
			t.Errorf("page %d: link to older %v", page, older)
		}
		if newer := strings.Contains(body, `rel="prev"`); newer != (page > 1) {
			t.Errorf("page %d: link to newer %v", page, newer)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("the pages list entries %v, want %v (newest first)", got, want)
	}
}

// TestFlowSamplesNewestKept: past activity.MaxRecent transfers the page
// says it lists the newest MaxRecent of them.
func TestFlowSamplesNewestKept(t *testing.T) {
	s := flowSite(t, nil)
	n := activity.MaxRecent + 10
	var evs []record.Event
	for i := 0; i < n; i++ {
		evs = append(evs, s.ev(fmt.Sprintf("smp-%05d", i), "EU", record.Transferred, "de-fra-1", "ch-zrh-1", i))
	}
	s.add(t, evs...)
	e := activity.Edge{Region: "EU", From: "de-fra-1", To: "ch-zrh-1"}
	code, body, _ := s.get(t, flowLink(e, 0))
	if code != 200 || !strings.Contains(body, fmt.Sprintf("the newest %s of %s transfers", num(activity.MaxRecent), num(uint64(n)))) {
		t.Errorf("first page (%d) does not say it lists the newest %d of %d", code, activity.MaxRecent, n)
	}
	last := activity.MaxRecent / FlowSamplesPerPage
	code, body, _ = s.get(t, flowLink(e, last))
	rows := sampleRowRE.FindAllStringSubmatch(body, -1)
	// The oldest kept is the transfer n-MaxRecent (entry n-MaxRecent: the log holds only these).
	if code != 200 || len(rows) == 0 || atoi(t, rows[len(rows)-1][1]) != uint64(n-activity.MaxRecent) {
		t.Errorf("last page %d (%d): rows %d, oldest %v; want entry %d", last, code, len(rows), rows[len(rows)-1:], n-activity.MaxRecent)
	}
	if code, _, _ := s.get(t, flowLink(e, last+1)); code != 400 {
		t.Errorf("page %d past the kept transfers: %d, want 400", last+1, code)
	}
}

// TestFlowSamplesBadRequests: bad parameters are a 400 page that says what
// is wrong; an unknown flow is a 404.
func TestFlowSamplesBadRequests(t *testing.T) {
	s := flowSite(t, nil)
	s.add(t, s.workload(2, false)...)
	tests := []struct {
		query string
		code  int
		says  string
	}{
		{"region=EU", 400, "three parameters"},
		{"region=EU&from=de-fra-1", 400, "three parameters"},
		{"page=2", 400, "three parameters"},
		{"region=eu&from=de-fra-1&to=ch-zrh-1", 400, "The region parameter &#34;eu&#34; is not a region name"},
		{"region=EU&from=DE-FRA&to=ch-zrh-1", 400, "The from parameter &#34;DE-FRA&#34; is not a data centre name"},
		{"region=EU&from=de-fra-1&to=" + url.QueryEscape("<script>"), 400, "The to parameter &#34;&lt;script&gt;&#34;"},
		{"region=EU&from=de-fra-1&to=ch-zrh-1&page=0", 400, "not a whole number of 1 or more"},
		{"region=EU&from=de-fra-1&to=ch-zrh-1&page=x", 400, "not a whole number of 1 or more"},
		{"region=EU&from=de-fra-1&to=ch-zrh-1&page=2", 400, "There is no page 2: this flow&#39;s samples fill 1 page."},
		{"region=EU&from=de-fra-1&to=" + strings.Repeat("a", 100), 400, "is not a data centre name"},
		{"region=EU&from=ch-zrh-1&to=de-fra-1", 404, "No transfers of EU samples from ch-zrh-1 to de-fra-1"},
		{"region=EU&from=de-fra-1&to=ch-zrh-1", 200, "2 transfers on this flow"},
	}
	for _, tt := range tests {
		code, body, _ := s.get(t, "/flows?"+tt.query)
		if code != tt.code || !strings.Contains(body, tt.says) {
			t.Errorf("GET /flows?%s: %d, want %d saying %q", tt.query, code, tt.code, tt.says)
		}
		if code != 200 && strings.Contains(body, "<script>") && !strings.Contains(body, `<script src="/static/`) {
			t.Errorf("GET /flows?%s echoes markup", tt.query)
		}
	}
}

// lyingActivity is an activity.Reader whose flow lists entries that are
// not its transfers (counts that disagree with the log).
type lyingActivity struct {
	activity.Reader
	e   activity.Edge
	idx []uint64
}

func (l lyingActivity) Flows() []activity.Flow {
	return []activity.Flow{{Edge: l.e, Events: uint64(len(l.idx))}}
}
func (l lyingActivity) Recent(e activity.Edge) []uint64 {
	if e == l.e {
		return l.idx
	}
	return nil
}

// TestFlowSamplesCheckEntries: the page checks each entry it lists is a
// transfer on the flow; counts that disagree with the log are shown as
// such, not passed off as the flow's samples.
func TestFlowSamplesCheckEntries(t *testing.T) {
	s := newSite(t, nil)
	s.add(t, s.workload(1, false)...) // entry 0: US collected, 1: US transferred us-ash-1 → ch-zrh-1
	e := activity.Edge{Region: "US", From: "us-ash-1", To: "ch-zrh-1"}
	s.dash.cfg.Activity = lyingActivity{Reader: s.stats, e: e, idx: []uint64{1, 0, 1 << 40}}
	code, body, _ := s.get(t, flowLink(e, 0))
	rows := sampleRowRE.FindAllStringSubmatch(body, -1)
	if code != 200 || len(rows) != 3 {
		t.Fatalf("%d, %d rows", code, len(rows))
	}
	if rows[0][3] != "" || rows[1][3] == "" || rows[2][3] == "" {
		t.Errorf("problem rows %q, want only the second and third flagged", rows)
	}
	for _, want := range []string{"this entry is not a transfer on this flow (it is US collected at us-ash-1)", "not in the published tree"} {
		if !strings.Contains(body, want) {
			t.Errorf("the page does not say %q", want)
		}
	}
}

// benchActivity is an aggregate of n events: samples of 6 regions, each
// collected at one of 20 data centres, transferred to another, stored,
// analysed and deleted there (5 events a sample), the data centres picked
// at random: about 6 × 20 × 19 = 2,280 flows, whatever n. And a policy
// allowing each region 10 of the 20.
func benchActivity(n int) (*activity.Aggregate, *audit.Policy) {
	regions := []string{"EU", "US", "UK", "ROW", "APAC", "LATAM"}
	var dcs []string
	pol := &audit.Policy{Locations: map[string]audit.Location{}, Regions: map[string]audit.Region{}}
	for i := 0; i < 20; i++ {
		dcs = append(dcs, fmt.Sprintf("dc-%02d", i))
		pol.Locations[dcs[i]] = audit.Location{Country: "CH"}
	}
	for i, r := range regions {
		var allowed []string
		for j := 0; j < 10; j++ {
			allowed = append(allowed, dcs[(i*3+j)%20])
		}
		pol.Regions[r] = audit.Region{Allowed: allowed}
	}
	a := activity.New()
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ev := record.Event{Sample: "smp-x", Actor: "bench/1"}
	for i := 0; i < n; i++ {
		if i%5 == 0 {
			ev.Region = regions[rng.IntN(len(regions))]
			ev.Location = dcs[rng.IntN(len(dcs))]
			ev.To = dcs[rng.IntN(len(dcs))]
			if ev.To == ev.Location {
				ev.To = dcs[(rng.IntN(len(dcs)-1)+1+slices.Index(dcs, ev.Location))%len(dcs)]
			}
		}
		ev.Time = base.Add(time.Duration(i) * 3 * time.Second)
		e := ev
		switch i % 5 {
		case 0:
			e.Action, e.To = record.Collected, ""
		case 1:
			e.Action = record.Transferred
		default:
			e.Action, e.Location, e.To = record.Analysed, ev.To, ""
		}
		a.Add(uint64(i), &e)
	}
	return a, pol
}

// BenchmarkFlowsPage renders GET /flows, over HTTP, with the flows of
// CUSTODY_BENCH_EVENTS events (default 10,000,000; see benchActivity):
// the page's cost depends on the number of flows, not of events.
//
//	go test ./dashboard -run NONE -bench FlowsPage -benchtime 50x
func BenchmarkFlowsPage(b *testing.B) {
	n := 10_000_000
	if s := os.Getenv("CUSTODY_BENCH_EVENTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Now()
	agg, pol := benchActivity(n)
	b.Logf("aggregate of %d events (%d flows, %d transfers) built in %s", agg.Events(), len(agg.Flows()), agg.Transfers(), time.Since(start).Round(time.Millisecond))
	s := startSiteIndex(b, pol, false, false)
	s.dash.cfg.Activity = agg
	var bytes int
	for b.Loop() {
		resp, err := http.Get(s.srv.URL + "/flows")
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("GET /flows = %d", resp.StatusCode)
		}
		bytes = len(body)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/view")
	b.ReportMetric(float64(bytes), "bytes/page")
}

// BenchmarkFlowSamplesPage renders a page of a flow's samples, over HTTP,
// on a log of CUSTODY_BENCH_ENTRIES entries (default 100,000): samples
// collected, transferred, analysed and deleted (4 events each) on 4 flows,
// so each flow keeps activity.MaxRecent transfers. It reads the 50 entries
// it lists, whatever the log's size; pages 1 and 20 (the oldest kept) cost
// the same.
//
//	go test ./dashboard -run NONE -bench FlowSamplesPage -benchtime 200x
func BenchmarkFlowSamplesPage(b *testing.B) {
	n := 100_000
	if s := os.Getenv("CUSTODY_BENCH_ENTRIES"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	s := startSiteIndex(b, testPolicy(b), false, false)
	s.dash.cfg.Activity = s.stats
	edges := []struct{ region, edge string }{{"US", "us-ash-1"}, {"EU", "de-fra-1"}, {"UK", "uk-lon-1"}, {"ROW", "sg-sin-1"}}
	var evs []record.Event
	for i := 0; i < n/4; i++ {
		e := edges[i%len(edges)]
		id := fmt.Sprintf("smp-%07d", i)
		evs = append(evs,
			s.ev(id, e.region, record.Collected, e.edge, "", i%1000),
			s.ev(id, e.region, record.Transferred, e.edge, "ch-zrh-1", i%1000),
			s.ev(id, e.region, record.Analysed, "ch-zrh-1", "", i%1000),
			s.ev(id, e.region, record.Deleted, "ch-zrh-1", "", i%1000))
		if len(evs) >= 4000 {
			if _, err := s.log.AddMany(context.Background(), evs); err != nil {
				b.Fatal(err)
			}
			evs = evs[:0]
		}
	}
	s.add(b, evs...)
	flow := activity.Edge{Region: "EU", From: "de-fra-1", To: "ch-zrh-1"}
	last := (min(n/16, activity.MaxRecent) + FlowSamplesPerPage - 1) / FlowSamplesPerPage
	for _, page := range []int{1, last} {
		b.Run(fmt.Sprintf("page-%d", page), func(b *testing.B) {
			for b.Loop() {
				code, body, _ := s.get(b, flowLink(flow, page))
				if code != 200 || strings.Contains(body, `class="problem"`) {
					b.Fatalf("GET %s = %d", flowLink(flow, page), code)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/view")
		})
	}
}

// TestFlowsManyFlows logs more distinct flows than activity keeps by name
// (activity.MaxEdges, then activity.MaxOther at (region, from, (other))):
// the table still adds up to every transfer, the diagram stays within its
// bounds, and the samples on the flows that sum the rest are listed and
// are their transfers.
func TestFlowsManyFlows(t *testing.T) {
	if testing.Short() {
		t.Skip("logs 4,355 events")
	}
	s := flowSite(t, testPolicy(t))
	n := activity.MaxEdges + activity.MaxOther + 3
	var evs []record.Event
	for i := 0; i < n; i++ {
		evs = append(evs, s.ev(fmt.Sprintf("smp-%05d", i), "EU", record.Transferred, fmt.Sprintf("dc-%05d", i), "ch-zrh-1", i))
	}
	s.add(t, evs...)
	code, body, _ := s.get(t, "/flows")
	if code != 200 {
		t.Fatalf("GET /flows: %d", code)
	}
	rows := flowRowRE.FindAllStringSubmatch(body, -1)
	var sum uint64
	for _, r := range rows {
		sum += atoi(t, r[5])
	}
	if want := activity.MaxEdges + activity.MaxOther + 1; len(rows) != want || sum != uint64(n) {
		t.Errorf("the table has %d flows adding up to %d; want %d flows adding up to %d", len(rows), sum, want, n)
	}
	edges := flowEdgeRE.FindAllStringSubmatch(body, -1)
	if len(edges) == 0 || len(edges) > 200 {
		t.Errorf("the diagram draws %d flow links", len(edges))
	}
	if len(body) > 3<<20 {
		t.Errorf("the page is %d bytes", len(body))
	}
	t.Logf("a page of %d flows: %d bytes", len(rows), len(body))
	tests := []struct {
		e    activity.Edge
		want []string // samples, newest first
	}{
		{activity.Edge{Region: "EU", From: fmt.Sprintf("dc-%05d", activity.MaxEdges), To: activity.OtherKey}, []string{fmt.Sprintf("smp-%05d", activity.MaxEdges)}},
		{activity.Edge{Region: activity.OtherKey, From: activity.OtherKey, To: activity.OtherKey}, []string{fmt.Sprintf("smp-%05d", n-1), fmt.Sprintf("smp-%05d", n-2), fmt.Sprintf("smp-%05d", n-3)}},
	}
	for _, tt := range tests {
		code, body, _ = s.get(t, flowLink(tt.e, 0))
		var got []string
		for _, r := range sampleRowRE.FindAllStringSubmatch(body, -1) {
			got = append(got, r[2])
			if r[3] != "" {
				t.Errorf("flow %v: entry %s flagged as not a transfer on it", tt.e, r[1])
			}
		}
		if code != 200 || !slices.Equal(got, tt.want) {
			t.Errorf("GET %s: %d, samples %q, want %q", flowLink(tt.e, 0), code, got, tt.want)
		}
	}
}

// FuzzFlowQuery checks parseFlowQuery on any query string: what it accepts
// names a flow an event could be on (or an (other) bucket) and a page from
// 1, and flowLink writes an address that reads back as the same; what it
// rejects gets a message that quotes at most 40 bytes of each value.
func FuzzFlowQuery(f *testing.F) {
	for _, s := range []string{"region=EU&from=de-fra-1&to=ch-zrh-1", "region=EU&from=de-fra-1&to=%28other%29&page=3", "region=eu&from=x&to=y", "page=0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		e, page, err := parseFlowQuery(q)
		if err != nil {
			if len(err.Error()) > 400 {
				t.Errorf("message of %d bytes for %q", len(err.Error()), raw)
			}
			return
		}
		for _, n := range []struct {
			s  string
			ok func(string) bool
		}{{e.Region, isRegion}, {e.From, isLocation}, {e.To, isLocation}} {
			if n.s != activity.OtherKey && !n.ok(n.s) {
				t.Errorf("accepted name %q of %q", n.s, raw)
			}
		}
		if page < 1 {
			t.Errorf("accepted page %d of %q", page, raw)
		}
		u, err := url.Parse(flowLink(e, page))
		if err != nil {
			t.Fatal(err)
		}
		e2, page2, err := parseFlowQuery(u.Query())
		if err != nil || e2 != e || page2 != page {
			t.Errorf("flowLink(%v, %d) = %q reads back as %v, %d, %v", e, page, u, e2, page2, err)
		}
	})
}

// TestFlowQuerySeeds checks the checked-in seeds of FuzzFlowQuery
// (testdata/fuzz/FuzzFlowQuery): valid-* are accepted, the rest rejected.
func TestFlowQuerySeeds(t *testing.T) {
	fuzzseeds.Check(t, map[string]func(args []any) error{
		"FuzzFlowQuery": func(args []any) error {
			q, err := url.ParseQuery(args[0].(string))
			if err != nil {
				return err
			}
			_, _, err = parseFlowQuery(q)
			return err
		},
	})
}
