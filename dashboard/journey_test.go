package dashboard

import (
	"bytes"
	"encoding/xml"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/record"
)

var updateJourney = flag.Bool("update-journey", false, "rewrite testdata/journey*.svg from the journey tests")

var jBase = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// jev is an event of sample smp-j at jBase + offset.
func jev(region string, a record.Action, loc, to string, offset time.Duration) record.Event {
	return record.Event{Sample: "smp-j", Region: region, Action: a, Location: loc, To: to, Actor: "t/1", Time: jBase.Add(offset)}
}

// journeyPage is a sample page whose chain is evs at entries 100, 101, …,
// every proof verified by the server.
func journeyPage(evs ...record.Event) *samplePage {
	p := &samplePage{Sample: "smp-j", Checkpoint: checkpointView{Size: 500}}
	for i, ev := range evs {
		p.Chain = append(p.Chain, link{eventView: eventView{Index: uint64(100 + i), Event: ev}, Included: true})
	}
	return p
}

// travel is a sample's usual journey, hours between steps (drawn to
// scale):
// collected in Frankfurt, sent to Zürich, stored and analysed there, sent
// on to Ashburn (not allowed for EU), deleted there and in Zürich.
func travel() []record.Event {
	return []record.Event{
		jev("EU", record.Collected, "de-fra-1", "", 0),
		jev("EU", record.Transferred, "de-fra-1", "ch-zrh-1", 3*time.Hour),
		jev("EU", record.Stored, "ch-zrh-1", "", 6*time.Hour),
		jev("EU", record.Analysed, "ch-zrh-1", "", 9*time.Hour),
		jev("EU", record.Transferred, "ch-zrh-1", "us-ash-1", 12*time.Hour),
		jev("EU", record.Deleted, "us-ash-1", "", 15*time.Hour+30*time.Minute),
		jev("EU", record.Deleted, "ch-zrh-1", "", 18*time.Hour),
	}
}

func laneNames(v *journeyView) []string {
	var out []string
	for _, l := range v.Lanes {
		out = append(out, l.Name)
	}
	return out
}

func TestJourneyLanes(t *testing.T) {
	for _, tc := range []struct {
		name string
		evs  []record.Event
		want []string
	}{
		{"travel", travel(), []string{"de-fra-1", "ch-zrh-1", "us-ash-1"}},
		{"transfer source before destination", []record.Event{
			jev("EU", record.Transferred, "ch-zrh-1", "de-fra-1", 0),
			jev("EU", record.Stored, "de-fra-1", "", time.Hour),
		}, []string{"ch-zrh-1", "de-fra-1"}},
		// Logged out of time order: the lanes follow the event times.
		{"first visit in time, not in log order", []record.Event{
			jev("EU", record.Stored, "ch-zrh-1", "", 3*time.Hour),
			jev("EU", record.Collected, "de-fra-1", "", 0),
			jev("EU", record.Analysed, "uk-lon-1", "", 5*time.Hour),
		}, []string{"de-fra-1", "ch-zrh-1", "uk-lon-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := newJourney(journeyPage(tc.evs...), nil)
			if got := laneNames(v); !slices.Equal(got, tc.want) {
				t.Errorf("lanes %q, want %q", got, tc.want)
			}
			for i := 1; i < len(v.Lanes); i++ {
				if v.Lanes[i].Y <= v.Lanes[i-1].Y {
					t.Errorf("lane %d at y %d, above lane %d at %d", i, v.Lanes[i].Y, i-1, v.Lanes[i-1].Y)
				}
			}
			for _, s := range v.Steps {
				if s.Y != v.Lanes[slices.Index(laneNames(v), s.Location)].Y {
					t.Errorf("step at entry %d (%s) is not on its lane", s.Index, s.Location)
				}
			}
		})
	}
	if v := newJourney(journeyPage(), nil); v != nil {
		t.Errorf("an empty chain has a journey: %+v", v)
	}
}

