package dashboard

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/record"
)

// The journey's bounds: the sample page's chain is already capped at
// MaxChain events; its drawing is capped further, so that its SVG stays a
// few hundred kilobytes at most however the sample's events are spread.
const (
	// MaxJourneyLanes is the most data centres the journey draws a lane
	// for (in order of first visit); the others share one OtherLabel lane.
	MaxJourneyLanes = 16
	// MaxJourneySteps is the most events the journey draws: the first
	// ones of the chain shown, in log order. The chain below it lists them
	// all.
	MaxJourneySteps = 120
)

// The journey's geometry, in SVG user units (CSS pixels).
const (
	jLeft     = 150 // lane labels
	jRight    = 40
	jTop      = 30
	jLaneH    = 70
	jStepGap  = 76  // the least distance between two steps (their marks are about 62 wide)
	jMinPlot  = 640 // the least width of the plot
	jMaxEven  = 160 // the most distance between evenly spaced steps
	jAxisH    = 52
	jGapH     = 16 // the row of elapsed times under an evenly spaced axis
	jLabelMax = 18 // characters of a lane label before it is shortened
)

// journeyView is the sample page's journey: the chain drawn as a path
// across one lane per data centre (in order of first visit) over event
// time. It is computed from the page's chain only (the events, the
// server's proof verdicts and the completeness claim), so it says nothing
// the page does not.
type journeyView struct {
	Width, Height int
	Left, Right   int // the plot's x range
	AxisY         int
	// ToScale is whether x is event time to scale; otherwise the steps are
	// evenly spaced in time order (times too close together, or equal, to
	// draw to scale), each labelled under the axis.
	ToScale  bool
	From, To time.Time // the first and last event time drawn

	Lanes      []journeyLane
	Steps      []journeyStep
	Segments   []journeySegment
	Connectors []journeyConnector
	Ticks      []journeyTick
	// Gaps, on an evenly spaced axis only, say how much time passed
	// between two consecutive steps ("+3 h 20 min"), midway between them.
	Gaps []journeyTick

	Drawn, Shown int  // steps drawn; events of the chain on the page
	Folded       int  // data centres drawn in the OtherLabel lane
	HasPolicy    bool // forbidden steps can be known
	Forbidden    int  // steps at (or to) a data centre the policy does not allow
	// HasIndex is whether the page makes a completeness claim (the log
	// keeps the sample index); Complete whether the server proved it.
	HasIndex, Complete bool
	IndexSize          uint64
	Desc               string // the SVG's description, for screen readers
}

// LaneH is a lane's height (for the template).
func (v *journeyView) LaneH() int { return jLaneH }

// MaxSteps is MaxJourneySteps (for the template).
func (v *journeyView) MaxSteps() int { return MaxJourneySteps }

// MaxLanes is MaxJourneyLanes (for the template).
func (v *journeyView) MaxLanes() int { return MaxJourneyLanes }

// journeyLane is one data centre's lane.
type journeyLane struct {
	Name      string // the data centre, or OtherLabel
	Label     string // Name, shortened to fit
	Y         int    // the lane's centre line
	Top       int    // the lane band's top
	Forbidden bool   // a step there is at a data centre not allowed for its region
	Other     bool
	Steps     int // steps drawn in the lane (a transfer counts in both)
}

// journeyStep is one event drawn.
type journeyStep struct {
	Index     uint64
	Time      time.Time
	Action    record.Action
	Letter    string // C, T, S, A, R or D: the action, besides the shape
	Shape     string // the node's path, around (0, 0)
	Location  string
	To        string // a transfer's destination
	X, Y, ToY int
	// Forbidden: the policy does not allow Location for the event's
	// region; ToForbidden: nor To.
	Forbidden, ToForbidden bool
	Findings               int    // policy findings for the event
	Server                 string // "ok" (inclusion proof verified by the server) or "failed"
	// Complete is "ok" when the server proved the chain complete, "failed"
	// when the log keeps the index but the claim is not proven, "" when
	// the log keeps no index.
	Complete string
	Title    string
}

// Class is the step's classes: its action, and forbidden.
func (s journeyStep) Class() string {
	c := "step " + string(s.Action)
	if s.Forbidden || s.ToForbidden {
		c += " forbidden"
	}
	return c
}

// journeySegment is a stretch of a lane where the sample is held: from
// its arrival (or first event there) to its deletion there (or its last
// event there).
type journeySegment struct {
	Lane   string
	X1, X2 int
	Y      int
	// Open: no deletion at this data centre was logged after the
	// segment's last event; drawn on, dashed, to the plot's end.
	Open bool
}

