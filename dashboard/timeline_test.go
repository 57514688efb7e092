package dashboard

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/internal/svgchart"
	"github.com/custodylog/custody/internal/witnesshistory"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/store/sqlite"
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

// timelineSite is flowSite (the dashboard's Activity is the site's
// counter, as custody serve sets it) with a witness history read from a
// second handle on the site's store, not followed: the test steps it
// (stepHistory), so it knows what the history has read.
func timelineSite(t testing.TB, policy *audit.Policy) *site {
	t.Helper()
	s := flowSite(t, policy)
	st, err := sqlite.Open(s.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h, err := witnesshistory.New(witnesshistory.Config{Source: st, Log: s.dash.cfg.Verifier, Witnesses: s.dash.cfg.Witnesses})
	if err != nil {
		t.Fatal(err)
	}
	h.AddKnown()
	s.dash.tl.setHistory(h)
	return s
}

// stepHistory reads the store's checkpoints into the site's history.
func (s *site) stepHistory(t testing.TB) {
	t.Helper()
	for {
		n, err := s.dash.tl.hist().Step(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

// eventTimes are the event times of the log's entries, by index, read from
// the log (not from the dashboard).
func eventTimes(t testing.TB, s *site) map[uint64]time.Time {
	t.Helper()
	es, err := s.log.Entries(context.Background(), 0, s.log.Checkpoint().Size)
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint64]time.Time{}
	for _, e := range es {
		ev, err := record.DecodeEntry(e.Data)
		if err != nil {
			t.Fatal(err)
		}
		out[e.Index] = ev.Time
	}
	return out
}

var (
	tlMarkerRE  = regexp.MustCompile(`<a class="marker" href="([^"]+)" data-time="(\d+)" data-id="(\d+)" data-x="([0-9.]+)" data-label="([a-z-]+)">`)
	tlFindingRE = regexp.MustCompile(`<tr data-index="(\d+)" data-kind="([a-z-]+)" data-time="(\d+)">`)
	tlRangeRE   = regexp.MustCompile(`data-testid="range" data-from="(\d+)" data-to="(\d+)"`)
	tlCountRE   = regexp.MustCompile(`<tr data-start="(\d+)"><th scope="row">[^<]*</th>((?:<td>[0-9,]*</td>)+)<td class="total">([0-9,]+)</td>`)
)

func pageRange(t testing.TB, body string) (time.Time, time.Time) {
	t.Helper()
	m := tlRangeRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no range on the page")
	}
	from, _ := strconv.ParseInt(m[1], 10, 64)
	to, _ := strconv.ParseInt(m[2], 10, 64)
	return time.Unix(from, 0).UTC(), time.Unix(to, 0).UTC()
}

// TestTimelinePage: the violations workload's findings are on the page at
// their events' times: as markers at the x of those times, linked to
// their samples, and in the findings table with kind, time and entry; the
// range of the last 24 hours is drawn by hours; the table's numbers add
// up to the log's events.
func TestTimelinePage(t *testing.T) {
	s := timelineSite(t, testPolicy(t))
	evs := s.workload(5, true)
	s.add(t, evs...)
	s.stepHistory(t)
	times := eventTimes(t, s)

	status, body, _ := s.get(t, "/timeline?range=24h")
	if status != 200 {
		t.Fatalf("GET /timeline?range=24h = %d:\n%s", status, body)
	}
	from, to := pageRange(t, body)
	if to.Sub(from) != 24*time.Hour || !strings.Contains(body, "events per hour") {
		t.Errorf("the last 24 hours: %v to %v, by hours %v", from, to, strings.Contains(body, "events per hour"))
	}
	want := map[uint64]audit.Finding{} // by entry; an entry may have several
	kindsAt := map[string]int{}        // "index kind" -> findings
	recent := s.dash.auditor.view(s.log.Checkpoint().Size).Recent
	for _, f := range recent {
		want[f.Index] = f
		kindsAt[fmt.Sprint(f.Index, " ", f.Kind)]++
	}
	if len(want) == 0 {
		t.Fatal("the audit found nothing in the violations workload")
	}
	markers := tlMarkerRE.FindAllStringSubmatch(body, -1)
	if len(markers) != len(recent) {
		t.Fatalf("%d markers, want one per finding (%d)", len(markers), len(recent))
	}
	for _, m := range markers {
		idx, _ := strconv.ParseUint(m[3], 10, 64)
		sec, _ := strconv.ParseInt(m[2], 10, 64)
		f, ok := want[idx]
		if !ok {
			t.Errorf("a marker for entry %d, which has no finding", idx)
			continue
		}
		if !time.Unix(sec, 0).Equal(times[idx]) {
			t.Errorf("finding at entry %d marked at %v, its event is at %v", idx, time.Unix(sec, 0).UTC(), times[idx])
		}
		x, _ := strconv.ParseFloat(m[4], 64)
		if wantX := svgchart.X(from, to, 0, times[idx]); x < wantX-0.06 || x > wantX+0.06 {
			t.Errorf("finding at entry %d drawn at x=%v, want %v", idx, x, wantX)
		}
		if m[1] != "/sample?id="+url.QueryEscape(f.Sample) || kindsAt[fmt.Sprint(idx, " ", m[5])] == 0 {
			t.Errorf("finding at entry %d: link %q, label %q; want sample %s and a kind it has", idx, m[1], m[5], f.Sample)
		}
		kindsAt[fmt.Sprint(idx, " ", m[5])]--
	}
	rows := tlFindingRE.FindAllStringSubmatch(body, -1)
	kinds := map[string]bool{}
	rowKinds := map[string]int{}
	for _, f := range recent {
		rowKinds[fmt.Sprint(f.Index, " ", f.Kind)]++
	}
	for _, r := range rows {
		idx, _ := strconv.ParseUint(r[1], 10, 64)
		sec, _ := strconv.ParseInt(r[3], 10, 64)
		k := fmt.Sprint(idx, " ", r[2])
		rowKinds[k]--
		if rowKinds[k] < 0 || !time.Unix(sec, 0).Equal(times[idx]) {
			t.Errorf("findings table row: entry %d, %s at %v", idx, r[2], time.Unix(sec, 0).UTC())
		}
		kinds[r[2]] = true
	}
	if len(rows) != len(recent) || !kinds["reroute"] || !kinds["continuity"] {
		t.Errorf("the findings table has %d rows of kinds %v, want %d with reroute and continuity", len(rows), kinds, len(recent))
	}
	// The events table adds up to the log's events.
	var sum uint64
	for _, r := range tlCountRE.FindAllStringSubmatch(body, -1) {
		var row uint64
		for _, c := range strings.Split(strings.TrimSuffix(strings.TrimPrefix(r[2], "<td>"), "</td>"), "</td><td>") {
			n, err := strconv.ParseUint(strings.ReplaceAll(c, ",", ""), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			row += n
		}
		if total := atoi(t, r[3]); total != row {
			t.Errorf("bucket %s: cells add up to %d, the row's total says %d", r[1], row, total)
		}
		sum += row
	}
	if sum != uint64(len(evs)) {
		t.Errorf("the events table adds up to %d, the log has %d events", sum, len(evs))
	}
	// The witness freshness: the site's witness cosigned, verified.
	if !regexp.MustCompile(`<tr data-witness="` + regexp.QuoteMeta(testWitnessName) + `" data-gaps="0" data-cosigned="[1-9]\d*" data-last="\d+">`).MatchString(body) {
		t.Errorf("the witness %s is not listed as cosigning in range:\n%s", testWitnessName, body[strings.Index(body, `id="witnesses"`):])
	}
	if !strings.Contains(body, "known to the server, verified") {
		t.Errorf("the witness is not marked verified")
	}
}

// TestTimelineFindingsInRange: a range that ends before the events has no
// markers and no findings; one that holds them has all.
func TestTimelineFindingsInRange(t *testing.T) {
	s := timelineSite(t, testPolicy(t))
	s.add(t, s.workload(3, true)...)
	times := eventTimes(t, s)
	var first time.Time
	for _, tm := range times {
		if first.IsZero() || tm.Before(first) {
			first = tm
		}
	}
	before := first.Add(-time.Minute).Format("2006-01-02T15:04")
	for _, tc := range []struct {
		query    string
		markers  int
		findings bool
	}{
		{"from=2020-01-01&to=" + before, 0, false},
		{"from=" + before, 3, true},
		{"range=all", 3, true},
	} {
		status, body, _ := s.get(t, "/timeline?"+tc.query)
		if status != 200 {
			t.Fatalf("%s: status %d", tc.query, status)
		}
		if n := len(tlMarkerRE.FindAllString(body, -1)); n != tc.markers {
			t.Errorf("%s: %d markers, want %d", tc.query, n, tc.markers)
		}
		if got := strings.Contains(body, `data-testid="timeline-findings"`); got != tc.findings {
			t.Errorf("%s: findings table %v, want %v", tc.query, got, tc.findings)
		}
	}
}

// TestTimelineResolution: the resolution follows the span (hours for up to
// three days within the hourly window, days otherwise) and a long span is
// drawn in wider buckets.
func TestTimelineResolution(t *testing.T) {
	s := timelineSite(t, nil)
	s.add(t, s.workload(2, false)...)
	now := time.Now().UTC()
	for _, tc := range []struct {
		query, bucket string
	}{
		{"range=24h", "hour"},
		{"range=7d", "day"},
		{"range=30d", "day"},
		{"from=" + now.Add(-48*time.Hour).Format(time.DateOnly) + "&to=" + now.Format(time.DateOnly), "hour"},
		{"from=2000-01-01&to=2019-12-31", "19 days"},
	} {
		status, body, _ := s.get(t, "/timeline?"+tc.query)
		if status != 200 {
			t.Fatalf("%s: status %d", tc.query, status)
		}
		if !strings.Contains(body, "events per "+tc.bucket+".") {
			t.Errorf("%s: not drawn per %s", tc.query, tc.bucket)
		}
	}
}

func TestParseRange(t *testing.T) {
	now := time.Date(2026, 12, 7, 14, 32, 10, 0, time.UTC)
	first, last := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), time.Date(2026, 12, 6, 23, 59, 59, 0, time.UTC)
	span := func() (time.Time, time.Time, bool) { return first, last, true }
	day := func(s string) time.Time { t, _ := time.Parse(time.DateOnly, s); return t }
	for _, tc := range []struct {
		query    string
		from, to time.Time
		preset   string
		err      string
	}{
		{"", day("2026-12-01"), day("2026-12-08"), "7d", ""},
		{"range=24h", time.Date(2026, 12, 6, 15, 0, 0, 0, time.UTC), time.Date(2026, 12, 7, 15, 0, 0, 0, time.UTC), "24h", ""},
		{"range=30d", day("2026-11-08"), day("2026-12-08"), "30d", ""},
		{"range=all", day("2026-03-01"), day("2026-12-07"), "all", ""},
		{"from=2026-11-01&to=2026-11-30", day("2026-11-01"), day("2026-12-01"), "", ""},
		{"from=2026-11-01T06:30&to=2026-11-01T18:00:05", time.Date(2026, 11, 1, 6, 30, 0, 0, time.UTC), time.Date(2026, 11, 1, 18, 0, 5, 0, time.UTC), "", ""},
		{"from=2026-11-01T06:30:00%2B02:00&to=2026-11-02", time.Date(2026, 11, 1, 4, 30, 0, 0, time.UTC), day("2026-11-03"), "", ""},
		{"from=2026-12-01", day("2026-12-01"), day("2026-12-08"), "", ""},
		{"to=2026-11-30", day("2026-11-24"), day("2026-12-01"), "", ""},
		{"range=1y", time.Time{}, time.Time{}, "", `range="1y" is not a preset range; use one of 24h, 7d, 30d, all.`},
		{"range=24h&from=2026-11-01", time.Time{}, time.Time{}, "", "not both"},
		{"from=yesterday", time.Time{}, time.Time{}, "", `from="yesterday" is not a date (YYYY-MM-DD)`},
		{"to=2026-13-01", time.Time{}, time.Time{}, "", `to="2026-13-01" is not a date`},
		{"from=2026-11-02&to=2026-11-01", time.Time{}, time.Time{}, "", "ends (2026-11-02 00:00:00 UTC) before it starts (2026-11-02 00:00:00 UTC)"},
		{"from=1960-01-01&to=2026-01-01", time.Time{}, time.Time{}, "", "outside the years 1970 to 9999"},
		{"from=1980-01-01&to=2026-01-01", time.Time{}, time.Time{}, "", "longer than the 20 years"},
		{"from=" + strings.Repeat("9", 200), time.Time{}, time.Time{}, "", `is not a date`},
	} {
		q, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		r, err := parseRange(q, now, span)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want one saying %q", tc.query, err, tc.err)
			}
			if err != nil && len(err.Error()) > 300 {
				t.Errorf("%q: error of %d bytes", tc.query, len(err.Error()))
			}
			continue
		}
		if err != nil || !r.From.Equal(tc.from) || !r.To.Equal(tc.to) || r.Preset != tc.preset {
			t.Errorf("%q: %v to %v (%q), %v; want %v to %v (%q)", tc.query, r.From, r.To, r.Preset, err, tc.from, tc.to, tc.preset)
		}
	}
	// "all" without events: the last 7 days.
	r, err := parseRange(url.Values{"range": {"all"}}, now, func() (time.Time, time.Time, bool) { return time.Time{}, time.Time{}, false })
	if err != nil || !r.From.Equal(day("2026-12-01")) || !r.To.Equal(day("2026-12-08")) {
		t.Errorf("all without events: %v to %v, %v", r.From, r.To, err)
	}
}