// TestJourneyTime: steps are drawn in time order, x growing with time;
// to scale when no two steps are too close, else evenly spaced.
func TestJourneyTime(t *testing.T) {
	// Logged out of order: entry 100 happened last.
	evs := []record.Event{
		jev("EU", record.Deleted, "de-fra-1", "", 6*time.Hour),
		jev("EU", record.Collected, "de-fra-1", "", 0),
		jev("EU", record.Stored, "de-fra-1", "", 2*time.Hour),
	}
	v := newJourney(journeyPage(evs...), nil)
	var idx []uint64
	for _, s := range v.Steps {
		idx = append(idx, s.Index)
	}
	if want := []uint64{101, 102, 100}; !slices.Equal(idx, want) {
		t.Fatalf("steps in order %v, want %v (time order)", idx, want)
	}
	if !v.ToScale {
		t.Fatal("hours apart, but not to scale")
	}
	x0, x1, x2 := v.Steps[0].X, v.Steps[1].X, v.Steps[2].X
	if d := (x2 - x0) - 3*(x1-x0); !(x0 < x1 && x1 < x2) || d < -2 || d > 2 {
		t.Errorf("x %d, %d, %d: not to scale (0 h, 2 h, 6 h)", x0, x1, x2)
	}
	if len(v.Ticks) < 2 || v.Ticks[0].X < v.Left || v.Ticks[len(v.Ticks)-1].X > v.Right {
		t.Errorf("ticks %+v outside the plot [%d, %d]", v.Ticks, v.Left, v.Right)
	}
	for _, tk := range v.Ticks {
		if !strings.HasSuffix(tk.Title, " UTC") {
			t.Errorf("tick %+v does not say UTC", tk)
		}
	}

	for _, tc := range []struct {
		name    string
		offsets []time.Duration
		gaps    []string // the elapsed times between steps
	}{
		{"equal times", []time.Duration{0, 0, 0, 0}, nil},
		{"one gap too small", []time.Duration{0, time.Second, 10 * time.Hour}, []string{"+1 s", "+9 h 59 min"}},
		{"days", []time.Duration{0, 5 * time.Minute, 5*time.Minute + 50*time.Hour, 40 * 24 * time.Hour}, []string{"+5 min", "+2 d 2 h", "+37 d 21 h"}},
		{"one event", []time.Duration{0}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var evs []record.Event
			for _, o := range tc.offsets {
				evs = append(evs, jev("EU", record.Stored, "de-fra-1", "", o))
			}
			v := newJourney(journeyPage(evs...), nil)
			if v.ToScale {
				t.Fatal("drawn to scale")
			}
			for i := 1; i < len(v.Steps); i++ {
				gap := v.Steps[i].X - v.Steps[i-1].X
				if gap < jStepGap || gap != v.Steps[1].X-v.Steps[0].X {
					t.Errorf("step %d is %d after the previous, want an even gap of at least %d", i, gap, jStepGap)
				}
				if v.Steps[i].Index != v.Steps[i-1].Index+1 {
					t.Errorf("equal or close times out of log order: %d after %d", v.Steps[i].Index, v.Steps[i-1].Index)
				}
			}
			if len(v.Ticks) == 0 || v.Ticks[0].X != v.Steps[0].X {
				t.Errorf("evenly spaced steps are not labelled: ticks %+v", v.Ticks)
			}
			var gaps []string
			for _, g := range v.Gaps {
				gaps = append(gaps, g.Label)
			}
			if !slices.Equal(gaps, tc.gaps) {
				t.Errorf("elapsed times %q, want %q", gaps, tc.gaps)
			}
		})
	}
}

func TestJourneyTransfers(t *testing.T) {
	v := newJourney(journeyPage(travel()...), testPolicy(t))
	if len(v.Connectors) != 2 {
		t.Fatalf("%d connectors, want 2: %+v", len(v.Connectors), v.Connectors)
	}
	lane := func(n string) journeyLane { return v.Lanes[slices.Index(laneNames(v), n)] }
	for i, want := range [][2]string{{"de-fra-1", "ch-zrh-1"}, {"ch-zrh-1", "us-ash-1"}} {
		c := v.Connectors[i]
		from, to := lane(want[0]), lane(want[1])
		if c.From != want[0] || c.To != want[1] || !c.Down {
			t.Errorf("connector %d is %s → %s (down %v), want %s → %s, down", i, c.From, c.To, c.Down, want[0], want[1])
		}
		if !(c.Y1 > from.Y && c.Y1 <= from.Y+jLaneH/2) || !(c.Y2 < to.Y && c.Y2 > to.Y-jLaneH/2) {
			t.Errorf("connector %d runs from y %d to %d, want from below lane %d to above lane %d", i, c.Y1, c.Y2, from.Y, to.Y)
		}
		if c.X != v.Steps[1+3*i].X || c.Index != v.Steps[1+3*i].Index {
			t.Errorf("connector %d is not at its transfer step", i)
		}
	}
	if v.Connectors[0].Forbidden || !v.Connectors[1].Forbidden {
		t.Errorf("forbidden connectors: %v, %v; want false, true (us-ash-1 is not allowed for EU)", v.Connectors[0].Forbidden, v.Connectors[1].Forbidden)
	}
	// An upward transfer.
	up := newJourney(journeyPage(
		jev("EU", record.Stored, "de-fra-1", "", 0),
		jev("EU", record.Stored, "ch-zrh-1", "", time.Hour),
		jev("EU", record.Transferred, "ch-zrh-1", "de-fra-1", 2*time.Hour),
	), nil)
	if len(up.Connectors) != 1 || up.Connectors[0].Down || up.Connectors[0].Y1 <= up.Connectors[0].Y2 {
		t.Errorf("upward transfer: %+v", up.Connectors)
	}
	// Held stretches: Frankfurt until the journey's end (no deletion
	// there), Zürich from the arrival to its deletion, Ashburn from the
	// arrival to its deletion.
	want := []journeySegment{
		{Lane: "de-fra-1", X1: v.Steps[0].X, X2: v.Right + jRight, Y: lane("de-fra-1").Y, Open: true},
		{Lane: "ch-zrh-1", X1: v.Steps[1].X, X2: v.Steps[6].X, Y: lane("ch-zrh-1").Y},
		{Lane: "us-ash-1", X1: v.Steps[4].X, X2: v.Steps[5].X, Y: lane("us-ash-1").Y},
	}
	if !slices.Equal(v.Segments, want) {
		t.Errorf("segments\n%+v\nwant\n%+v", v.Segments, want)
	}
}

