package dashboard

import (
	"cmp"
	"context"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/custodylog/custody/activity"
	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/internal/svgchart"
	"github.com/custodylog/custody/internal/witnesshistory"
)

// The timeline page (/timeline) shows, over a range of time chosen with
// query parameters (range=24h|7d|30d|all, or from= and to=): the events
// per hour or day per data centre (activity.Reader.Series) as small
// multiples with the audit's findings marked at their events' times, the
// tree's growth (activity.Reader.Growth), and when each witness cosigned
// (the witness history, read from the store's checkpoints by a
// background follower). A page build reads no entry but those of the
// newest findings whose times it does not know yet (at most
// DefaultKeptFindings, once each), and no checkpoint but the current one.

// Bounds of the time range.
const (
	// MaxTimelineRange is the longest range the timeline draws.
	MaxTimelineRange = 20 * 366 * 24 * time.Hour
	// DefaultTimelineRange is the preset shown without parameters.
	DefaultTimelineRange = "7d"
	// maxParamLen bounds a from= or to= value.
	maxParamLen = 40
)

// timelinePreset is one of the range links.
type timelinePreset struct {
	Key, Label string
	span       time.Duration // 0: all
	unit       time.Duration // the range ends at the next multiple of it after now
}

var timelinePresets = []timelinePreset{
	{"24h", "Last 24 hours", 24 * time.Hour, time.Hour},
	{"7d", "Last 7 days", 7 * 24 * time.Hour, 24 * time.Hour},
	{"30d", "Last 30 days", 30 * 24 * time.Hour, 24 * time.Hour},
	{"all", "All", 0, 24 * time.Hour},
}

// timeRange is the range a timeline page shows.
type timeRange struct {
	From, To time.Time
	Preset   string // the preset's key, or ""
}

// rangeError is a bad range parameter, said for people (a 400 page).
type rangeError string

func (e rangeError) Error() string { return string(e) }

// parseRange reads the range of a timeline request: range=PRESET, or
// from= and to= (either may be left out), each a UTC date (YYYY-MM-DD; to=
// includes its whole day), a UTC time (YYYY-MM-DDTHH:MM[:SS]) or RFC 3339.
// No parameter is DefaultTimelineRange. Presets end at the next whole hour
// (24h) or day after now; "all" is the days of the events' span (the last
// 7 days without events).
func parseRange(q url.Values, now time.Time, span func() (time.Time, time.Time, bool)) (timeRange, error) {
	preset, fromS, toS := q.Get("range"), strings.TrimSpace(q.Get("from")), strings.TrimSpace(q.Get("to"))
	if preset != "" && (fromS != "" || toS != "") {
		return timeRange{}, rangeError("Give either a preset range (range=…) or dates (from=… and to=…), not both.")
	}
	if preset == "" && fromS == "" && toS == "" {
		preset = DefaultTimelineRange
	}
	now = now.UTC()
	if preset != "" {
		for _, p := range timelinePresets {
			if p.Key != preset {
				continue
			}
			to := ceilTime(now, p.unit)
			if p.span > 0 {
				return timeRange{From: to.Add(-p.span), To: to, Preset: p.Key}, nil
			}
			if first, last, ok := span(); ok {
				from, to := first.Truncate(24*time.Hour), ceilTime(last.Add(time.Second), 24*time.Hour)
				if to.Sub(from) > MaxTimelineRange {
					from = to.Add(-MaxTimelineRange).Truncate(24 * time.Hour)
				}
				return timeRange{From: from, To: to, Preset: p.Key}, nil
			}
			return timeRange{From: to.Add(-7 * 24 * time.Hour), To: to, Preset: p.Key}, nil
		}
		keys := make([]string, len(timelinePresets))
		for i, p := range timelinePresets {
			keys[i] = p.Key
		}
		return timeRange{}, rangeError(fmt.Sprintf("range=%q is not a preset range; use one of %s.", shorten(preset, maxParamLen), strings.Join(keys, ", ")))
	}
	var r timeRange
	var err error
	if toS != "" {
		if r.To, err = parseWhen("to", toS, true); err != nil {
			return r, err
		}
	} else {
		r.To = ceilTime(now, 24*time.Hour)
	}
	if fromS != "" {
		if r.From, err = parseWhen("from", fromS, false); err != nil {
			return r, err
		}
	} else {
		r.From = r.To.Add(-7 * 24 * time.Hour)
	}
	switch {
	case !r.To.After(r.From):
		return r, rangeError(fmt.Sprintf("The range ends (%s) before it starts (%s): to= must be after from=.", utc(r.To), utc(r.From)))
	case r.To.Sub(r.From) > MaxTimelineRange:
		return r, rangeError(fmt.Sprintf("The range from %s to %s is longer than the 20 years the timeline draws.", utc(r.From), utc(r.To)))
	}
	return r, nil
}

