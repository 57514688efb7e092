package svgchart

import (
	"encoding/xml"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/custodylog/custody/activity"
)

// updateTimeline rewrites the golden SVGs of the time charts; so does the
// package's -update flag, if some test file defines one.
var updateTimeline = flag.Bool("update-timeline", false, "rewrite the golden time charts in testdata/timeline_*.svg")

func updating() bool {
	if *updateTimeline {
		return true
	}
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

var t0 = time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)

func hour(n int) time.Time { return t0.Add(time.Duration(n) * time.Hour) }

// barRE matches a bar of a Timeline.
var barRE = regexp.MustCompile(`<rect x="([0-9.]+)" y="[0-9.]+" width="([0-9.]+)" height="([0-9.]+)" data-t="(\d+)" data-n="(\d+)"/>`)

// markerRE matches a marker of a Timeline and its triangle's tip.
var markerRE = regexp.MustCompile(`<(a|g) class="marker"(?: href="([^"]*)")? data-time="(\d+)" data-id="([^"]*)" data-x="([0-9.]+)" data-label="[^"]*"><title>([^<]*)</title><line [^>]*/><path d="M[0-9.]+ [0-9.]+L[0-9.]+ [0-9.]+L([0-9.]+) ([0-9.]+)Z"`)

func near(a, b float64) bool { return math.Abs(a-b) <= 0.051 }

func parse(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// wellFormed checks svg is one well-formed XML element.
func wellFormed(t *testing.T, svg string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(svg))
	for {
		_, err := d.Token()
		if err != nil {
			if err.Error() == "EOF" {
				return
			}
			t.Fatalf("the SVG is not well-formed XML: %v", err)
		}
	}
}

// TestTimelineBars: each count is a bar in its data centre's row, at the x
// of its bucket's start, as tall as its share of the largest count; rows
// are by name; the layout sums are the input's.
func TestTimelineBars(t *testing.T) {
	in := TimelineInput{From: t0, To: hour(24), Bucket: time.Hour, Counts: []activity.Bucket{
		{Start: hour(0), Location: "de-fra-1", Events: 4},
		{Start: hour(3), Location: "de-fra-1", Events: 8},
		{Start: hour(3), Location: "ch-zrh-1", Events: 2},
		{Start: hour(23), Location: "ch-zrh-1", Events: 1},
		{Start: hour(24), Location: "ch-zrh-1", Events: 99}, // out of range
		{Start: hour(-1), Location: "us-ash-1", Events: 99}, // out of range
	}}
	lay := LayoutTimeline(in)
	if lay.Bucket != time.Hour || len(lay.Starts) != 24 || lay.Total != 15 || lay.Max != 8 {
		t.Fatalf("layout: bucket %v, %d buckets, total %d, max %d; want 1h, 24, 15, 8", lay.Bucket, len(lay.Starts), lay.Total, lay.Max)
	}
	if len(lay.Rows) != 2 || lay.Rows[0].Location != "ch-zrh-1" || lay.Rows[1].Location != "de-fra-1" {
		t.Fatalf("rows %+v, want ch-zrh-1 then de-fra-1", lay.Rows)
	}
	if e := lay.Rows[1].Events; e[0] != 4 || e[3] != 8 || lay.Rows[1].Total != 12 {
		t.Errorf("de-fra-1 events %v", e)
	}
	svg := string(Timeline(in))
	wellFormed(t, svg)
	bars := barRE.FindAllStringSubmatch(svg, -1)
	if len(bars) != 4 {
		t.Fatalf("%d bars drawn, want 4:\n%s", len(bars), svg)
	}
	want := map[string]bool{"0 4": true, "3 8": true, "3 2": true, "23 1": true}
	for _, m := range bars {
		start, _ := strconv.ParseInt(m[4], 10, 64)
		st := time.Unix(start, 0)
		key := fmt.Sprintf("%d %s", int(st.Sub(t0)/time.Hour), m[5])
		if !want[key] {
			t.Errorf("unexpected bar (hour, events) %s", key)
		}
		delete(want, key)
		if x := parse(t, m[1]); !near(x, X(t0, hour(24), 0, st)) {
			t.Errorf("bar at hour %s drawn at x=%v, want %v", key, x, X(t0, hour(24), 0, st))
		}
		n, _ := strconv.ParseFloat(m[5], 64)
		if h := parse(t, m[3]); !near(h, math.Max(1, n/8*barMaxH)) {
			t.Errorf("bar %s is %v high, want %v", key, h, n/8*barMaxH)
		}
	}
	if len(want) != 0 {
		t.Errorf("bars not drawn: %v", want)
	}
}