func TestJourneyForbidden(t *testing.T) {
	p := testPolicy(t)
	v := newJourney(journeyPage(travel()...), p)
	var forbidden []string
	for _, s := range v.Steps {
		if s.Forbidden || s.ToForbidden {
			forbidden = append(forbidden, fmt.Sprintf("%d %v %v", s.Index, s.Forbidden, s.ToForbidden))
			if !strings.Contains(s.Class(), "forbidden") || !strings.Contains(s.Title, "NOT ALLOWED") {
				t.Errorf("forbidden step %d: class %q, title %q", s.Index, s.Class(), s.Title)
			}
		} else if strings.Contains(s.Class(), "forbidden") || strings.Contains(s.Title, "NOT ALLOWED") {
			t.Errorf("allowed step %d: class %q, title %q", s.Index, s.Class(), s.Title)
		}
	}
	// The transfer to us-ash-1 (its destination) and the deletion there.
	if want := []string{"104 false true", "105 true false"}; !slices.Equal(forbidden, want) {
		t.Errorf("forbidden steps %q, want %q", forbidden, want)
	}
	if v.Forbidden != 2 {
		t.Errorf("Forbidden = %d, want 2", v.Forbidden)
	}
	for _, l := range v.Lanes {
		if l.Forbidden != (l.Name == "us-ash-1") {
			t.Errorf("lane %s forbidden %v", l.Name, l.Forbidden)
		}
	}
	// Without a policy nothing is forbidden.
	if v := newJourney(journeyPage(travel()...), nil); v.Forbidden != 0 || v.HasPolicy {
		t.Errorf("without a policy: %d forbidden", v.Forbidden)
	}
	// A region the policy does not know may be nowhere.
	v = newJourney(journeyPage(jev("XX", record.Collected, "de-fra-1", "", 0)), p)
	if !v.Steps[0].Forbidden {
		t.Error("a step of an unknown region is not forbidden")
	}
}

func TestJourneyStatus(t *testing.T) {
	for _, tc := range []struct {
		name           string
		index          *indexView
		failed         int // the chain event whose server check failed; -1: none
		server         []string
		complete       string
		titleHas       []string
		titleHasNot    []string
		indexClaimSize uint64
	}{
		{name: "no index", failed: -1, server: []string{"ok", "ok"}, complete: "",
			titleHas: []string{"inclusion proof verified by the server (checkpoint 500)"}, titleHasNot: []string{"complete"}},
		{name: "complete", index: &indexView{Size: 480, Complete: true, Events: 2}, failed: -1, server: []string{"ok", "ok"}, complete: "ok",
			titleHas: []string{"chain proven complete as of checkpoint 480"}},
		{name: "not proven", index: &indexView{Problem: "x"}, failed: -1, server: []string{"ok", "ok"}, complete: "failed",
			titleHas: []string{"completeness NOT proven"}},
		{name: "proof failed", failed: 1, server: []string{"ok", "failed"}, complete: "",
			titleHas: []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := journeyPage(jev("EU", record.Collected, "de-fra-1", "", 0), jev("EU", record.Stored, "de-fra-1", "", time.Hour))
			p.Index = tc.index
			if tc.failed >= 0 {
				p.Chain[tc.failed].Included = false
			}
			v := newJourney(p, nil)
			for i, s := range v.Steps {
				if s.Server != tc.server[i] || s.Complete != tc.complete {
					t.Errorf("step %d: server %q, complete %q; want %q, %q", i, s.Server, s.Complete, tc.server[i], tc.complete)
				}
				if s.Server == "failed" && !strings.Contains(s.Title, "FAILED the server's check") {
					t.Errorf("step %d title %q does not say its proof failed", i, s.Title)
				}
				for _, w := range tc.titleHas {
					if !strings.Contains(s.Title, w) {
						t.Errorf("step %d title %q lacks %q", i, s.Title, w)
					}
				}
				for _, w := range tc.titleHasNot {
					if strings.Contains(s.Title, w) {
						t.Errorf("step %d title %q has %q", i, s.Title, w)
					}
				}
			}
		})
	}
	// The title the issue asks for.
	v := newJourney(journeyPage(jev("EU", record.Transferred, "de-fra-1", "us-va-1", 0)), nil)
	if want := "2026-12-01 10:00:00 UTC, transferred de-fra-1 → us-va-1, region EU, entry 100, inclusion proof verified by the server (checkpoint 500)"; v.Steps[0].Title != want {
		t.Errorf("title %q, want %q", v.Steps[0].Title, want)
	}
}