// parseWhen parses a from= or to= value; a date as to= means the end of
// that day.
func parseWhen(name, s string, end bool) (time.Time, error) {
	bad := rangeError(fmt.Sprintf("%s=%q is not a date (YYYY-MM-DD) or a time (YYYY-MM-DDTHH:MM, UTC).", name, shorten(s, maxParamLen)))
	if len(s) > maxParamLen {
		return time.Time{}, bad
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		if end {
			t = t.Add(24 * time.Hour)
		}
		return checkYear(name, s, t)
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			return checkYear(name, s, t.UTC())
		}
	}
	return time.Time{}, bad
}

func checkYear(name, s string, t time.Time) (time.Time, error) {
	if t.Year() < 1970 || t.Year() > 9999 {
		return time.Time{}, rangeError(fmt.Sprintf("%s=%q is outside the years 1970 to 9999.", name, shorten(s, maxParamLen)))
	}
	return t, nil
}

// ceilTime is the first multiple of unit (since the Unix epoch) after t,
// or t if it is one.
func ceilTime(t time.Time, unit time.Duration) time.Time {
	f := t.Truncate(unit)
	if f.Equal(t) {
		return t
	}
	return f.Add(unit)
}

// presetLink is one range link of the page.
type presetLink struct {
	Key, Label, Href string
	Current          bool
}

// timelineRow is one bucket of the events table.
type timelineRow struct {
	Start    time.Time
	Label    string // UTC
	Counts   []uint64
	Total    uint64
	Findings int // findings whose event is in the bucket
}

// timelineFinding is one finding in the range.
type timelineFinding struct {
	audit.Finding
	Time time.Time
	Href string
}

// growthRow is one point of the growth table.
type growthRow struct {
	Day    string // the day at whose end
	Events uint64
	Added  uint64 // on that day
}

// witnessRow is one witness of the freshness table.
type witnessRow struct {
	witnesshistory.Witness
	InRange  int      // buckets in range with a cosignature
	Gaps     int      // buckets in range where the log was active and it did not cosign
	GapSpans []string // the gaps, as UTC ranges (at most 10)
	MoreGaps int      // gap spans not listed
	Current  bool     // it cosigned the current checkpoint
}

// witnessesView is the witness freshness panel.
type witnessesView struct {
	Following   bool // the server keeps a witness history
	Strip       template.HTML
	Bucket      string
	Rows        []witnessRow
	Checkpoints uint64
	Size        uint64
	Bad         uint64
	Failure     string
}

// timelinePage is the timeline's data.
type timelinePage struct {
	Page
	From, To         time.Time
	FromDate, ToDate string // for the date inputs (To's is the last day included)
	Presets          []presetLink
	HasActivity      bool
	Resolution       string // of the counts: "hour" or "day"
	Bucket           string // as drawn: "hour", "day", "3 days"
	Chart            template.HTML
	Locations        []string
	Rows             []timelineRow // buckets with events or findings
	RowsHTML         template.HTML // Rows as table rows (timelineRowsHTML)
	Buckets          int           // buckets drawn
	Total            uint64
	HasPolicy        bool
	Findings         *findingsView
	InRange          []timelineFinding
	Unplaced         int // kept findings with no event time (site attestations)
	Growth           template.HTML
	GrowthRows       []growthRow
	Witnesses        witnessesView
	Checkpoint       checkpointView
}

// serveTimeline serves /timeline: a 400 page for a bad range.
func (d *Dashboard) serveTimeline(w http.ResponseWriter, r *http.Request) {
	span := func() (time.Time, time.Time, bool) { return time.Time{}, time.Time{}, false }
	if d.cfg.Activity != nil {
		span = d.cfg.Activity.Span
	}
	rng, err := parseRange(r.URL.Query(), d.cfg.Now(), span)
	if err != nil {
		d.render(w, r, "error.html", func(context.Context) (any, int, error) {
			return d.errorPage("Bad time range", err.Error()+" The presets are /timeline?range=24h, 7d, 30d and all."), http.StatusBadRequest, nil
		})
		return
	}
	d.render(w, r, "timeline.html", func(ctx context.Context) (any, int, error) {
		p, err := d.timelinePage(ctx, rng)
		return p, http.StatusOK, err
	})
}