// TestTimelineMarkers: each marker's triangle points at the x of its time;
// markers outside the range are not drawn; a link that is not a path or
// fragment is not made; labels and titles are escaped.
func TestTimelineMarkers(t *testing.T) {
	from, to := t0, t0.Add(7*24*time.Hour)
	times := []time.Time{t0.Add(90 * time.Minute), t0.Add(3*24*time.Hour + 17*time.Minute), t0.Add(3*24*time.Hour + 18*time.Minute), to.Add(-time.Second)}
	var ms []Marker
	for i, tm := range times {
		ms = append(ms, Marker{Time: tm, Label: "reroute", Title: fmt.Sprintf("finding %d <b>", i), Href: fmt.Sprintf("/sample?id=smp-%d&x=1", i), ID: strconv.Itoa(i)})
	}
	ms = append(ms,
		Marker{Time: to, Label: "late", Href: "/sample?id=out"},                     // To is excluded
		Marker{Time: from.Add(-time.Second), Label: "late", Href: "/sample?id=out"}, // before From
		Marker{Time: t0.Add(time.Hour), Label: "x", Href: "javascript:alert(1)", ID: "js"},
		Marker{Time: t0.Add(time.Hour), Label: "x", Href: "//evil.example/", ID: "host"},
	)
	svg := string(Timeline(TimelineInput{From: from, To: to, Bucket: 24 * time.Hour, Markers: ms}))
	wellFormed(t, svg)
	found := markerRE.FindAllStringSubmatch(svg, -1)
	if len(found) != 6 {
		t.Fatalf("%d markers drawn, want 6 (4 linked in range, 2 unlinked):\n%s", len(found), svg)
	}
	for _, m := range found {
		sec, _ := strconv.ParseInt(m[3], 10, 64)
		want := X(from, to, 0, time.Unix(sec, 0))
		if x, tip := parse(t, m[5]), parse(t, m[7]); !near(x, want) || !near(tip, want) {
			t.Errorf("marker %s at %v: data-x %v, tip %v, want %v", m[4], time.Unix(sec, 0).UTC(), x, tip, want)
		}
		switch m[4] {
		case "js", "host":
			if m[1] != "g" || m[2] != "" {
				t.Errorf("marker %s with an unsafe link is linked (%s %q)", m[4], m[1], m[2])
			}
		default:
			i, _ := strconv.Atoi(m[4])
			if m[1] != "a" || m[2] != fmt.Sprintf("/sample?id=smp-%d&amp;x=1", i) {
				t.Errorf("marker %s links to %q (%s)", m[4], m[2], m[1])
			}
			if m[6] != fmt.Sprintf("finding %d &lt;b&gt;", i) {
				t.Errorf("marker %s title %q: not escaped", m[4], m[6])
			}
			if time.Unix(sec, 0).UTC() != times[i] {
				t.Errorf("marker %s data-time %v, want %v", m[4], time.Unix(sec, 0), times[i])
			}
		}
	}
	// The last marker, near the right edge, has its label on its left,
	// inside the chart; the others on their right.
	for _, m := range markerRE.FindAllStringIndex(svg, -1) {
		seg := svg[m[0]:]
		seg = seg[:strings.Index(seg, "</text>")]
		left := strings.Contains(seg, `text-anchor="end"`)
		if last := strings.Contains(seg, `data-id="3"`); left != last {
			t.Errorf("marker %q: label on the left %v", seg[:60], left)
		}
	}
	if strings.Contains(svg, "id=out") {
		t.Errorf("a marker outside the range is drawn")
	}
	// Two markers a minute apart get different lanes (their labels would
	// overlap), so both stay readable.
	tips := map[string]string{}
	for _, m := range found {
		tips[m[4]] = m[8]
	}
	if tips["1"] == tips["2"] {
		t.Errorf("markers 1 and 2, a minute apart, share the lane at y=%s", tips["1"])
	}
}

