package dashboard

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/stats"
)

// regionName is the i-th of many distinct region names ("RAAAA", …).
func regionName(i int) string {
	b := []byte("RAAAA")
	for j := len(b) - 1; j > 0 && i > 0; j-- {
		b[j] = 'A' + byte(i%26)
		i /= 26
	}
	return string(b)
}

// floodKeys returns n events, each with a region and a location no other
// event has (n distinct pairs, n regions, n locations); the first events
// repeat, so that the top regions and locations are well defined.
func (s *site) floodKeys(n int) []record.Event {
	var out []record.Event
	for i := 0; i < n; i++ {
		ev := s.ev(fmt.Sprintf("flood-%d", i), regionName(i), record.Stored, fmt.Sprintf("x-%04d", i), "", i%60)
		out = append(out, ev)
		for k := 0; k < (20-i)/2; k++ { // regions 0..19 have more events
			ev.Actor = fmt.Sprintf("again-%d", k)
			out = append(out, ev)
		}
	}
	return out
}

// anyCellRE matches every chart cell, the "other" ones included.
var anyCellRE = regexp.MustCompile(`<g class="cell [a-z]+( other)?" data-region="([^"]+)" data-location="([^"]+)" data-count="(\d+)"`)

// TestChartBoundedWithManyKeys: a token holder logs 600 events with 600
// distinct regions and locations. GET / used to draw 600 × 600 cells
// (147 MB, 19 s); the chart now has the policy's regions and locations,
// the top few others, and one "other" row and column holding the rest,
// so the page stays small, and the counts still add up to the tree.
func TestChartBoundedWithManyKeys(t *testing.T) {
	p := testPolicy(t)
	s := startSite(t, p, false)
	work := s.workload(3, true)
	flood := s.floodKeys(600)
	s.add(t, work...)
	s.add(t, flood...)

	status, body, _ := s.get(t, "/")
	if status != 200 {
		t.Fatalf("GET / = %d", status)
	}
	maxRows := len(p.Regions) + ChartExtraRegions + 1
	maxCols := len(p.Locations) + ChartExtraLocations + 1
	cells := anyCellRE.FindAllStringSubmatch(body, -1)
	if len(cells) != maxRows*maxCols {
		t.Errorf("%d cells, want %d × %d", len(cells), maxRows, maxCols)
	}
	t.Logf("GET / with %d cells: %d bytes", len(cells), len(body))
	// About 1 KB per cell (SVG and table) and 64 KB for the rest.
	if limit := 64<<10 + maxRows*maxCols*1024; len(body) > limit {
		t.Errorf("GET / is %d bytes, want at most %d", len(body), limit)
	}

	logCounts := s.stats.Counts()
	var total, other uint64
	shownRegions := map[string]bool{}
	shownLocations := map[string]bool{}
	for _, c := range cells {
		n, _ := strconv.ParseUint(c[4], 10, 64)
		total += n
		region, loc := c[2], c[3]
		if c[1] != "" {
			other += n
			if region != OtherLabel && loc != OtherLabel {
				t.Errorf("cell %s/%s is marked other", region, loc)
			}
			if n > 0 && !strings.Contains(c[0], "forbidden") {
				t.Errorf("other cell %s/%s with %d events is not drawn as outside the policy", region, loc, n)
			}
			continue
		}
		shownRegions[region], shownLocations[loc] = true, true
		if n != logCounts[region][loc] {
			t.Errorf("cell %s/%s shows %d, the log counts %d", region, loc, n, logCounts[region][loc])
		}
	}
	size := s.log.Checkpoint().Size
	if total != size {
		t.Errorf("the cells add up to %d, the tree has %d entries", total, size)
	}
	// The other bucket holds exactly the events of the names not shown.
	var wantOther uint64
	for r, m := range logCounts {
		for l, n := range m {
			if !shownRegions[r] || !shownLocations[l] {
				wantOther += n
			}
		}
	}
	if other != wantOther || other == 0 {
		t.Errorf("the other row and column hold %d events, want %d", other, wantOther)
	}
	// The policy's names and the busiest others are shown one by one.
	for r := range p.Regions {
		if !shownRegions[r] {
			t.Errorf("policy region %s is not shown", r)
		}
	}
	for l := range p.Locations {
		if !shownLocations[l] {
			t.Errorf("policy location %s is not shown", l)
		}
	}
	for i := 0; i < ChartExtraRegions; i++ {
		if !shownRegions[regionName(i)] {
			t.Errorf("busy region %s is not shown", regionName(i))
		}
	}
	// stats.Counter keeps MaxRegions region names (the policy's 4 and
	// the first flood ones); the rest it counts under stats.OtherKey.
	wantNote := fmt.Sprintf(`data-other-regions="%d" data-other-locations="%d" data-other-beyond="true"`,
		stats.MaxRegions-len(p.Regions)-ChartExtraRegions, 600-ChartExtraLocations)
	if !strings.Contains(body, wantNote) {
		t.Errorf("the page does not say how many names are in the other bucket (%s)", wantNote)
	}
	if want := fmt.Sprintf("%d events", size); !strings.Contains(body, num(size)+" events") {
		t.Errorf("the page does not give the total (%s)", want)
	}
}