func (d *Dashboard) timelinePage(ctx context.Context, rng timeRange) (timelinePage, error) {
	p := timelinePage{Page: d.page("Timeline"), From: rng.From, To: rng.To, HasPolicy: d.cfg.Policy != nil,
		FromDate: rng.From.Format(time.DateOnly), ToDate: rng.To.Add(-time.Nanosecond).Format(time.DateOnly)}
	for _, ps := range timelinePresets {
		p.Presets = append(p.Presets, presetLink{Key: ps.Key, Label: ps.Label, Href: "/timeline?range=" + ps.Key, Current: ps.Key == rng.Preset})
	}
	cp := d.cfg.Log.Checkpoint()
	var err error
	if p.Checkpoint, _, err = d.checkpointView(cp); err != nil {
		return p, err
	}

	// The findings in range, at their events' times.
	var markers []svgchart.Marker
	if d.auditor != nil {
		p.Findings = d.auditor.view(cp.Size)
		times, err := d.tl.eventTimes(ctx, d.cfg.Log, p.Findings.Recent)
		if err != nil {
			return p, err
		}
		for _, f := range p.Findings.Recent {
			t := times[f.Index]
			switch {
			case t.IsZero():
				p.Unplaced++
			case !t.Before(rng.From) && t.Before(rng.To):
				href := "/sample?id=" + url.QueryEscape(f.Sample)
				p.InRange = append(p.InRange, timelineFinding{Finding: f, Time: t, Href: href})
				markers = append(markers, svgchart.Marker{Time: t, Label: string(f.Kind), Href: href, ID: fmt.Sprint(f.Index),
					Title: fmt.Sprintf("%s: entry %d, sample %s, at %s. %s", f.Kind, f.Index, f.Sample, utc(t), f.Detail)})
			}
		}
	}

	res := activity.Daily
	if a := d.cfg.Activity; a != nil {
		p.HasActivity = true
		res = a.PickResolution(rng.From, rng.To)
		in := svgchart.TimelineInput{From: rng.From, To: rng.To, Bucket: res.Duration(), Counts: a.Series(rng.From, rng.To, res), Markers: markers,
			Title: "Events per " + res.String() + " per data centre, with the audit's findings"}
		lay := svgchart.LayoutTimeline(in)
		p.Chart = svgchart.Timeline(in)
		p.Resolution, p.Bucket, p.Buckets, p.Total = res.String(), svgchart.BucketName(lay.Bucket), len(lay.Starts), lay.Total
		for _, row := range lay.Rows {
			p.Locations = append(p.Locations, row.Location)
		}
		found := map[int]int{} // bucket -> findings
		for _, f := range p.InRange {
			found[bucketOf(lay.Starts, f.Time)]++
		}
		for j, start := range lay.Starts {
			var total uint64
			for _, row := range lay.Rows {
				total += row.Events[j]
			}
			if total == 0 && found[j] == 0 {
				continue
			}
			tr := timelineRow{Start: start, Label: bucketLabel(start, lay.Bucket), Total: total, Findings: found[j]}
			for _, row := range lay.Rows {
				tr.Counts = append(tr.Counts, row.Events[j])
			}
			p.Rows = append(p.Rows, tr)
		}

		// Growth is kept by days: the days that overlap the range (the
		// last one whole, so far).
		pts := a.Growth(rng.From.Truncate(24*time.Hour), ceilTime(rng.To, 24*time.Hour))
		p.Growth = svgchart.Growth(svgchart.GrowthInput{From: rng.From, To: rng.To, Points: pts})
		prev := uint64(0)
		for i, pt := range svgchart.GrowthPoints(pts) {
			gr := growthRow{Day: pt.End.Add(-time.Second).Format(time.DateOnly), Events: pt.Events}
			if i > 0 {
				gr.Added = pt.Events - prev
			}
			prev = pt.Events
			p.GrowthRows = append(p.GrowthRows, gr)
		}
	}
	p.RowsHTML = timelineRowsHTML(p.Rows, p.HasPolicy)
	p.Witnesses = d.witnessesView(rng, res, p.Checkpoint)
	return p, nil
}

// timelineRowsHTML writes the events table's rows: up to MaxBuckets rows
// of up to MaxTimelineRows+1 counts, which html/template's per-value
// escaping took longer to write than the rest of the page to build. Every
// value is a number or a UTC time, escaped all the same.
func timelineRowsHTML(rows []timelineRow, findings bool) template.HTML {
	var b strings.Builder
	if len(rows) > 0 {
		b.Grow(len(rows) * (80 + 16*len(rows[0].Counts)))
	}
	for _, r := range rows {
		fmt.Fprintf(&b, `<tr data-start="%d"><th scope="row">%s</th>`, r.Start.Unix(), template.HTMLEscapeString(r.Label))
		for _, n := range r.Counts {
			b.WriteString("<td>")
			b.WriteString(num(n))
			b.WriteString("</td>")
		}
		b.WriteString(`<td class="total">`)
		b.WriteString(num(r.Total))
		b.WriteString("</td>")
		if findings {
			b.WriteString(`<td class="found">`)
			if r.Findings > 0 {
				b.WriteString(strconv.Itoa(r.Findings))
			}
			b.WriteString("</td>")
		}
		b.WriteString("</tr>\n")
	}
	return template.HTML(b.String())
}