// journeyConnector is a transfer: from the source lane to the destination
// lane at the transfer's time.
type journeyConnector struct {
	Index      uint64
	From, To   string
	X, Y1, Y2  int
	Down       bool // Y2 > Y1
	Forbidden  bool // the destination is not allowed for the event's region
	ArrowY     int  // where the arrowhead's tip is
	ArrowShape string
}

// journeyTick is a label on the time axis.
type journeyTick struct {
	X     int
	Label string
	Title string // the full time (UTC)
}

// journeyShapes are the step nodes, one shape per action.
var journeyShapes = map[record.Action]string{
	record.Collected:   "M-12,0a12,12 0 1,0 24,0a12,12 0 1,0 -24,0Z",
	record.Transferred: "M0,-14L14,0L0,14L-14,0Z",
	record.Stored:      "M-11,-11H11V11H-11Z",
	record.Analysed:    "M0,-14L13,10H-13Z",
	record.Released:    "M-6,-12H6L13,0L6,12H-6L-13,0Z",
	record.Deleted:     "M-5,-12H5L12,-5V5L5,12H-5L-12,5V-5Z",
}

// newJourney draws the page's chain; nil when it has no events.
func newJourney(p *samplePage, pol *audit.Policy) *journeyView {
	if len(p.Chain) == 0 {
		return nil
	}
	links := p.Chain[:min(len(p.Chain), MaxJourneySteps)]
	v := &journeyView{Shown: len(p.Chain), Drawn: len(links), HasPolicy: pol != nil}
	if p.Index != nil {
		v.HasIndex, v.Complete, v.IndexSize = true, p.Index.Complete, p.Index.Size
	}
	allowed := func(region, loc string) bool {
		return pol == nil || slices.Contains(pol.Regions[region].Allowed, loc)
	}

	// Steps in time order (log order among equal times).
	order := make([]int, len(links))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		return links[order[a]].Event.Time.Before(links[order[b]].Event.Time)
	})

	// Lanes in order of first visit (in time), the source of a transfer
	// before its destination.
	laneOf := map[string]int{}
	var names []string
	other := false
	visit := func(loc string) {
		if _, ok := laneOf[loc]; ok {
			return
		}
		if len(names) == MaxJourneyLanes {
			laneOf[loc] = MaxJourneyLanes
			v.Folded++
			other = true
			return
		}
		laneOf[loc] = len(names)
		names = append(names, loc)
	}
	for _, i := range order {
		visit(links[i].Event.Location)
		if links[i].Event.To != "" {
			visit(links[i].Event.To)
		}
	}
	if other {
		names = append(names, OtherLabel)
	}
	for i, n := range names {
		lane := journeyLane{Name: n, Label: shorten(n, jLabelMax), Top: jTop + i*jLaneH, Y: jTop + i*jLaneH + jLaneH/2, Other: other && i == MaxJourneyLanes}
		v.Lanes = append(v.Lanes, lane)
	}

	xs := journeyXs(links, order, v)

	for k, i := range order {
		l := links[i]
		ev := l.Event
		s := journeyStep{
			Index: l.Index, Time: ev.Time.UTC(), Action: ev.Action, Letter: strings.ToUpper(string(ev.Action)[:1]),
			Shape: journeyShapes[ev.Action], Location: ev.Location, To: ev.To, X: xs[k],
			Findings: len(l.Findings), Server: "ok",
		}
		if s.Shape == "" {
			s.Shape = journeyShapes[record.Collected]
		}
		if !l.Included {
			s.Server = "failed"
		}
		if v.HasIndex {
			s.Complete = "failed"
			if v.Complete {
				s.Complete = "ok"
			}
		}
		from := &v.Lanes[laneOf[ev.Location]]
		s.Y = from.Y
		from.Steps++
		s.Forbidden = !allowed(ev.Region, ev.Location)
		from.Forbidden = from.Forbidden || s.Forbidden
		if ev.To != "" {
			to := &v.Lanes[laneOf[ev.To]]
			s.ToY = to.Y
			to.Steps++
			s.ToForbidden = !allowed(ev.Region, ev.To)
			to.Forbidden = to.Forbidden || s.ToForbidden
			if to.Y != from.Y {
				c := journeyConnector{Index: l.Index, From: ev.Location, To: ev.To, X: s.X, Y1: s.Y, Y2: s.ToY, Down: s.ToY > s.Y, Forbidden: s.ToForbidden}
				// From the node (below its marks, or above its ✕) to the
				// destination lane, clear of the text around the node.
				if c.Down {
					c.Y1, c.ArrowY = s.Y+jLaneH/2, s.ToY-7
					c.ArrowShape = fmt.Sprintf("M%d,%dl-5,-9h10Z", c.X, c.ArrowY)
				} else {
					c.Y1, c.ArrowY = s.Y-15, s.ToY+7
					if s.ToForbidden || s.Forbidden {
						c.Y1 = s.Y - 31
					}
					c.ArrowShape = fmt.Sprintf("M%d,%dl-5,9h10Z", c.X, c.ArrowY)
				}
				c.Y2 = c.ArrowY
				v.Connectors = append(v.Connectors, c)
			}
		}
		if s.Forbidden || s.ToForbidden {
			v.Forbidden++
		}
		s.Title = journeyTitle(s, ev, p.Checkpoint.Size, v)
		v.Steps = append(v.Steps, s)
	}
	v.Segments = journeySegments(v)
	v.Desc = journeyDesc(v)
	return v
}