// TestTimelineBounds: many data centres, a long span and many markers are
// drawn within the bounds, and nothing is lost from the sums.
func TestTimelineBounds(t *testing.T) {
	from := t0.AddDate(-10, 0, 0)
	var counts []activity.Bucket
	var total uint64
	for d := from; d.Before(t0); d = d.Add(24 * time.Hour) {
		for l := 0; l < 100; l += 7 {
			n := uint64(l + 1)
			counts = append(counts, activity.Bucket{Start: d, Location: fmt.Sprintf("dc-%03d", l), Events: n})
			total += n
		}
	}
	for l := 0; l < 100; l++ {
		counts = append(counts, activity.Bucket{Start: from, Location: fmt.Sprintf("xx-%03d", l), Events: 1})
		total++
	}
	counts = append(counts, activity.Bucket{Start: from, Location: activity.OtherKey, Events: 5})
	total += 5
	var ms []Marker
	for i := 0; i < 2*MaxMarkers; i++ {
		ms = append(ms, Marker{Time: from.Add(time.Duration(i) * time.Hour), Label: "reroute", Href: "/sample?id=s"})
	}
	in := TimelineInput{From: from, To: t0, Bucket: 24 * time.Hour, Counts: counts, Markers: ms}
	lay := LayoutTimeline(in)
	if len(lay.Starts) > MaxBuckets || len(lay.Rows) != MaxTimelineRows+1 {
		t.Fatalf("%d buckets, %d rows; want at most %d and %d", len(lay.Starts), len(lay.Rows), MaxBuckets, MaxTimelineRows+1)
	}
	if lay.Bucket%(24*time.Hour) != 0 || lay.Bucket < 10*24*time.Hour {
		t.Errorf("ten years at most %d buckets: bucket %v", MaxBuckets, lay.Bucket)
	}
	other := lay.Rows[len(lay.Rows)-1]
	if other.Location != OtherRow || other.Locations != 15+100-MaxTimelineRows+1 {
		t.Errorf("the last row is %q summing %d data centres", other.Location, other.Locations)
	}
	var sum uint64
	for _, r := range lay.Rows {
		for _, e := range r.Events {
			sum += e
		}
	}
	if sum != total || lay.Total != total {
		t.Errorf("rows add up to %d (layout total %d), want %d", sum, lay.Total, total)
	}
	svg := string(Timeline(in))
	if n := strings.Count(svg, `class="marker"`); n != MaxMarkers {
		t.Errorf("%d markers drawn, want %d", n, MaxMarkers)
	}
	if !strings.Contains(svg, fmt.Sprintf("%d more findings in range are not marked", MaxMarkers)) {
		t.Errorf("the description does not say markers were left out")
	}
	if n := len(barRE.FindAllString(svg, -1)); n > (MaxTimelineRows+1)*MaxBuckets || n < MaxTimelineRows*100 {
		t.Errorf("%d bars", n)
	}
	if len(svg) > 2<<20 {
		t.Errorf("the SVG is %d bytes", len(svg))
	}
	wellFormed(t, svg)
}