// TestTimelineBadRequests: bad parameters get a 400 page that says what is
// wrong, escaped.
func TestTimelineBadRequests(t *testing.T) {
	s := timelineSite(t, nil)
	s.add(t, s.workload(1, false)...)
	for _, tc := range []struct{ query, says string }{
		{"range=week", "is not a preset range"},
		{"range=7d&to=2026-01-01", "not both"},
		{"from=%3Cscript%3E", `from=&#34;&lt;script&gt;&#34; is not a date`},
		{"from=2026-02-30", "is not a date"},
		{"from=2026-05-01&to=2026-04-01", "before it starts"},
	} {
		status, body, _ := s.get(t, "/timeline?"+tc.query)
		if status != http.StatusBadRequest || !strings.Contains(body, tc.says) || !strings.Contains(body, "Bad time range") {
			t.Errorf("%s: status %d, body says %q: want 400 and %q", tc.query, status, body[strings.Index(body, "<h1>"):min(len(body), strings.Index(body, "<h1>")+300)], tc.says)
		}
		if strings.Contains(body, "<script>") {
			t.Errorf("%s: unescaped", tc.query)
		}
	}
}

// TestTimelineWithoutActivityOrHistory: a server that keeps neither still
// serves the page, saying so.
func TestTimelineWithoutActivityOrHistory(t *testing.T) {
	s := newSite(t, nil)
	s.add(t, s.workload(1, false)...)
	s.dash.cfg.Activity = nil
	status, body, _ := s.get(t, "/timeline")
	if status != 200 || !strings.Contains(body, "keeps no activity counts") || !strings.Contains(body, "does not keep a history of its checkpoints") {
		t.Errorf("status %d; the page does not say what it lacks", status)
	}
}