// journeyXs places the steps (in time order) on the x axis, and sets the
// view's width, plot range, scale, axis and ticks. Time is to scale when
// every two consecutive steps are at least jStepGap apart on a plot of
// reasonable width; otherwise the steps are evenly spaced.
func journeyXs(links []link, order []int, v *journeyView) []int {
	n := len(order)
	v.From, v.To = links[order[0]].Event.Time.UTC(), links[order[n-1]].Event.Time.UTC()
	v.Left = jLeft + 20
	span := v.To.Sub(v.From)
	xs := make([]int, n)
	plot := max(jMinPlot, (n-1)*jStepGap)
	if n > 1 && span > 0 {
		v.ToScale = true
		for k := range order {
			d := links[order[k]].Event.Time.Sub(v.From)
			xs[k] = v.Left + int(float64(plot)*float64(d)/float64(span)+0.5)
			if k > 0 && xs[k]-xs[k-1] < jStepGap {
				v.ToScale = false
				break
			}
		}
	}
	if !v.ToScale {
		gap := jStepGap
		if n > 1 {
			gap = min(jMaxEven, max(jStepGap, jMinPlot/(n-1)))
		}
		plot = max(0, (n-1)*gap)
		for k := range order {
			xs[k] = v.Left + k*gap
		}
	}
	v.Right = v.Left + plot
	v.Width = v.Right + jRight + 20
	v.AxisY = jTop + len(v.Lanes)*jLaneH + 6
	v.Height = v.AxisY + jAxisH
	if v.ToScale {
		v.Ticks = timeTicks(v.From, v.To, v.Left, plot)
	} else {
		// Label every k-th step, keeping labels at least 110 apart.
		every := 1
		if n > 1 {
			gap := (v.Right - v.Left) / (n - 1)
			every = (110 + gap - 1) / gap
		}
		layout := evenLayout(v.From, v.To)
		for k := 0; k < n; k += every {
			t := links[order[k]].Event.Time.UTC()
			v.Ticks = append(v.Ticks, journeyTick{X: xs[k], Label: t.Format(layout), Title: utc(t)})
		}
		for k := 1; k < n; k++ {
			d := links[order[k]].Event.Time.Sub(links[order[k-1]].Event.Time)
			if d > 0 {
				v.Gaps = append(v.Gaps, journeyTick{X: (xs[k-1] + xs[k]) / 2, Label: "+" + elapsed(d), Title: elapsed(d) + " later"})
			}
		}
		if len(v.Gaps) > 0 {
			v.Height += jGapH
		}
	}
	return xs
}

// evenLayout is the time format of an evenly spaced axis's labels: the
// time of day when all events are on one day, else the date and minute.
func evenLayout(from, to time.Time) string {
	if from.Format(time.DateOnly) == to.Format(time.DateOnly) {
		return "15:04:05"
	}
	return "Jan 2 15:04"
}

// elapsed is d in its two largest units: "45 s", "12 min", "2 h 5 min",
// "3 d 4 h" (truncated, not rounded).
func elapsed(d time.Duration) string {
	units := [...]struct {
		name string
		d    time.Duration
	}{{"d", 24 * time.Hour}, {"h", time.Hour}, {"min", time.Minute}, {"s", time.Second}}
	for i, u := range units {
		if d < u.d && i < len(units)-1 {
			continue
		}
		n := d / u.d
		out := fmt.Sprintf("%d %s", n, u.name)
		if i+1 < len(units) {
			if m := (d - n*u.d) / units[i+1].d; m > 0 {
				out += fmt.Sprintf(" %d %s", m, units[i+1].name)
			}
		}
		return out
	}
	return ""
}

// tickSteps are the time axis's candidate intervals.
var tickSteps = []time.Duration{
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour,
	24 * time.Hour, 2 * 24 * time.Hour, 7 * 24 * time.Hour, 14 * 24 * time.Hour, 30 * 24 * time.Hour,
	91 * 24 * time.Hour, 182 * 24 * time.Hour, 365 * 24 * time.Hour,
}