func TestWidenBucket(t *testing.T) {
	for _, tc := range []struct {
		span, bucket, want time.Duration
	}{
		{24 * time.Hour, time.Hour, time.Hour},
		{400 * time.Hour, time.Hour, time.Hour},
		{401 * time.Hour, time.Hour, 2 * time.Hour},
		{365 * 24 * time.Hour, 24 * time.Hour, 24 * time.Hour},
		{800 * 24 * time.Hour, 24 * time.Hour, 2 * 24 * time.Hour},
		{0, 24 * time.Hour, 24 * time.Hour},
	} {
		got := WidenBucket(t0, t0.Add(tc.span), tc.bucket, MaxBuckets)
		if got != tc.want {
			t.Errorf("WidenBucket(%v of %v) = %v, want %v", tc.span, tc.bucket, got, tc.want)
		}
		if n := bucketCount(t0, t0.Add(tc.span), got); n > MaxBuckets {
			t.Errorf("%v in buckets of %v: %d buckets", tc.span, got, n)
		}
	}
	// An unaligned range: still at most MaxBuckets.
	from := t0.Add(37 * time.Minute)
	if w := WidenBucket(from, from.Add(400*time.Hour), time.Hour, MaxBuckets); bucketCount(from, from.Add(400*time.Hour), w) > MaxBuckets {
		t.Errorf("unaligned: %v gives %d buckets", w, bucketCount(from, from.Add(400*time.Hour), w))
	}
}

func TestTicks(t *testing.T) {
	for _, tc := range []struct {
		from, to time.Time
		first    string
	}{
		{t0.Add(30 * time.Minute), t0.Add(24 * time.Hour), "03:00"},
		{t0, t0.Add(30 * 24 * time.Hour), "Dec 7"}, // a Monday
		{t0, t0.AddDate(1, 0, 0), "2027-01"},
		{t0.AddDate(-20, 0, 0), t0, "2010"},
	} {
		ts := Ticks(tc.from, tc.to, 8)
		if len(ts) < 2 || len(ts) > 9 {
			t.Errorf("%v–%v: %d ticks", tc.from, tc.to, len(ts))
			continue
		}
		if ts[0].Label != tc.first {
			t.Errorf("%v–%v: first tick %q, want %q", tc.from, tc.to, ts[0].Label, tc.first)
		}
		for i, tk := range ts {
			if tk.Time.Before(tc.from) || !tk.Time.Before(tc.to) || (i > 0 && !tk.Time.After(ts[i-1].Time)) || tk.Time.Location() != time.UTC {
				t.Errorf("tick %d at %v out of order or range", i, tk.Time)
			}
		}
	}
}

// TestStripGap: a witness that stops cosigning while another goes on shows
// gaps (not idle cells) from then on.
func TestStripGap(t *testing.T) {
	var a, b []time.Time
	for d := 0; d < 10; d++ {
		a = append(a, t0.Add(time.Duration(d)*24*time.Hour))
		if d < 6 {
			b = append(b, t0.Add(time.Duration(d)*24*time.Hour))
		}
	}
	in := StripInput{From: t0, To: t0.Add(12 * 24 * time.Hour), Bucket: 24 * time.Hour, Active: a,
		Rows: []StripRow{{Name: "a", Marked: a}, {Name: "b", Marked: b}}}
	lay := LayoutStrip(in)
	for d, c := range lay.Cells[1] {
		want := CellCosigned
		switch {
		case d >= 10:
			want = CellIdle
		case d >= 6:
			want = CellMissed
		}
		if c != want {
			t.Errorf("witness b, day %d: cell %d, want %d", d, c, want)
		}
	}
	svg := string(Strip(in))
	wellFormed(t, svg)
	if n := strings.Count(svg, `class="gap"`); n != 4 {
		t.Errorf("%d gaps drawn, want 4", n)
	}
	if n := strings.Count(svg, `class="cosigned"`); n != 16 {
		t.Errorf("%d cosigned cells drawn, want 16", n)
	}
}