// bucketOf is the index of the bucket (of starts, sorted) holding t.
func bucketOf(starts []time.Time, t time.Time) int {
	i, _ := slices.BinarySearchFunc(starts, t, func(s, t time.Time) int {
		if s.After(t) {
			return 1
		}
		return -1
	})
	return max(i-1, 0)
}

// bucketLabel is a bucket's start and width in UTC: "2026-12-07 14:00
// UTC (hour)", "2026-12-07 (day)".
func bucketLabel(start time.Time, w time.Duration) string {
	if w%(24*time.Hour) == 0 && start.Equal(start.Truncate(24*time.Hour)) {
		if w == 24*time.Hour {
			return start.Format(time.DateOnly)
		}
		return start.Format(time.DateOnly) + " – " + start.Add(w-time.Second).Format(time.DateOnly)
	}
	return start.Format("2006-01-02 15:04") + "–" + start.Add(w).Format("15:04") + " UTC"
}

// witnessesView is the witness freshness panel: the history over the
// range (from the follower's memory, no store read) and who cosigned the
// current checkpoint.
func (d *Dashboard) witnessesView(rng timeRange, res activity.Resolution, cp checkpointView) witnessesView {
	var v witnessesView
	h := d.tl.hist()
	if h == nil {
		return v
	}
	hv := h.View(rng.From, rng.To, res)
	v = witnessesView{Following: true, Checkpoints: hv.Checkpoints, Size: hv.Size, Bad: hv.Bad, Failure: hv.Failure}
	// The log was active in a bucket if some witness cosigned in it, or
	// (by days) events were logged on that day.
	active := slices.Clone(hv.Active)
	if hv.Resolution == activity.Daily && d.cfg.Activity != nil {
		var prev uint64
		for i, pt := range d.cfg.Activity.Growth(rng.From.Add(-24*time.Hour), rng.To) {
			if i > 0 && pt.Events > prev {
				active = append(active, pt.End.Add(-24*time.Hour))
			}
			prev = pt.Events
		}
	}
	cosignedNow := map[string]bool{}
	for _, s := range cp.Signatures {
		if s.Role == "witness" {
			cosignedNow[s.Name+" "+s.KeyID] = true
		}
	}
	in := svgchart.StripInput{From: rng.From, To: rng.To, Bucket: hv.Resolution.Duration(), Active: active,
		Title: "Witness cosignatures per " + hv.Resolution.String()}
	for _, w := range hv.Witnesses {
		title := fmt.Sprintf("%s: %s checkpoints cosigned", w.Name, num(w.Cosigned))
		if !w.Last.IsZero() {
			title += ", the newest at " + utc(w.Last)
		}
		in.Rows = append(in.Rows, svgchart.StripRow{Name: w.Name, Title: title, Marked: w.Marked})
	}
	lay := svgchart.LayoutStrip(in)
	v.Strip = svgchart.Strip(in)
	v.Bucket = svgchart.BucketName(lay.Bucket)
	for i, w := range hv.Witnesses {
		row := witnessRow{Witness: w, Current: cosignedNow[w.Name+" "+w.KeyID]}
		if i < len(lay.Cells) {
			spanStart := -1
			cells := lay.Cells[i]
			for j := 0; j <= len(cells); j++ {
				missed := j < len(cells) && cells[j] == svgchart.CellMissed
				if j < len(cells) && cells[j] == svgchart.CellCosigned {
					row.InRange++
				}
				if missed {
					row.Gaps++
					if spanStart < 0 {
						spanStart = j
					}
					continue
				}
				if spanStart >= 0 {
					if len(row.GapSpans) < 10 {
						end := rng.To
						if j < len(lay.Starts) {
							end = lay.Starts[j]
						}
						row.GapSpans = append(row.GapSpans, utc(lay.Starts[spanStart])+" to "+utc(end))
					} else {
						row.MoreGaps++
					}
					spanStart = -1
				}
			}
		}
		v.Rows = append(v.Rows, row)
	}
	slices.SortStableFunc(v.Rows, func(a, b witnessRow) int { return cmp.Compare(boolInt(b.Known), boolInt(a.Known)) })
	return v
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