// timeTicks labels a to-scale axis from from to to, drawn over plot units
// from left: ticks at whole multiples (UTC) of the smallest interval that
// keeps them at least 100 apart.
func timeTicks(from, to time.Time, left, plot int) []journeyTick {
	span := to.Sub(from)
	step := tickSteps[len(tickSteps)-1]
	for _, s := range tickSteps {
		if float64(plot)*float64(s)/float64(span) >= 100 {
			step = s
			break
		}
	}
	layout := "2006-01-02"
	switch {
	case step < time.Minute:
		layout = "15:04:05"
	case step < 24*time.Hour:
		layout = "Jan 2 15:04"
	}
	var out []journeyTick
	first := time.Unix(0, 0).UTC().Add(((from.Sub(time.Unix(0, 0)) + step - 1) / step) * step)
	for t := first; !t.After(to); t = t.Add(step) {
		x := left + int(float64(plot)*float64(t.Sub(from))/float64(span)+0.5)
		out = append(out, journeyTick{X: x, Label: t.Format(layout), Title: utc(t)})
		if len(out) > 64 {
			break
		}
	}
	return out
}

// journeySegments are the stretches of each lane where the sample is
// held: a stretch opens at the first step in the lane (or a transfer's
// arrival) and closes at a deletion there; one still open after the last
// step runs on to the plot's end, dashed.
func journeySegments(v *journeyView) []journeySegment {
	type state struct {
		open   bool
		x1, x2 int
	}
	st := map[int]*state{}
	var out []journeySegment
	touch := func(y, x int, closes bool) {
		s := st[y]
		if s == nil {
			s = &state{}
			st[y] = s
		}
		if !s.open {
			s.open, s.x1 = true, x
		}
		s.x2 = x
		if closes {
			out = append(out, journeySegment{X1: s.x1, X2: s.x2, Y: y})
			s.open = false
		}
	}
	for _, s := range v.Steps {
		touch(s.Y, s.X, s.Action == record.Deleted)
		if s.To != "" && s.ToY != s.Y {
			touch(s.ToY, s.X, false)
		}
	}
	for _, l := range v.Lanes {
		if s := st[l.Y]; s != nil && s.open {
			out = append(out, journeySegment{X1: s.x1, X2: v.Right + jRight, Y: l.Y, Open: true})
		}
	}
	for i := range out {
		for _, l := range v.Lanes {
			if l.Y == out[i].Y {
				out[i].Lane = l.Name
			}
		}
	}
	sort.SliceStable(out, func(a, b int) bool {
		if out[a].Y != out[b].Y {
			return out[a].Y < out[b].Y
		}
		return out[a].X1 < out[b].X1
	})
	return out
}

// journeyTitle is a step's tooltip and accessible name: "2026-12-01
// 10:00:00 UTC, transferred de-fra-1 → us-va-1, entry 123, proof verified
// by the server".
func journeyTitle(s journeyStep, ev record.Event, size uint64, v *journeyView) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s, %s %s", utc(s.Time), s.Action, s.Location)
	if s.To != "" {
		fmt.Fprintf(&b, " → %s", s.To)
	}
	fmt.Fprintf(&b, ", region %s, entry %d", ev.Region, s.Index)
	if s.Forbidden {
		fmt.Fprintf(&b, ", NOT ALLOWED: %s is not allowed for %s", s.Location, ev.Region)
	}
	if s.ToForbidden {
		fmt.Fprintf(&b, ", NOT ALLOWED: %s is not allowed for %s", s.To, ev.Region)
	}
	if s.Findings > 0 {
		fmt.Fprintf(&b, ", %d policy finding%s", s.Findings, plural(s.Findings))
	}
	if s.Server == "ok" {
		fmt.Fprintf(&b, ", inclusion proof verified by the server (checkpoint %d)", size)
	} else {
		b.WriteString(", inclusion proof FAILED the server's check")
	}
	switch s.Complete {
	case "ok":
		fmt.Fprintf(&b, ", chain proven complete as of checkpoint %d", v.IndexSize)
	case "failed":
		b.WriteString(", completeness NOT proven")
	}
	return b.String()
}

// journeyDesc summarises the journey for screen readers.
func journeyDesc(v *journeyView) string {
	var lanes []string
	for _, l := range v.Lanes {
		lanes = append(lanes, l.Name)
	}
	scale := "x is event time (UTC), to scale"
	if !v.ToScale {
		scale = "steps evenly spaced in time order"
	}
	d := fmt.Sprintf("%d step%s from %s to %s across %d data centre lane%s in order of first visit (%s); %s.",
		len(v.Steps), plural(len(v.Steps)), utc(v.From), utc(v.To), len(v.Lanes), plural(len(v.Lanes)), strings.Join(lanes, ", "), scale)
	if v.Forbidden > 0 {
		d += fmt.Sprintf(" %d step%s at a data centre not allowed for the sample's region.", v.Forbidden, plural(v.Forbidden))
	}
	d += " Each step links to its event in the chain below."
	return d
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