// TestTimelineReadsBounded: a page view does not read the store's
// checkpoints (the history is in memory) and reads the findings' entries
// once: the second view of the same findings reads none.
func TestTimelineReadsBounded(t *testing.T) {
	s := timelineSite(t, testPolicy(t))
	s.add(t, s.workload(4, true)...)
	s.stepHistory(t)
	reads := s.dash.tl.hist().Reads()
	s.get(t, "/timeline?range=24h")
	s.dash.tl.mu.Lock()
	known := len(s.dash.tl.times)
	for i := range s.dash.tl.times {
		s.dash.tl.times[i] = s.dash.tl.times[i].Add(time.Nanosecond) // marks them as read from the cache
	}
	s.dash.tl.mu.Unlock()
	s.get(t, "/timeline?range=24h")
	if got := s.dash.tl.hist().Reads(); got != reads {
		t.Errorf("two page views read the store's checkpoints %d times", got-reads)
	}
	if known == 0 {
		t.Fatal("no finding times were read")
	}
	s.dash.tl.mu.Lock()
	defer s.dash.tl.mu.Unlock()
	for i, tm := range s.dash.tl.times {
		if tm.Nanosecond() != 1 {
			t.Errorf("entry %d's time was read again", i)
		}
	}
}

// checkpointList is a CheckpointStore of given checkpoints.
type checkpointList []store.Checkpoint