// TestGrowthPointsBounded: a long span is drawn with at most MaxBuckets
// points, the last kept.
func TestGrowthPointsBounded(t *testing.T) {
	var pts []activity.Point
	for d := 0; d < 3000; d++ {
		pts = append(pts, activity.Point{End: t0.Add(time.Duration(d+1) * 24 * time.Hour), Events: uint64(d)})
	}
	got := GrowthPoints(pts)
	if len(got) > MaxBuckets || got[len(got)-1] != pts[len(pts)-1] {
		t.Fatalf("%d points, last %v", len(got), got[len(got)-1])
	}
	svg := string(Growth(GrowthInput{From: t0, To: t0.Add(3001 * 24 * time.Hour), Points: pts}))
	wellFormed(t, svg)
	if n := strings.Count(svg, `class="point"`); n != len(got) {
		t.Errorf("%d points drawn, want %d", n, len(got))
	}
}

// TestTimelineGolden compares the charts with the golden files in
// testdata/ (go test -run TimelineGolden -update-timeline rewrites them; look at them in a
// browser before committing).
func TestTimelineGolden(t *testing.T) {
	counts := []activity.Bucket{}
	for h := 0; h < 48; h++ {
		counts = append(counts, activity.Bucket{Start: hour(h), Location: "de-fra-1", Events: uint64(5 + h%7)})
		if h%3 == 0 {
			counts = append(counts, activity.Bucket{Start: hour(h), Location: "ch-zrh-1", Events: uint64(h)})
		}
	}
	counts = append(counts, activity.Bucket{Start: hour(20), Location: "us-ash-1", Events: 2})
	markers := []Marker{
		{Time: hour(20).Add(4 * time.Second), Label: "reroute", Title: "reroute: entry 26, sample smp-EU-000, at 2026-12-07 20:00:04 UTC", Href: "/sample?id=smp-EU-000", ID: "26"},
		{Time: hour(20).Add(time.Second), Label: "continuity", Title: "continuity: entry 45, sample smp-UK-000", Href: "/sample?id=smp-UK-000", ID: "45"},
	}
	var days []activity.Bucket
	var pts []activity.Point
	for d := 0; d < 30; d++ {
		days = append(days, activity.Bucket{Start: t0.AddDate(0, 0, d), Location: "de-fra-1", Events: uint64(100 + 10*d)})
		pts = append(pts, activity.Point{End: t0.AddDate(0, 0, d+1), Events: uint64(100 * (d + 1))})
	}
	var marked, active []time.Time
	for d := 0; d < 30; d++ {
		active = append(active, t0.AddDate(0, 0, d))
		if d < 20 {
			marked = append(marked, t0.AddDate(0, 0, d))
		}
	}
	for _, g := range []struct {
		name string
		svg  string
	}{
		{"timeline_hourly.svg", string(Timeline(TimelineInput{From: t0, To: hour(48), Bucket: time.Hour, Counts: counts, Markers: markers}))},
		{"timeline_daily.svg", string(Timeline(TimelineInput{From: t0, To: t0.AddDate(0, 0, 30), Bucket: 24 * time.Hour, Counts: days}))},
		{"timeline_growth.svg", string(Growth(GrowthInput{From: t0, To: t0.AddDate(0, 0, 30), Points: pts}))},
		{"timeline_strip.svg", string(Strip(StripInput{From: t0, To: t0.AddDate(0, 0, 30), Bucket: 24 * time.Hour, Active: active,
			Rows: []StripRow{{Name: "witness.example/a", Marked: active}, {Name: "witness.example/b", Marked: marked}}}))},
	} {
		wellFormed(t, g.svg)
		path := filepath.Join("testdata", g.name)
		if updating() {
			if err := os.MkdirAll("testdata", 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(g.svg+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if g.svg+"\n" != string(want) {
			t.Errorf("%s differs from the golden file (run with -update and look at it)", g.name)
		}
	}
}

// TestTimelineDependencies: the charts depend on no server package of
// custody's (the dashboard, the audit, the store, the log), so the
// regulator's report can draw them too.
func TestTimelineDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, bad := range []string{"dashboard", "audit", "store", "log", "server", "httpapi"} {
			if dep == "github.com/custodylog/custody/"+bad || strings.HasPrefix(dep, "github.com/custodylog/custody/"+bad+"/") {
				t.Errorf("svgchart depends on %s", dep)
			}
		}
	}
}
