package svgchart

import (
	"cmp"
	"fmt"
	"html/template"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/custodylog/custody/activity"
)

// Bounds of the time charts. Whatever their input holds, Timeline draws
// at most MaxTimelineRows+1 rows, MaxBuckets buckets per row and
// MaxMarkers markers; Growth at most MaxBuckets points; Strip at most
// MaxStripRows rows of MaxBuckets cells.
const (
	// MaxTimelineRows is the most data centres Timeline draws a row for
	// (those with the most events); the rest are summed in one OtherRow.
	MaxTimelineRows = 24
	// MaxBuckets is the most buckets drawn across a chart: a longer span
	// is drawn with wider buckets (WidenBucket).
	MaxBuckets = 400
	// MaxMarkers is the most markers Timeline draws (the first ones in
	// time); the others are counted in the chart's description.
	MaxMarkers = 500
	// MaxStripRows is the most rows Strip draws.
	MaxStripRows = 32
)

// OtherRow names the row that sums the data centres Timeline does not
// draw one by one (and activity.OtherKey, under which the aggregate
// counts the data centres past its own bound).
const OtherRow = activity.OtherKey

// Colours, lines and font of the charts (presentation attributes).
const (
	colText    = "#1b1f24"
	colMuted   = "#57606a"
	colGrid    = "#d0d7de"
	colBar     = "#2f6db5"
	colMarker  = "#b3261e"
	colMarkEdg = "#5c0d0a"
	colOK      = "#1f7a3a"
	colMissed  = "#b3261e"
	fontAttrs  = `font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif" font-size="12"`
)

// Geometry of the time charts, in SVG user units (pixels at 100%).
const (
	defaultWidth = 960
	labelW       = 176 // the row labels left of the plot
	rightPad     = 20
	topPad       = 8
	rowH         = 30
	barMaxH      = 24
	laneH        = 18
	axisH        = 40
	maxLanes     = 3
	maxLabelLen  = 22 // runes of a row label; the full name is in its <title>
)

// Marker is a point in time marked on a Timeline's axis: a finding at the
// time of its event.
type Marker struct {
	// Time is where the marker is drawn.
	Time time.Time
	// Label is the short text drawn next to the marker's shape (the kind
	// of finding: "reroute").
	Label string
	// Title is the marker's full description, its <title> (read by screen
	// readers and shown on hover).
	Title string
	// Href is where the marker links to: a path ("/sample?id=…") or a
	// fragment ("#finding-3"). Anything else (another scheme, a host) is
	// not linked.
	Href string
	// ID is put in the marker's data-id attribute (an entry index), for
	// programs and tests.
	ID string
}

// TimelineInput is what Timeline draws.
type TimelineInput struct {
	// From and To bound the time drawn, [From, To); To must be after From.
	From, To time.Time
	// Bucket is the width of the buckets of Counts: an hour or a day
	// (activity.Resolution.Duration). Timeline widens it (WidenBucket) so
	// that at most MaxBuckets are drawn.
	Bucket time.Duration
	// Counts are events per bucket per data centre (activity.Series);
	// those whose start is outside [From, To) are ignored.
	Counts []activity.Bucket
	// Markers are drawn on the time axis; those outside [From, To) are
	// not drawn.
	Markers []Marker
	// Title is the chart's title (its <title>); Width its width in pixels
	// (0: 960). IDPrefix prefixes the ids of its title and description,
	// for a page with several charts (default "timeline").
	Title    string
	Width    int
	IDPrefix string
}

// TimelineRow is one row of a Timeline as drawn: a data centre (or
// OtherRow) and its events per drawn bucket.
type TimelineRow struct {
	Location string
	// Locations is how many data centres the row sums (1 for a named
	// one; for OtherRow, how many, counting activity.OtherKey as one).
	Locations int
	Total     uint64
	Events    []uint64 // per bucket, as in TimelineLayout.Starts
}

// TimelineLayout is the data a Timeline draws, after its bounds: the
// widened buckets and the rows. The page's accessible table shows the
// same numbers.
type TimelineLayout struct {
	Bucket time.Duration // the width drawn, a multiple of the input's
	Starts []time.Time   // each drawn bucket's start (clipped to From)
	Rows   []TimelineRow // by name; OtherRow last
	Max    uint64        // the largest count of one bucket in one row
	Total  uint64
}