func (l checkpointList) Checkpoints(ctx context.Context, from uint64, limit int) ([]store.Checkpoint, error) {
	var out []store.Checkpoint
	for _, c := range l {
		if c.Size >= from && len(out) < limit {
			out = append(out, c)
		}
	}
	return out, nil
}

func (l checkpointList) Checkpoint(ctx context.Context, size uint64) (store.Checkpoint, error) {
	for _, c := range l {
		if c.Size == size {
			return c, nil
		}
	}
	return store.Checkpoint{}, store.ErrNotFound
}

// TestTimelineWitnessGap: two witnesses cosign a checkpoint a day; the
// second stops after five days. The page shows the second's gap (the days
// the first went on without it), in the strip and in the table, and not
// the first's.
func TestTimelineWitnessGap(t *testing.T) {
	s := newSite(t, nil)
	s.add(t, s.workload(1, false)...)
	day0 := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -10)
	var clock time.Time
	var signers []note.Signer
	for _, name := range []string{"a.witness.test", "b.witness.test"} {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		signers = append(signers, verify.NewCosignatureSigner(name, priv, func() time.Time { return clock }))
	}
	var cps checkpointList
	for d := 0; d < 10; d++ {
		clock = day0.AddDate(0, 0, d).Add(9 * time.Hour)
		by := signers
		if d >= 5 {
			by = signers[:1]
		}
		msg, err := note.Sign(&note.Note{Text: fmt.Sprintf("%s\n%d\nAAAA\n", testOrigin, d+1)}, by...)
		if err != nil {
			t.Fatal(err)
		}
		cps = append(cps, store.Checkpoint{Size: uint64(d + 1), Note: msg})
	}
	h, err := witnesshistory.New(witnesshistory.Config{Source: cps, Log: s.dash.cfg.Verifier})
	if err != nil {
		t.Fatal(err)
	}
	s.dash.tl.setHistory(h)
	s.stepHistory(t)
	activity := s.dash.cfg.Activity
	s.dash.cfg.Activity = nil // first without the growth
	q := "/timeline?from=" + day0.Format(time.DateOnly) + "&to=" + day0.AddDate(0, 0, 11).Format(time.DateOnly)
	status, body, _ := s.get(t, q)
	if status != 200 {
		t.Fatalf("GET %s = %d", q, status)
	}
	gapRow := `<tr data-witness="b.witness.test" data-gaps="5" data-cosigned="5" data-last="` + fmt.Sprint(day0.AddDate(0, 0, 4).Add(9*time.Hour).Unix()) + `">`
	if !strings.Contains(body, gapRow) || !strings.Contains(body, `<tr data-witness="a.witness.test" data-gaps="0" data-cosigned="10"`) {
		t.Errorf("the witness table does not show b's 5 days' gap and a's none:\n%s", body[strings.Index(body, `id="witnesses"`):])
	}
	if want := utc(day0.AddDate(0, 0, 5)) + " to " + utc(day0.AddDate(0, 0, 10)); !strings.Contains(body, want) {
		t.Errorf("the gap's span %q is not on the page", want)
	}
	if n := strings.Count(body, `class="gap"`); n != 5 {
		t.Errorf("%d gap cells drawn, want 5", n)
	}
	if !strings.Contains(body, "unknown key, not verified") {
		t.Errorf("witnesses the server does not know are not marked unverified")
	}

	// A day on which events were logged is active too: today the log
	// grew (the workload) and neither witness cosigned a stored
	// checkpoint, so both have a gap today.
	if activity == nil {
		activity = s.stats
	}
	s.dash.cfg.Activity = activity
	_, body, _ = s.get(t, q)
	for _, w := range []string{`"a.witness.test" data-gaps="1"`, `"b.witness.test" data-gaps="6"`} {
		if !strings.Contains(body, `<tr data-witness=`+w) {
			t.Errorf("with today's growth: no row %s", w)
		}
	}
}