// TestJourneyBounded: more data centres than MaxJourneyLanes share one
// other lane; more events than MaxJourneySteps are not all drawn; the
// page says so.
func TestJourneyBounded(t *testing.T) {
	var evs []record.Event
	for i := 0; i < MaxJourneySteps+30; i++ {
		evs = append(evs, jev("EU", record.Stored, fmt.Sprintf("dc-%03d", i%40), "", time.Duration(i)*time.Minute))
	}
	p := journeyPage(evs...)
	v := newJourney(p, nil)
	if len(v.Lanes) != MaxJourneyLanes+1 || v.Lanes[MaxJourneyLanes].Name != OtherLabel || !v.Lanes[MaxJourneyLanes].Other {
		t.Errorf("%d lanes (%q), want %d and %s", len(v.Lanes), laneNames(v), MaxJourneyLanes+1, OtherLabel)
	}
	if v.Folded != 40-MaxJourneyLanes {
		t.Errorf("Folded = %d, want %d", v.Folded, 40-MaxJourneyLanes)
	}
	if len(v.Steps) != MaxJourneySteps || v.Drawn != MaxJourneySteps || v.Shown != len(evs) {
		t.Errorf("%d steps drawn (Drawn %d, Shown %d), want %d of %d", len(v.Steps), v.Drawn, v.Shown, MaxJourneySteps, len(evs))
	}
	other := v.Lanes[MaxJourneyLanes].Y
	for _, s := range v.Steps {
		if s.Location >= fmt.Sprintf("dc-%03d", MaxJourneyLanes) && s.Y != other {
			t.Errorf("step at %s is not in the other lane", s.Location)
		}
	}
	d := newTestDashboard(t)
	p.Journey = v
	var buf bytes.Buffer
	if err := d.tmpl.ExecuteTemplate(&buf, "journey", v); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, want := range []string{
		fmt.Sprintf("draws the first %d of the %d events", MaxJourneySteps, len(evs)),
		fmt.Sprintf("a lane for the first %d data centres visited; %d more share the <code>%s</code> lane", MaxJourneyLanes, 40-MaxJourneyLanes, OtherLabel),
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the journey does not say %q", want)
		}
	}
	// MaxJourneySteps steps of this size make a bounded SVG.
	if len(page) > 200<<10 {
		t.Errorf("the journey of %d steps is %d bytes", MaxJourneySteps, len(page))
	}
}

// newTestDashboard is a Dashboard with the templates only (enough to
// render the journey).
func newTestDashboard(t *testing.T) *Dashboard {
	t.Helper()
	s := startSiteIndex(t, nil, false, false)
	return s.dash
}