// TestIndexPageCached: the front page is built once per checkpoint (and
// progress of the counts and the audit); views in between get the same
// bytes, and a new checkpoint gives a new page.
func TestIndexPageCached(t *testing.T) {
	s := startSite(t, testPolicy(t), false)
	s.add(t, s.workload(2, false)...)
	builds := func() int {
		s.dash.index.mu.Lock()
		defer s.dash.index.mu.Unlock()
		return s.dash.index.builds
	}
	_, first, _ := s.get(t, "/")
	b0 := builds()
	for i := 0; i < 5; i++ {
		if _, again, _ := s.get(t, "/"); again != first {
			t.Fatal("a second view of the same checkpoint differs from the first")
		}
	}
	if got := builds(); got != b0 {
		t.Errorf("%d page builds for 5 views of one checkpoint, want none", got-b0)
	}
	s.add(t, s.ev("smp-new", "EU", record.Collected, "de-fra-1", "", 1))
	_, next, _ := s.get(t, "/")
	if builds() != b0+1 || next == first || !strings.Contains(next, "smp-new") {
		t.Errorf("after a new checkpoint: %d builds, page changed %v", builds()-b0, next != first)
	}
	// Many concurrent views of a new checkpoint: one build, one page.
	s.add(t, s.ev("smp-newer", "EU", record.Collected, "de-fra-1", "", 2))
	pages := make(chan string, 16)
	for i := 0; i < cap(pages); i++ {
		go func() {
			resp, err := http.Get(s.srv.URL + "/")
			if err != nil {
				pages <- err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			pages <- string(b)
		}()
	}
	one := <-pages
	for i := 1; i < cap(pages); i++ {
		if p := <-pages; p != one {
			t.Fatal("concurrent views of one checkpoint got different pages")
		}
	}
	if got := builds(); got != b0+2 || !strings.Contains(one, "smp-newer") {
		t.Errorf("%d builds for %d concurrent views of a new checkpoint, want 1", got-b0-1, cap(pages))
	}
}

// TestStatsOtherKeyFoldsIntoOther: events stats.Counter counts under
// stats.OtherKey (beyond its own bounds) land in the chart's other bucket,
// never in a row or column of their own.
func TestStatsOtherKeyFoldsIntoOther(t *testing.T) {
	if OtherLabel != stats.OtherKey {
		t.Fatalf("OtherLabel %q, stats.OtherKey %q", OtherLabel, stats.OtherKey)
	}
	p := testPolicy(t)
	s := startSite(t, p, false)
	s.add(t, s.floodKeys(stats.MaxRegions+30)...)
	if s.stats.Counts()[stats.OtherKey] == nil {
		t.Fatal("stats.Counter has no other row; the test needs more regions")
	}
	v := s.dash.chartView()
	var sum uint64
	for i, r := range v.Regions {
		if r == OtherLabel && i != len(v.Regions)-1 {
			t.Errorf("other is row %d of %d, want the last", i, len(v.Regions))
		}
		sum += v.RowTotals[i]
	}
	if sum != s.log.Checkpoint().Size || v.Total != sum {
		t.Errorf("rows add up to %d (total %d), tree size %d", sum, v.Total, s.log.Checkpoint().Size)
	}
}

// TestSamplePageBounded: a sample with more events than MaxChain shows the
// first MaxChain (each proof checked), says how many there are, and links
// to the API's page with the rest; the page's size is bounded by MaxChain,
// not by the sample. The valid sample ID ".." works too.
func TestSamplePageBounded(t *testing.T) {
	s := startSite(t, testPolicy(t), false)
	n := MaxChain + 200
	var evs []record.Event
	for i := 0; i < n; i++ {
		ev := s.ev("..", "EU", record.Stored, "ch-zrh-1", "", i%60)
		ev.Actor = fmt.Sprintf("a-%d", i)
		evs = append(evs, ev)
	}
	s.add(t, evs...)
	status, body, _ := s.get(t, "/sample?id=..")
	if status != 200 {
		t.Fatalf("GET /sample?id=.. = %d", status)
	}
	if !strings.Contains(body, fmt.Sprintf(`data-events="%d" data-all-included="true"`, MaxChain)) {
		t.Errorf("the page does not show %d events, all included", MaxChain)
	}
	more := fmt.Sprintf(`href="/v1/samples/%%2E%%2E?after=%d&amp;size=%d"`, MaxChain-1, n)
	if !strings.Contains(body, more) || !strings.Contains(body, fmt.Sprintf("the first %d of %d shown", MaxChain, n)) {
		t.Errorf("the page does not link to the rest (%s)", more)
	}
	// About 4 KB per event (event, hashes, proof) and 64 KB for the rest.
	if limit := 64<<10 + MaxChain*4096; len(body) > limit {
		t.Errorf("the sample page is %d bytes, want at most %d", len(body), limit)
	}
	// The link works: the API's next page holds the other 200.
	status, api, _ := s.get(t, fmt.Sprintf("/v1/samples/%%2E%%2E?after=%d&size=%d", MaxChain-1, n))
	if status != 200 || strings.Count(api, `"index":`) != 200 {
		t.Errorf("the API page after the dashboard's: %d, %d events", status, strings.Count(api, `"index":`))
	}
}