// BenchmarkTimelinePage renders GET /timeline over HTTP with an aggregate
// of CUSTODY_BENCH_EVENTS events (default 10,000,000: a year of events at
// 20 data centres, benchActivity) and a witness history of the same year
// (three witnesses, a checkpoint every 6 hours), for the last 30 days, all
// (a year, by day) and the last 24 hours (by hour).
//
//	go test ./dashboard -run NONE -bench TimelinePage -benchtime 50x
func BenchmarkTimelinePage(b *testing.B) {
	n := 10_000_000
	if s := os.Getenv("CUSTODY_BENCH_EVENTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Now()
	agg, pol := benchActivity(n)
	first, last, _ := agg.Span()
	b.Logf("aggregate of %d events from %s to %s built in %s", agg.Events(), first.Format(time.DateOnly), last.Format(time.DateOnly), time.Since(start).Round(time.Millisecond))
	s := startSiteIndex(b, pol, true, false)
	s.dash.cfg.Activity = agg
	s.dash.cfg.Now = func() time.Time { return last }
	// A witness history of the same year: a checkpoint every 6 hours,
	// cosigned by three witnesses, one of which stopped half-way.
	var clock time.Time
	var signers []note.Signer
	for _, name := range []string{"a.witness.test", "b.witness.test", "c.witness.test"} {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		signers = append(signers, verify.NewCosignatureSigner(name, priv, func() time.Time { return clock }))
	}
	var cps checkpointList
	for at := first; at.Before(last); at = at.Add(6 * time.Hour) {
		clock = at
		by := signers
		if at.Sub(first) > last.Sub(at) {
			by = signers[:2]
		}
		msg, err := note.Sign(&note.Note{Text: fmt.Sprintf("%s\n%d\nAAAA\n", testOrigin, len(cps)+1)}, by...)
		if err != nil {
			b.Fatal(err)
		}
		cps = append(cps, store.Checkpoint{Size: uint64(len(cps) + 1), Note: msg})
	}
	h, err := witnesshistory.New(witnesshistory.Config{Source: cps, Log: s.dash.cfg.Verifier})
	if err != nil {
		b.Fatal(err)
	}
	s.dash.tl.setHistory(h)
	s.stepHistory(b)
	for _, q := range []string{"range=30d", "range=all", "range=24h"} {
		b.Run(strings.TrimPrefix(q, "range="), func(b *testing.B) {
			var size int
			for b.Loop() {
				resp, err := http.Get(s.srv.URL + "/timeline?" + q)
				if err != nil {
					b.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("GET /timeline?%s = %d", q, resp.StatusCode)
				}
				size = len(body)
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/view")
			b.ReportMetric(float64(size), "bytes/page")
		})
	}
}

// TestTimelineHistoryRestart: the witness history saved in the site's
// SQLite store (store.Aggregator) is restored by a new history, which then
// reads the store once to check it and once to find nothing new, instead
// of every checkpoint again; and shows the same.
func TestTimelineHistoryRestart(t *testing.T) {
	s := newSite(t, nil)
	for i := 0; i < 5; i++ {
		s.add(t, s.workload(2, false)[i*8:(i+1)*8]...)
	}
	st, err := sqlite.Open(s.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := witnesshistory.Config{Source: st, Aggregates: st, Log: s.dash.cfg.Verifier, Witnesses: s.dash.cfg.Witnesses, Page: 2}
	h1, _ := witnesshistory.New(cfg)
	s.dash.tl.setHistory(h1)
	s.stepHistory(t)
	if err := h1.Save(context.Background()); err != nil {
		t.Fatal(err)
	}
	h2, _ := witnesshistory.New(cfg)
	size, err := h2.Load(context.Background())
	if err != nil || size != s.log.Checkpoint().Size {
		t.Fatalf("Load: size %d, %v; want %d", size, err, s.log.Checkpoint().Size)
	}
	s.dash.tl.setHistory(h2)
	s.stepHistory(t)
	if h1.Reads() < 5 || h2.Reads() != 2 {
		t.Errorf("the first history read the store %d times, the restored one %d; want at least 5 and 2", h1.Reads(), h2.Reads())
	}
	from, to := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	v1, v2 := h1.View(from, to, 0), h2.View(from, to, 0)
	if v2.Restored != size || v1.Checkpoints != v2.Checkpoints || len(v2.Witnesses) != 1 || v1.Witnesses[0].Cosigned != v2.Witnesses[0].Cosigned || !v2.Witnesses[0].Known {
		t.Errorf("restored %+v, read %+v", v2, v1)
	}
}