// WidenBucket returns the narrowest multiple of bucket that cuts [from,
// to) into at most max buckets aligned on multiples of it since the Unix
// epoch (so daily buckets start at 00:00 UTC). A non-positive bucket is an
// hour.
func WidenBucket(from, to time.Time, bucket time.Duration, max int) time.Duration {
	if bucket <= 0 {
		bucket = time.Hour
	}
	if max < 1 {
		max = 1
	}
	span := to.Sub(from)
	k := int64(1)
	if span > 0 {
		k = max64(1, int64(span/bucket)/int64(max))
	}
	for ; ; k++ {
		w := time.Duration(k) * bucket
		if bucketCount(from, to, w) <= max {
			return w
		}
	}
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// bucketCount is how many buckets of width w, aligned on the epoch, meet
// [from, to).
func bucketCount(from, to time.Time, w time.Duration) int {
	if !to.After(from) {
		return 0
	}
	first := floorDiv(from.UnixNano(), int64(w))
	last := floorDiv(to.UnixNano()-1, int64(w))
	return int(last - first + 1)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// LayoutTimeline computes what Timeline draws for in: its buckets, widened to at
// most MaxBuckets, and its rows: the MaxTimelineRows data centres with
// the most events in range (ties by name), sorted by name, and OtherRow
// summing the others. Every count in range is in exactly one row and one
// bucket, so the rows add up to the events in range.
func LayoutTimeline(in TimelineInput) TimelineLayout {
	if !in.To.After(in.From) {
		return TimelineLayout{}
	}
	w := WidenBucket(in.From, in.To, in.Bucket, MaxBuckets)
	lay := TimelineLayout{Bucket: w, Starts: bucketStarts(in.From, in.To, w)}
	first, n := floorDiv(in.From.UnixNano(), int64(w)), len(lay.Starts)
	totals := map[string]uint64{}
	for _, b := range in.Counts {
		if inRange(b.Start, in.From, in.To) {
			totals[b.Location] += b.Events
		}
	}
	names := make([]string, 0, len(totals))
	for l, t := range totals {
		if l != OtherRow && t > 0 {
			names = append(names, l)
		}
	}
	slices.SortFunc(names, func(a, b string) int { return cmp.Or(cmp.Compare(totals[b], totals[a]), cmp.Compare(a, b)) })
	shown := names[:min(len(names), MaxTimelineRows)]
	slices.Sort(shown)
	rowOf := make(map[string]int, len(shown))
	for i, l := range shown {
		rowOf[l] = i
		lay.Rows = append(lay.Rows, TimelineRow{Location: l, Locations: 1, Events: make([]uint64, n)})
	}
	other := -1
	if len(names) > len(shown) || totals[OtherRow] > 0 {
		other = len(lay.Rows)
		o := TimelineRow{Location: OtherRow, Locations: len(names) - len(shown), Events: make([]uint64, n)}
		if totals[OtherRow] > 0 {
			o.Locations++
		}
		lay.Rows = append(lay.Rows, o)
	}
	for _, b := range in.Counts {
		if !inRange(b.Start, in.From, in.To) || b.Events == 0 {
			continue
		}
		i, ok := rowOf[b.Location]
		if !ok {
			i = other
		}
		j := int(floorDiv(b.Start.UnixNano(), int64(w)) - first)
		r := &lay.Rows[i]
		r.Events[j] += b.Events
		r.Total += b.Events
		lay.Total += b.Events
	}
	for _, r := range lay.Rows {
		for _, e := range r.Events {
			lay.Max = max(lay.Max, e)
		}
	}
	return lay
}

func inRange(t, from, to time.Time) bool {
	return !t.Before(from) && t.Before(to)
}

// scale maps times of [from, to) to x in [left, left+width).
type scale struct {
	from, to    int64 // Unix nanoseconds
	left, width float64
}

func (s scale) x(t time.Time) float64 {
	return s.left + float64(t.UnixNano()-s.from)/float64(s.to-s.from)*s.width
}

// X returns the x coordinate at which a chart of the given width drawn over
// [from, to) puts time t: what Timeline, Growth and Strip use for their
// bars, points and markers (for tests and for callers that overlay them).
func X(from, to time.Time, width int, t time.Time) float64 {
	if width <= 0 {
		width = defaultWidth
	}
	return newScale(from, to, width).x(t)
}

func newScale(from, to time.Time, width int) scale {
	return scale{from: from.UnixNano(), to: to.UnixNano(), left: labelW, width: float64(width - labelW - rightPad)}
}

// Timeline draws events per bucket per data centre as small multiples:
// one row of bars per data centre (LayoutTimeline: at most MaxTimelineRows and
// OtherRow), all on one time axis and one vertical scale, with Markers on
// the time axis: each a triangle pointing at its time, its label beside
// it, a dashed line across the rows, a <title>, and a link to its Href.
// Axis labels are UTC. It needs no style sheet; its classes (timeline,
// row, marker) are only hooks.
func Timeline(in TimelineInput) template.HTML {
	width := in.Width
	if width <= 0 {
		width = defaultWidth
	}
	id := cmp.Or(in.IDPrefix, "timeline")
	lay := LayoutTimeline(in)
	sc := newScale(in.From, in.To, width)

	// Markers in range, in time order, bounded; each in the first lane
	// where its label does not overlap the one before.
	var marks []Marker
	for _, m := range in.Markers {
		if inRange(m.Time, in.From, in.To) {
			marks = append(marks, m)
		}
	}
	slices.SortStableFunc(marks, func(a, b Marker) int { return a.Time.Compare(b.Time) })
	dropped := 0
	if len(marks) > MaxMarkers {
		dropped = len(marks) - MaxMarkers
		marks = marks[:MaxMarkers]
	}
	lanes := make([]int, len(marks))
	var laneEnd [maxLanes]float64
	for i := range laneEnd {
		laneEnd[i] = math.Inf(-1)
	}
	used := 0
	for i, m := range marks {
		x := sc.x(m.Time)
		label := shortLabel(m.Label)
		start, end := x-7, x+10+labelWidth(label)
		if labelLeft(x, label, width) {
			start, end = x-10-labelWidth(label), x+7
		}
		best := 0
		for l := range maxLanes {
			if laneEnd[l] < start {
				best = l
				break
			}
			if laneEnd[l] < laneEnd[best] {
				best = l
			}
		}
		lanes[i] = best
		laneEnd[best] = end
		used = max(used, best+1)
	}

	rows := max(len(lay.Rows), 1)
	plotBottom := topPad + rows*rowH
	bandH := used*laneH + 4
	axisY := plotBottom + bandH
	height := axisY + axisH

	var b strings.Builder
	b.Grow(4096 + 40*len(lay.Rows)*len(lay.Starts)/2 + 400*len(marks))
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="%d" height="%d" viewBox="0 0 %d %d" role="group" aria-labelledby="%s-title %s-desc" %s fill="%s">`,
		width, height, width, height, esc(id), esc(id), fontAttrs, colText)
	title := cmp.Or(in.Title, "Events per "+bucketName(lay.Bucket)+" per data centre")
	fmt.Fprintf(&b, `<title id="%s-title">%s</title>`, esc(id), esc(title))
	desc := fmt.Sprintf("%s to %s (UTC), one bar per %s; %d rows, same vertical scale, the tallest bar is %s events; %s events in all; %d findings marked on the time axis.",
		axisTime(in.From, lay.Bucket), axisTime(in.To, lay.Bucket), bucketName(lay.Bucket), len(lay.Rows), Num(lay.Max), Num(lay.Total), len(marks))
	if dropped > 0 {
		desc += fmt.Sprintf(" %d more findings in range are not marked (at most %d are).", dropped, MaxMarkers)
	}
	fmt.Fprintf(&b, `<desc id="%s-desc">%s</desc>`, esc(id), esc(desc))

	if len(lay.Rows) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="%s">No events in this range.</text>`, labelW, topPad+rowH-10, colMuted)
	}
	for i, r := range lay.Rows {
		y0 := topPad + i*rowH
		base := y0 + rowH - 3
		name := r.Location
		rowTitle := fmt.Sprintf("%s: %s events", name, Num(r.Total))
		if name == OtherRow {
			rowTitle = fmt.Sprintf("%s (%d data centres): %s events", name, r.Locations, Num(r.Total))
		}
		fmt.Fprintf(&b, `<g class="row" data-location="%s" data-total="%d" fill="%s"><title>%s</title>`, esc(name), r.Total, colBar, esc(rowTitle))
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end" fill="%s">%s</text>`, labelW-8, base-4, colText, esc(truncate(name, maxLabelLen)))
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%s" y2="%d" stroke="%s" stroke-width="1"/>`, labelW, base, ff(sc.left+sc.width), base, colGrid)
		for j, n := range r.Events {
			if n == 0 {
				continue
			}
			h := math.Max(1, float64(n)/float64(lay.Max)*barMaxH)
			x0 := sc.x(lay.Starts[j])
			x1 := sc.left + sc.width
			if j+1 < len(lay.Starts) {
				x1 = sc.x(lay.Starts[j+1])
			}
			wd := x1 - x0
			if wd > 3 {
				wd -= 1 // a gap between neighbours
			}
			// A bar: its fill is the row's (fewer bytes: a year of 24
			// rows is 9,000 bars).
			fmt.Fprintf(&b, `<rect x="%s" y="%s" width="%s" height="%s" data-t="%d" data-n="%d"/>`,
				ff(x0), ff(float64(base)-h), ff(math.Max(wd, 0.5)), ff(h), lay.Starts[j].Unix(), n)
		}
		b.WriteString(`</g>`)
	}

	// The time axis, its ticks and labels (UTC).
	fmt.Fprintf(&b, `<g class="axis"><line x1="%d" y1="%d" x2="%s" y2="%d" stroke="%s" stroke-width="1.5"/>`, labelW, axisY, ff(sc.left+sc.width), axisY, colText)
	writeTicks(&b, in.From, in.To, sc, axisY)
	if used > 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end" fill="%s">findings</text>`, labelW-8, plotBottom+laneH-2, colMuted)
	}
	b.WriteString(`</g>`)

	// The markers last, so they are on top and come after the rows in
	// keyboard order.
	for i, m := range marks {
		x := sc.x(m.Time)
		tipY := float64(axisY - 2 - lanes[i]*laneH)
		label := shortLabel(m.Label)
		href := safeHref(m.Href)
		if href != "" {
			fmt.Fprintf(&b, `<a class="marker" href="%s" data-time="%d" data-id="%s" data-x="%s" data-label="%s">`, esc(href), m.Time.Unix(), esc(m.ID), ff(x), esc(m.Label))
		} else {
			fmt.Fprintf(&b, `<g class="marker" data-time="%d" data-id="%s" data-x="%s" data-label="%s">`, m.Time.Unix(), esc(m.ID), ff(x), esc(m.Label))
		}
		fmt.Fprintf(&b, `<title>%s</title>`, esc(cmp.Or(m.Title, m.Label+" at "+axisTime(m.Time, time.Second))))
		fmt.Fprintf(&b, `<line x1="%s" y1="%d" x2="%s" y2="%s" stroke="%s" stroke-width="1" stroke-dasharray="3 3"/>`, ff(x), topPad, ff(x), ff(tipY), colMarker)
		fmt.Fprintf(&b, `<path d="M%s %sL%s %sL%s %sZ" fill="%s" stroke="%s" stroke-width="1"/>`,
			ff(x-6), ff(tipY-11), ff(x+6), ff(tipY-11), ff(x), ff(tipY), colMarker, colMarkEdg)
		// The label right of the triangle, or left of it near the right
		// edge (as the lanes were laid out: labelSide).
		if labelLeft(x, label, width) {
			fmt.Fprintf(&b, `<text x="%s" y="%s" fill="%s" text-anchor="end">%s</text>`, ff(x-8), ff(tipY-2), colMarkEdg, esc(label))
		} else {
			fmt.Fprintf(&b, `<text x="%s" y="%s" fill="%s">%s</text>`, ff(x+8), ff(tipY-2), colMarkEdg, esc(label))
		}
		if href != "" {
			b.WriteString(`</a>`)
		} else {
			b.WriteString(`</g>`)
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// labelWidth estimates the width of a label at the charts' font size.
func labelWidth(label string) float64 { return 7 * float64(len([]rune(label))) }

// labelLeft is whether a marker's label goes left of it: when it would
// not fit right of it within the chart's width.
func labelLeft(x float64, label string, width int) bool {
	return x+10+labelWidth(label) > float64(width)
}

// shortLabel bounds a marker's drawn label (its title has it whole).
func shortLabel(s string) string { return truncate(s, 18) }

// safeHref returns href if it is a path on this site or a fragment, else "".
func safeHref(href string) string {
	if strings.HasPrefix(href, "#") || (strings.HasPrefix(href, "/") && !strings.HasPrefix(href, "//")) {
		if !strings.ContainsAny(href, "\\\x00\r\n\t") {
			return href
		}
	}
	return ""
}

// writeTicks draws the ticks and UTC labels of [from, to) under axisY.
func writeTicks(b *strings.Builder, from, to time.Time, sc scale, axisY int) {
	for _, t := range Ticks(from, to, int(sc.width/90)) {
		x := sc.x(t.Time)
		fmt.Fprintf(b, `<line x1="%s" y1="%d" x2="%s" y2="%d" stroke="%s" stroke-width="1"/>`, ff(x), axisY, ff(x), axisY+5, colText)
		anchor := "middle"
		switch {
		case x-sc.left < 30:
			anchor = "start"
		case sc.left+sc.width-x < 30:
			anchor = "end"
		}
		fmt.Fprintf(b, `<text class="tick" x="%s" y="%d" text-anchor="%s" data-t="%d">%s</text>`, ff(x), axisY+18, anchor, t.Time.Unix(), esc(t.Label))
	}
	fmt.Fprintf(b, `<text x="%s" y="%d" text-anchor="end" fill="%s">time (UTC)</text>`, ff(sc.left+sc.width), axisY+34, colMuted)
}

// Tick is one labelled time on an axis.
type Tick struct {
	Time  time.Time
	Label string // UTC
}

// tickSteps are the steps an axis may use, shortest first.
var tickSteps = []time.Duration{
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour,
	24 * time.Hour, 2 * 24 * time.Hour, 7 * 24 * time.Hour, 14 * 24 * time.Hour,
}

// Ticks returns at most max (at least 2) ticks in [from, to) at a round
// step: whole hours, days (00:00 UTC), weeks (Mondays), months or years,
// with labels in UTC ("14:00", "Dec 7", "2026-12", "2026").
func Ticks(from, to time.Time, max int) []Tick {
	if !to.After(from) {
		return nil
	}
	max = cmp.Or(max, 2)
	if max < 2 {
		max = 2
	}
	from, to = from.UTC(), to.UTC()
	span := to.Sub(from)
	for _, step := range tickSteps {
		if span/step > time.Duration(max) {
			continue
		}
		var t time.Time
		if step == 7*24*time.Hour || step == 14*24*time.Hour {
			// Mondays.
			d := from.Truncate(24 * time.Hour)
			for d.Weekday() != time.Monday || d.Before(from) {
				d = d.Add(24 * time.Hour)
			}
			t = d
		} else {
			t = from.Truncate(step)
			if t.Before(from) {
				t = t.Add(step)
			}
		}
		var out []Tick
		for ; t.Before(to); t = t.Add(step) {
			out = append(out, Tick{Time: t, Label: tickLabel(t, step)})
		}
		return out
	}
	// Months or years.
	months := 1
	for _, m := range []int{1, 2, 3, 6, 12, 24, 60, 120} {
		months = m
		if int(span.Hours()/24/30.44)/m <= max {
			break
		}
	}
	t := time.Date(from.Year(), from.Month(), 1, 0, 0, 0, 0, time.UTC)
	for (int(t.Month())-1)%months != 0 && months < 12 {
		t = t.AddDate(0, -1, 0)
	}
	if months >= 12 {
		t = time.Date(from.Year()-from.Year()%(months/12), 1, 1, 0, 0, 0, 0, time.UTC)
	}
	for t.Before(from) {
		t = t.AddDate(0, months, 0)
	}
	var out []Tick
	for ; t.Before(to) && len(out) <= max; t = t.AddDate(0, months, 0) {
		label := t.Format("2006-01")
		if months >= 12 {
			label = t.Format("2006")
		}
		out = append(out, Tick{Time: t, Label: label})
	}
	return out
}

func tickLabel(t time.Time, step time.Duration) string {
	switch {
	case step < 24*time.Hour && t.Hour() == 0:
		return t.Format("Jan 2")
	case step < 24*time.Hour:
		return t.Format("15:04")
	default:
		return t.Format("Jan 2")
	}
}

// axisTime formats t for a chart's description: to the minute for sub-day
// buckets, else the date.
func axisTime(t time.Time, bucket time.Duration) string {
	if bucket < 24*time.Hour {
		return t.UTC().Format("2006-01-02 15:04")
	}
	return t.UTC().Format("2006-01-02")
}

// bucketName says a bucket's width: "hour", "day", "6 hours", "3 days".
func bucketName(w time.Duration) string {
	switch {
	case w == time.Hour:
		return "hour"
	case w == 24*time.Hour:
		return "day"
	case w%(24*time.Hour) == 0:
		return fmt.Sprintf("%d days", w/(24*time.Hour))
	case w%time.Hour == 0:
		return fmt.Sprintf("%d hours", w/time.Hour)
	default:
		return w.String()
	}
}

// BucketName says the width of a bucket for people: "hour", "day", "3
// days", "6 hours".
func BucketName(w time.Duration) string { return bucketName(w) }

// GrowthInput is what Growth draws.
type GrowthInput struct {
	From, To time.Time
	// Points are the tree's size (events logged) at the end of each day
	// (activity.Growth), in time order.
	Points   []activity.Point
	Title    string
	Width    int
	IDPrefix string
}

// GrowthPoints bounds points to at most MaxBuckets evenly spread ones,
// keeping the last: the points Growth draws (and the page tabulates).
func GrowthPoints(points []activity.Point) []activity.Point {
	if len(points) <= MaxBuckets {
		return points
	}
	k := (len(points) + MaxBuckets - 1) / MaxBuckets
	var out []activity.Point
	for i := len(points) - 1; i >= 0; i -= k {
		out = append(out, points[i])
	}
	slices.Reverse(out)
	return out
}

// Growth draws the tree's growth as a step line: the events logged by the
// end of each day, from 0 at the bottom to the largest at the top, on the
// same time axis as Timeline (labels UTC). Each point is a small circle
// with a <title>.
func Growth(in GrowthInput) template.HTML {
	width := in.Width
	if width <= 0 {
		width = defaultWidth
	}
	id := cmp.Or(in.IDPrefix, "growth")
	pts := GrowthPoints(in.Points)
	const plotH = 120
	axisY := topPad + plotH
	height := axisY + axisH
	sc := newScale(in.From, in.To, width)
	var top uint64
	for _, p := range pts {
		top = max(top, p.Events)
	}
	y := func(n uint64) float64 {
		if top == 0 {
			return float64(axisY)
		}
		return float64(axisY) - float64(n)/float64(top)*(plotH-8)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="growth" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-labelledby="%s-title %s-desc" %s fill="%s">`,
		width, height, width, height, esc(id), esc(id), fontAttrs, colText)
	fmt.Fprintf(&b, `<title id="%s-title">%s</title>`, esc(id), esc(cmp.Or(in.Title, "Tree size (events logged) at the end of each day")))
	desc := "No events were logged in this range."
	if len(pts) > 0 {
		first, last := pts[0], pts[len(pts)-1]
		desc = fmt.Sprintf("From %s events at the end of %s to %s at the end of %s (UTC).",
			Num(first.Events), first.End.Add(-time.Second).Format("2006-01-02"), Num(last.Events), last.End.Add(-time.Second).Format("2006-01-02"))
	}
	fmt.Fprintf(&b, `<desc id="%s-desc">%s</desc>`, esc(id), esc(desc))
	if top > 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end" fill="%s">%s</text>`, labelW-8, topPad+12, colMuted, esc(Num(top)))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end" fill="%s">0</text>`, labelW-8, axisY-2, colMuted)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%s" y2="%d" stroke="%s" stroke-width="1"/>`, labelW, topPad+8, ff(sc.left+sc.width), topPad+8, colGrid)
	if len(pts) > 0 {
		var d strings.Builder
		prevY := y(0)
		x0 := math.Max(sc.left, sc.x(pts[0].End.Add(-24*time.Hour)))
		fmt.Fprintf(&d, "M%s %s", ff(x0), ff(prevY))
		for _, p := range pts {
			x := math.Min(sc.left+sc.width, math.Max(sc.left, sc.x(p.End)))
			fmt.Fprintf(&d, "H%sV%s", ff(x), ff(y(p.Events)))
		}
		fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="%s" stroke-width="2"/>`, d.String(), colBar)
		for _, p := range pts {
			x := math.Min(sc.left+sc.width, math.Max(sc.left, sc.x(p.End)))
			fmt.Fprintf(&b, `<circle class="point" cx="%s" cy="%s" r="2.5" fill="%s" data-t="%d" data-n="%d"><title>%s: %s events</title></circle>`,
				ff(x), ff(y(p.Events)), colBar, p.End.Unix(), p.Events, esc("end of "+p.End.Add(-time.Second).Format("2006-01-02")+" UTC"), esc(Num(p.Events)))
		}
	}
	fmt.Fprintf(&b, `<g class="axis"><line x1="%d" y1="%d" x2="%s" y2="%d" stroke="%s" stroke-width="1.5"/>`, labelW, axisY, ff(sc.left+sc.width), axisY, colText)
	writeTicks(&b, in.From, in.To, sc, axisY)
	b.WriteString(`</g>`)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// StripRow is one row of a Strip: a witness and the buckets in which it
// cosigned.
type StripRow struct {
	Name string
	// Title is the row's description (its <title>).
	Title string
	// Marked are the starts of the buckets (of StripInput.Bucket) in which
	// the witness cosigned.
	Marked []time.Time
}

// StripInput is what Strip draws.
type StripInput struct {
	From, To time.Time
	// Bucket is the width of the buckets of Rows and Active; Strip widens
	// it like Timeline.
	Bucket time.Duration
	Rows   []StripRow
	// Active are the starts of the buckets in which the log was active
	// (some witness cosigned, or the log grew): a bucket there without a
	// row's mark is a gap in that row.
	Active   []time.Time
	Title    string
	Width    int
	IDPrefix string
}

// StripCell is the state of one bucket of one strip row.
type StripCell uint8

// The states of a StripCell.
const (
	CellIdle     StripCell = iota // the log was idle and the witness did not cosign
	CellCosigned                  // the witness cosigned in the bucket
	CellMissed                    // the log was active, the witness did not cosign: a gap
)

// StripLayout is what Strip draws: its buckets and each row's cells.
type StripLayout struct {
	Bucket time.Duration
	Starts []time.Time
	Cells  [][]StripCell // by row, then bucket
}

// bucketStarts is the starts of the buckets of width w that [from, to)
// meets, the first clipped to from.
func bucketStarts(from, to time.Time, w time.Duration) []time.Time {
	first := floorDiv(from.UnixNano(), int64(w))
	starts := make([]time.Time, bucketCount(from, to, w))
	for i := range starts {
		s := time.Unix(0, (first+int64(i))*int64(w)).UTC()
		if s.Before(from) {
			s = from.UTC()
		}
		starts[i] = s
	}
	return starts
}

// LayoutStrip computes the cells of a Strip (at most MaxStripRows rows,
// at most MaxBuckets buckets: a widened bucket is cosigned if any bucket
// in it is, and active if any is).
func LayoutStrip(in StripInput) StripLayout {
	if !in.To.After(in.From) {
		return StripLayout{}
	}
	w := WidenBucket(in.From, in.To, in.Bucket, MaxBuckets)
	lay := StripLayout{Bucket: w, Starts: bucketStarts(in.From, in.To, w)}
	first, n := floorDiv(in.From.UnixNano(), int64(w)), len(lay.Starts)
	idx := func(t time.Time) int {
		if !inRange(t, in.From, in.To) {
			return -1
		}
		return int(floorDiv(t.UnixNano(), int64(w)) - first)
	}
	active := make([]bool, n)
	for _, t := range in.Active {
		if i := idx(t); i >= 0 {
			active[i] = true
		}
	}
	rows := in.Rows[:min(len(in.Rows), MaxStripRows)]
	for _, r := range rows {
		cells := make([]StripCell, n)
		for _, t := range r.Marked {
			if i := idx(t); i >= 0 {
				cells[i] = CellCosigned
			}
		}
		for i := range cells {
			if cells[i] == CellIdle && active[i] {
				cells[i] = CellMissed
			}
		}
		lay.Cells = append(lay.Cells, cells)
	}
	return lay
}

// Strip draws one row per witness on a time axis (labels UTC): a tall
// green bar in each bucket in which it cosigned, a short red tick under
// the row in each bucket in which the log was active but it did not (a
// gap), nothing where the log was idle. Bar and tick differ in height and
// place, not only in colour; a legend says which is which.
func Strip(in StripInput) template.HTML {
	width := in.Width
	if width <= 0 {
		width = defaultWidth
	}
	id := cmp.Or(in.IDPrefix, "strip")
	lay := LayoutStrip(in)
	sc := newScale(in.From, in.To, width)
	const legendH = 22
	rows := max(len(lay.Cells), 1)
	axisY := legendH + topPad + rows*rowH
	height := axisY + axisH
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="strip" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-labelledby="%s-title %s-desc" %s fill="%s">`,
		width, height, width, height, esc(id), esc(id), fontAttrs, colText)
	fmt.Fprintf(&b, `<title id="%s-title">%s</title>`, esc(id), esc(cmp.Or(in.Title, "Witness cosignatures per "+bucketName(lay.Bucket))))
	var missed, cosigned int
	for _, cs := range lay.Cells {
		for _, c := range cs {
			switch c {
			case CellMissed:
				missed++
			case CellCosigned:
				cosigned++
			}
		}
	}
	fmt.Fprintf(&b, `<desc id="%s-desc">%s</desc>`, esc(id), esc(fmt.Sprintf("%d witnesses, one cell per %s from %s to %s (UTC): %d cells with a cosignature, %d gaps (the log was active and the witness did not cosign).",
		len(lay.Cells), bucketName(lay.Bucket), axisTime(in.From, lay.Bucket), axisTime(in.To, lay.Bucket), cosigned, missed)))
	// Legend.
	fmt.Fprintf(&b, `<g class="legend"><rect x="%d" y="4" width="8" height="14" fill="%s"/><text x="%d" y="15">cosigned</text>`, labelW, colOK, labelW+12)
	fmt.Fprintf(&b, `<rect x="%d" y="14" width="8" height="4" fill="%s"/><text x="%d" y="15">gap: the log was active, no cosignature</text>`, labelW+90, colMissed, labelW+102)
	fmt.Fprintf(&b, `<text x="%d" y="15" fill="%s">blank: idle</text></g>`, labelW+370, colMuted)
	if len(lay.Cells) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="%s">No witness has cosigned a stored checkpoint.</text>`, labelW, legendH+topPad+rowH-10, colMuted)
	}
	for i, cells := range lay.Cells {
		r := in.Rows[i]
		y0 := legendH + topPad + i*rowH
		base := y0 + rowH - 8
		fmt.Fprintf(&b, `<g class="row" data-witness="%s"><title>%s</title>`, esc(r.Name), esc(cmp.Or(r.Title, r.Name)))
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`, labelW-8, base-4, esc(truncate(r.Name, maxLabelLen)))
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%s" y2="%d" stroke="%s" stroke-width="1"/>`, labelW, base, ff(sc.left+sc.width), base, colGrid)
		for j, c := range cells {
			if c == CellIdle {
				continue
			}
			x0 := sc.x(lay.Starts[j])
			x1 := sc.left + sc.width
			if j+1 < len(lay.Starts) {
				x1 = sc.x(lay.Starts[j+1])
			}
			wd := x1 - x0
			if wd > 3 {
				wd--
			}
			wd = math.Max(wd, 0.5)
			if c == CellCosigned {
				fmt.Fprintf(&b, `<rect class="cosigned" x="%s" y="%d" width="%s" height="18" fill="%s" data-t="%d"/>`, ff(x0), base-18, ff(wd), colOK, lay.Starts[j].Unix())
			} else {
				fmt.Fprintf(&b, `<rect class="gap" x="%s" y="%d" width="%s" height="4" fill="%s" data-t="%d"/>`, ff(x0), base+2, ff(wd), colMissed, lay.Starts[j].Unix())
			}
		}
		b.WriteString(`</g>`)
	}
	fmt.Fprintf(&b, `<g class="axis"><line x1="%d" y1="%d" x2="%s" y2="%d" stroke="%s" stroke-width="1.5"/>`, labelW, axisY, ff(sc.left+sc.width), axisY, colText)
	writeTicks(&b, in.From, in.To, sc, axisY)
	b.WriteString(`</g>`)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// Num formats n with thousands separators: 1234567 → "1,234,567".
func Num(n uint64) string {
	s := strconv.FormatUint(n, 10)
	if len(s) <= 3 {
		return s
	}
	var b strings.Builder
	pre := len(s) % 3
	if pre > 0 {
		b.WriteString(s[:pre])
	}
	for i := pre; i < len(s); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

// ff formats a coordinate with at most one decimal.
func ff(v float64) string {
	return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64)
}

// esc escapes s for text and double-quoted attribute values.
func esc(s string) string { return template.HTMLEscapeString(s) }

// truncate shortens s to n runes, ending in "…".
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