// TestJourneyGolden renders the journey's SVG for a fixed chain and
// compares it with testdata/journey*.svg (go test ./dashboard -run
// TestJourneyGolden -update-journey rewrites them); the SVG must be
// well-formed XML with one focusable link per step.
func TestJourneyGolden(t *testing.T) {
	d := newTestDashboard(t)
	equal := []record.Event{
		jev("EU", record.Collected, "de-fra-1", "", 0),
		jev("EU", record.Transferred, "de-fra-1", "ch-zrh-1", 0),
		jev("EU", record.Released, "ch-zrh-1", "", 0),
	}
	for _, tc := range []struct {
		file    string
		page    *samplePage
		steps   int
		toScale bool
	}{
		{"journey.svg", func() *samplePage {
			p := journeyPage(travel()...)
			p.Index = &indexView{Size: 480, Complete: true, Events: 7}
			p.Chain[3].Findings = []audit.Finding{{Kind: audit.KindReroute}}
			return p
		}(), 7, true},
		{"journey-even.svg", func() *samplePage {
			p := journeyPage(equal...)
			p.Chain[2].Included = false
			return p
		}(), 3, false},
	} {
		t.Run(tc.file, func(t *testing.T) {
			v := newJourney(tc.page, testPolicy(t))
			if v.ToScale != tc.toScale {
				t.Errorf("to scale: %v, want %v", v.ToScale, tc.toScale)
			}
			var buf bytes.Buffer
			if err := d.tmpl.ExecuteTemplate(&buf, "journey-svg", v); err != nil {
				t.Fatal(err)
			}
			got := buf.Bytes()
			links := 0
			dec := xml.NewDecoder(bytes.NewReader(got))
			for {
				tok, err := dec.Token()
				if err == io.EOF {
					break
				} else if err != nil {
					t.Fatalf("the SVG is not well-formed XML: %v", err)
				}
				if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "a" {
					links++
				}
			}
			if links != tc.steps {
				t.Errorf("%d links, want %d", links, tc.steps)
			}
			path := filepath.Join("testdata", tc.file)
			if *updateJourney {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update-journey to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("the journey SVG differs from %s (run with -update-journey if the change is intended):\n%s", path, got)
			}
		})
	}
}

// TestJourneyOnSamplePage: the sample page of a running log draws the
// journey of its chain, each step linking to its event's row, and the
// page without a policy or index has no forbidden or complete marks.
func TestJourneyOnSamplePage(t *testing.T) {
	s := newSite(t, testPolicy(t))
	s.add(t, s.workload(2, true)...)
	status, body, _ := s.get(t, "/sample?id=smp-EU-000")
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	if n := strings.Count(body, `<a class="step `); n != 7 {
		t.Errorf("%d steps drawn, want the chain's 7", n)
	}
	for _, idx := range []string{"12", "13", "18"} {
		if !strings.Contains(body, `href="#entry-`+idx+`" data-index="`+idx+`"`) || !strings.Contains(body, `id="entry-`+idx+`"`) {
			t.Errorf("no step linking to the row of entry %s", idx)
		}
	}
	// EU's sample 0 is analysed at us-ash-1, not allowed for EU.
	if !strings.Contains(body, `data-action="analysed" data-location="us-ash-1" data-to="" data-x=`) ||
		strings.Count(body, `data-forbidden="true" transform`) != 1 {
		t.Errorf("the analysis at us-ash-1 is not the one forbidden step")
	}
	if n := strings.Count(body, `data-complete="ok"`); n != 7 {
		t.Errorf("%d steps marked complete by the server, want 7", n)
	}

	bare := startSiteIndex(t, nil, false, false)
	bare.add(t, bare.workload(1, true)...)
	_, body, _ = bare.get(t, "/sample?id=smp-EU-000")
	if strings.Count(body, `<a class="step `) != 7 || strings.Contains(body, `class="m-complete`) || strings.Contains(body, `data-forbidden="true"`) {
		t.Error("without an index or policy the journey still claims completeness or forbidden steps")
	}
}

// BenchmarkJourney lays out and renders a sample's journey: a usual one
// (travel, 7 steps) and the largest a page draws (MaxJourneySteps steps
// across MaxJourneyLanes + 1 lanes).
func BenchmarkJourney(b *testing.B) {
	var most []record.Event
	for i := 0; i < MaxJourneySteps; i++ {
		to := ""
		a := record.Stored
		if i%3 == 1 {
			a, to = record.Transferred, fmt.Sprintf("dc-%03d", (i+1)%40)
		}
		most = append(most, jev("EU", a, fmt.Sprintf("dc-%03d", i%40), to, time.Duration(i)*time.Minute))
	}
	pol := testPolicy(b)
	s := startSiteIndex(b, nil, false, false)
	for _, bc := range []struct {
		name string
		evs  []record.Event
	}{{"steps=7", travel()}, {fmt.Sprintf("steps=%d", MaxJourneySteps), most}} {
		b.Run(bc.name, func(b *testing.B) {
			p := journeyPage(bc.evs...)
			var buf bytes.Buffer
			b.ReportAllocs()
			for b.Loop() {
				buf.Reset()
				if err := s.dash.tmpl.ExecuteTemplate(&buf, "journey", newJourney(p, pol)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(buf.Len()), "bytes/page")
		})
	}
}
