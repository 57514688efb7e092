package activity

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/custodylog/custody/record"
)

var t0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC) // a UTC midnight

// ev is an event of action at loc (to for a transfer) at time at, logged
// an hour later.
func ev(action record.Action, region, loc, to string, at time.Time) *record.Event {
	return &record.Event{Sample: "s", Action: action, Region: region, Location: loc, To: to, Time: at, Logged: at.Add(time.Hour), Actor: "a"}
}

func transfer(region, from, to string, at time.Time) *record.Event {
	return ev(record.Transferred, region, from, to, at)
}

// feed adds evs at indices 0, 1, ….
func feed(evs ...*record.Event) *Aggregate {
	a := New()
	for i, e := range evs {
		a.Add(uint64(i), e)
	}
	return a
}

// checkTotals checks that every view of a adds up to what was added.
func checkTotals(t *testing.T, a *Aggregate) {
	t.Helper()
	var flows, days uint64
	for _, f := range a.Flows() {
		flows += f.Events
	}
	if flows != a.Transfers() {
		t.Errorf("flows add up to %d, want %d transfers", flows, a.Transfers())
	}
	for _, b := range a.Series(time.Unix(-1<<40, 0), time.Unix(1<<40, 0), Daily) {
		days += b.Events
	}
	if days+a.Overflow() != a.Events() {
		t.Errorf("day buckets add up to %d and overflow %d, want %d events", days, a.Overflow(), a.Events())
	}
}

func TestFlows(t *testing.T) {
	for _, tc := range []struct {
		name      string
		evs       []*record.Event
		want      []Flow
		transfers uint64
	}{
		{"none", nil, []Flow{}, 0},
		{"not transfers", []*record.Event{ev(record.Collected, "EU", "ch-zrh-1", "", t0), ev(record.Stored, "EU", "ch-zrh-1", "", t0)}, []Flow{}, 0},
		{"one", []*record.Event{transfer("EU", "ch-zrh-1", "de-fra-1", t0)}, []Flow{{Edge{"EU", "ch-zrh-1", "de-fra-1"}, 1}}, 1},
		{"sorted by region, from, to; direction and region count", []*record.Event{
			transfer("US", "us-ash-1", "ch-zrh-1", t0),
			transfer("EU", "de-fra-1", "ch-zrh-1", t0),
			transfer("EU", "ch-zrh-1", "de-fra-1", t0),
			transfer("EU", "ch-zrh-1", "de-fra-1", t0.Add(time.Hour)),
			ev(record.Analysed, "EU", "de-fra-1", "", t0),
			transfer("EU", "ch-zrh-1", "sg-sin-1", t0),
			transfer("ROW", "ch-zrh-1", "de-fra-1", t0),
		}, []Flow{
			{Edge{"EU", "ch-zrh-1", "de-fra-1"}, 2},
			{Edge{"EU", "ch-zrh-1", "sg-sin-1"}, 1},
			{Edge{"EU", "de-fra-1", "ch-zrh-1"}, 1},
			{Edge{"ROW", "ch-zrh-1", "de-fra-1"}, 1},
			{Edge{"US", "us-ash-1", "ch-zrh-1"}, 1},
		}, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := feed(tc.evs...)
			if got := a.Flows(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("flows %v, want %v", got, tc.want)
			}
			if a.Transfers() != tc.transfers || a.Events() != uint64(len(tc.evs)) {
				t.Errorf("%d transfers of %d events, want %d of %d", a.Transfers(), a.Events(), tc.transfers, len(tc.evs))
			}
			checkTotals(t, a)
		})
	}
}

// TestRecent: a flow's entry indices come newest first, at most
// MaxRecent, however often its ring wrapped; other flows' transfers and
// other events are not in it.
func TestRecent(t *testing.T) {
	e := Edge{"EU", "ch-zrh-1", "de-fra-1"}
	for _, n := range []int{1, 2, 7, MaxRecent - 1, MaxRecent, MaxRecent + 1, 2*MaxRecent + 13} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			a := New()
			var want []uint64
			idx := uint64(100)
			for i := 0; i < n; i++ {
				a.Add(idx, transfer(e.Region, e.From, e.To, t0))
				want = append(want, idx)
				a.Add(idx+1, transfer("EU", "de-fra-1", "ch-zrh-1", t0)) // the reverse flow
				a.Add(idx+2, ev(record.Stored, "EU", "de-fra-1", "", t0))
				idx += 3
			}
			slices.Reverse(want)
			want = want[:min(n, MaxRecent)]
			if got := a.Recent(e); !reflect.DeepEqual(got, want) {
				t.Fatalf("recent (%d) starts %v, want %d starting %v", len(got), got[:min(3, len(got))], len(want), want[:min(3, len(want))])
			}
			if got := a.Recent(Edge{"EU", "de-fra-1", "ch-zrh-1"}); len(got) != len(want) || got[0] != want[0]+1 {
				t.Errorf("reverse flow's recent starts %v, want %d starting %d", got[:1], len(want), want[0]+1)
			}
		})
	}
	if got := New().Recent(e); got != nil {
		t.Errorf("recent of an unknown flow is %v, want nil", got)
	}
	if _, _, ok := New().IndexRange(); ok {
		t.Error("an empty aggregate has an index range")
	}
	a := New()
	a.Add(3, ev(record.Stored, "EU", "ch-zrh-1", "", t0))
	for i := uint64(10); i < 10+MaxRecent+5; i++ {
		a.Add(i, transfer(e.Region, e.From, e.To, t0))
	}
	a.Add(5000, transfer("US", "us-ash-1", "ch-zrh-1", t0))
	if first, last, ok := a.IndexRange(); !ok || first != 15 || last != 5000 {
		t.Errorf("index range %d to %d (%v), want 15 (the oldest kept) to 5000", first, last, ok)
	}
}

func TestCollections(t *testing.T) {
	a := feed(
		ev(record.Collected, "US", "us-ash-1", "", t0),
		ev(record.Collected, "EU", "de-fra-1", "", t0),
		ev(record.Collected, "EU", "ch-zrh-1", "", t0),
		ev(record.Collected, "EU", "de-fra-1", "", t0.Add(48*time.Hour)),
		ev(record.Stored, "EU", "sg-sin-1", "", t0),
		transfer("EU", "ch-zrh-1", "de-fra-1", t0),
	)
	want := []Collection{{"EU", "ch-zrh-1", 1}, {"EU", "de-fra-1", 2}, {"US", "us-ash-1", 1}}
	if got := a.Collections(); !reflect.DeepEqual(got, want) {
		t.Errorf("collections %v, want %v", got, want)
	}
}

// TestSeries: buckets are UTC hours and days, a bucket is returned when
// its start is in [from, to) to the nanosecond, whatever the zone of from
// and to.
func TestSeries(t *testing.T) {
	a := feed(
		ev(record.Stored, "EU", "ch-zrh-1", "", t0.Add(-time.Second)), // 23:59:59 the day before
		ev(record.Stored, "EU", "ch-zrh-1", "", t0),
		ev(record.Stored, "EU", "ch-zrh-1", "", t0.Add(59*time.Minute+59*time.Second)),
		ev(record.Stored, "EU", "de-fra-1", "", t0.Add(30*time.Minute)),
		ev(record.Stored, "EU", "ch-zrh-1", "", t0.Add(time.Hour)),
		ev(record.Stored, "EU", "ch-zrh-1", "", t0.Add(25*time.Hour)),
	)
	h := func(n int, loc string, events uint64) Bucket {
		return Bucket{Start: t0.Add(time.Duration(n) * time.Hour), Location: loc, Events: events}
	}
	d := func(n int, loc string, events uint64) Bucket {
		return Bucket{Start: t0.Add(time.Duration(n) * 24 * time.Hour), Location: loc, Events: events}
	}
	zone := time.FixedZone("UTC+5", 5*3600)
	ns := time.Nanosecond
	for _, tc := range []struct {
		name     string
		from, to time.Time
		r        Resolution
		want     []Bucket
	}{
		{"hours, all", t0.Add(-48 * time.Hour), t0.Add(48 * time.Hour), Hourly, []Bucket{h(-1, "ch-zrh-1", 1), h(0, "ch-zrh-1", 2), h(0, "de-fra-1", 1), h(1, "ch-zrh-1", 1), h(25, "ch-zrh-1", 1)}},
		{"hours, from a bucket's start, to the next's", t0, t0.Add(time.Hour), Hourly, []Bucket{h(0, "ch-zrh-1", 2), h(0, "de-fra-1", 1)}},
		{"hours, to just past a start includes it", t0, t0.Add(time.Hour + ns), Hourly, []Bucket{h(0, "ch-zrh-1", 2), h(0, "de-fra-1", 1), h(1, "ch-zrh-1", 1)}},
		{"hours, from just past a start excludes it", t0.Add(ns), t0.Add(2 * time.Hour), Hourly, []Bucket{h(1, "ch-zrh-1", 1)}},
		{"hours, from just before a start includes it", t0.Add(-ns), t0.Add(time.Hour), Hourly, []Bucket{h(0, "ch-zrh-1", 2), h(0, "de-fra-1", 1)}},
		{"hours, mid-bucket from", t0.Add(-30 * time.Minute), t0.Add(30 * time.Minute), Hourly, []Bucket{h(0, "ch-zrh-1", 2), h(0, "de-fra-1", 1)}},
		{"hours, empty range", t0, t0, Hourly, nil},
		{"hours, reversed range", t0.Add(time.Hour), t0, Hourly, nil},
		{"days, all", t0.Add(-48 * time.Hour), t0.Add(48 * time.Hour), Daily, []Bucket{d(-1, "ch-zrh-1", 1), d(0, "ch-zrh-1", 3), d(0, "de-fra-1", 1), d(1, "ch-zrh-1", 1)}},
		{"days, one UTC day", t0, t0.Add(24 * time.Hour), Daily, []Bucket{d(0, "ch-zrh-1", 3), d(0, "de-fra-1", 1)}},
		{"days, the same day in another zone", t0.In(zone), t0.Add(24 * time.Hour).In(zone), Daily, []Bucket{d(0, "ch-zrh-1", 3), d(0, "de-fra-1", 1)}},
		{"days, a local midnight is not a bucket's start", time.Date(2026, 11, 1, 0, 0, 0, 0, zone), time.Date(2026, 11, 2, 0, 0, 0, 0, zone), Daily, []Bucket{d(0, "ch-zrh-1", 3), d(0, "de-fra-1", 1)}},
		{"days, from one ns past midnight", t0.Add(ns), t0.Add(48 * time.Hour), Daily, []Bucket{d(1, "ch-zrh-1", 1)}},
		{"days, to at a midnight excludes that day", t0.Add(-24 * time.Hour), t0, Daily, []Bucket{d(-1, "ch-zrh-1", 1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := a.Series(tc.from, tc.to, tc.r)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Series(%v, %v, %v)\n got %v\nwant %v", tc.from, tc.to, tc.r, got, tc.want)
			}
			for _, b := range got {
				if b.Start.Location() != time.UTC {
					t.Errorf("bucket start %v not in UTC", b.Start)
				}
			}
		})
	}
	if got := New().Series(t0, t0.Add(time.Hour), Hourly); got != nil {
		t.Errorf("an empty aggregate's series is %v", got)
	}
}

// TestHourlyWindow: the hourly cells are kept for the whole hours
// ending with the newest event's hour; an event of an older hour is not
// counted in an hourly cell, even when its hour had cells once, so an
// hourly bucket returned is never short of events. The daily cells keep
// everything.
func TestHourlyWindow(t *testing.T) {
	last := t0.Add(1000*time.Hour + 17*time.Minute)
	oldest := last.Truncate(time.Hour).Add(-HourlyWindow + time.Hour) // the window's first hour
	a := New()
	add := func(at time.Time) { a.Add(a.Events(), ev(record.Stored, "EU", "ch-zrh-1", "", at)) }
	add(oldest.Add(-time.Hour))   // the hour before the window, while it is the newest
	add(oldest.Add(-time.Second)) // same hour
	add(oldest)
	add(last)
	add(oldest.Add(-time.Hour + time.Minute)) // that hour again, now out of the window
	add(oldest.Add(59 * time.Minute))         // still in the window
	all := func() []Bucket { return a.Series(time.Time{}, last.Add(time.Hour), Hourly) }
	want := []Bucket{
		{Start: oldest, Location: "ch-zrh-1", Events: 2},
		{Start: last.Truncate(time.Hour), Location: "ch-zrh-1", Events: 1},
	}
	if got := all(); !reflect.DeepEqual(got, want) {
		t.Fatalf("hourly series %v, want %v", got, want)
	}
	a.pruneHours()
	if len(a.hours) != 2 {
		t.Errorf("%d hourly cells after pruning, want 2", len(a.hours))
	}
	if got := all(); !reflect.DeepEqual(got, want) {
		t.Errorf("hourly series after pruning %v, want %v", got, want)
	}
	checkTotals(t, a)
	// Many hours at many locations: the cells stay bounded, pruned as the
	// window moves.
	for i := 0; i < 20*int(windowHours); i++ {
		for l := 0; l < 3; l++ {
			a.Add(a.Events(), ev(record.Stored, "EU", fmt.Sprintf("l-%d", l), "", last.Add(time.Duration(i)*time.Hour)))
		}
		if len(a.hours) > 2*int(windowHours)*max(1, len(a.locations)) {
			t.Fatalf("%d hourly cells at %d locations", len(a.hours), len(a.locations))
		}
	}
	if n := len(a.Series(time.Time{}, time.Unix(1<<40, 0), Hourly)); n != 3*int(windowHours) {
		t.Errorf("%d hourly buckets returned, want the window's %d hours at 3 locations", n, windowHours)
	}
	checkTotals(t, a)
}

func TestPickResolution(t *testing.T) {
	last := t0.Add(1000 * time.Hour)
	a := feed(ev(record.Stored, "EU", "ch-zrh-1", "", t0), ev(record.Stored, "EU", "ch-zrh-1", "", last))
	start := last.Add(-HourlyWindow + time.Hour) // the window's first hour
	for _, tc := range []struct {
		name     string
		a        *Aggregate
		from, to time.Time
		want     Resolution
	}{
		{"a day at the end", a, last.Add(-24 * time.Hour), last, Hourly},
		{"three days", a, last.Add(-72 * time.Hour), last, Hourly},
		{"just over three days", a, last.Add(-72*time.Hour - time.Second), last, Daily},
		{"from the window's first hour", a, start, start.Add(time.Hour), Hourly},
		{"from mid-hour before the window: its first bucket is in the window", a, start.Add(-time.Minute), start.Add(time.Hour), Hourly},
		{"from the hour before the window", a, start.Add(-time.Hour), start.Add(time.Hour), Daily},
		{"long ago", a, t0, t0.Add(time.Hour), Daily},
		{"empty aggregate", New(), last.Add(-time.Hour), last, Daily},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.a.PickResolution(tc.from, tc.to); got != tc.want {
				t.Errorf("PickResolution(%v, %v) = %v, want %v", tc.from, tc.to, got, tc.want)
			}
		})
	}
	if Hourly.Duration() != time.Hour || Daily.Duration() != 24*time.Hour || Hourly.String() != "hour" || Daily.String() != "day" {
		t.Error("Resolution's Duration or String is wrong")
	}
}

// TestGrowth: one point per UTC day ending in (from, to], cumulative,
// with the days on which nothing was logged; events logged before from
// count, events without a Logged time do not.
func TestGrowth(t *testing.T) {
	logged := func(at time.Time) *record.Event {
		e := ev(record.Stored, "EU", "ch-zrh-1", "", t0)
		e.Logged = at
		return e
	}
	a := feed(
		logged(t0.Add(-30*time.Hour)), // day -2
		logged(t0.Add(time.Minute)),   // day 0
		logged(t0.Add(23*time.Hour)),  // day 0
		logged(t0.Add(72*time.Hour)),  // day 3, at its start
		logged(time.Time{}),           // not logged
	)
	day := func(n int) time.Time { return t0.AddDate(0, 0, n) }
	for _, tc := range []struct {
		name     string
		from, to time.Time
		want     []Point
	}{
		{"days 0 to 3", day(0), day(4), []Point{{day(1), 3}, {day(2), 3}, {day(3), 3}, {day(4), 4}}},
		{"mid-day bounds: only whole days ending inside", day(0).Add(time.Hour), day(3).Add(time.Hour), []Point{{day(1), 3}, {day(2), 3}, {day(3), 3}}},
		{"to just before a day's end", day(0), day(2).Add(-time.Nanosecond), []Point{{day(1), 3}}},
		{"from at a day's end excludes it", day(1), day(2), []Point{{day(2), 3}}},
		{"before anything", day(-10), day(-8), []Point{{day(-9), 0}, {day(-8), 0}}},
		{"empty range", day(1), day(1), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := a.Growth(tc.from, tc.to); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Growth(%v, %v)\n got %v\nwant %v", tc.from, tc.to, got, tc.want)
			}
		})
	}
	if got := New().Growth(day(0), day(3)); got != nil {
		t.Errorf("an empty aggregate's growth is %v", got)
	}
	if n := len(a.Growth(time.Time{}, day(4))); n != MaxDayCells+1 {
		t.Errorf("growth since year 1 has %d points, want the newest %d", n, MaxDayCells+1)
	}
}

// TestEdgeBounds: past MaxEdges flows, new flows are counted at
// (region, from, OtherKey), at most MaxOther of those, and then at
// (OtherKey, OtherKey, OtherKey); the flows still add up.
func TestEdgeBounds(t *testing.T) {
	a := New()
	n := 0
	add := func(region, from, to string) { a.Add(uint64(n), transfer(region, from, to, t0)); n++ }
	for i := 0; i < MaxEdges; i++ {
		add("EU", fmt.Sprintf("f-%d", i%64), fmt.Sprintf("t-%d", i/64))
	}
	add("EU", "f-0", "t-0")     // an existing flow: still by name
	add("EU", "f-0", "new")     // a new flow from a source with flows
	add("EU", "f-0", "newer")   // same source: same OtherKey flow
	add("US", "us-ash-1", "x1") // a new region
	for i := 0; i < MaxOther+10; i++ {
		add("ROW", fmt.Sprintf("g-%d", i), "x")
	}
	named, other := 0, 0
	counts := map[Edge]uint64{}
	for _, f := range a.Flows() {
		counts[f.Edge] = f.Events
		switch {
		case f.Region == OtherKey:
		case f.To == OtherKey:
			other++
		default:
			named++
		}
	}
	if named != MaxEdges || other != MaxOther || len(counts) != MaxEdges+MaxOther+1 {
		t.Errorf("%d named flows, %d (region, from, %s) flows, %d in all; want %d, %d, %d", named, other, OtherKey, len(counts), MaxEdges, MaxOther, MaxEdges+MaxOther+1)
	}
	for e, want := range map[Edge]uint64{
		{"EU", "f-0", "t-0"}:           2,
		{"EU", "f-0", OtherKey}:        2,
		{"US", "us-ash-1", OtherKey}:   1,
		{"ROW", "g-0", OtherKey}:       1,
		{OtherKey, OtherKey, OtherKey}: 12, // the ROW flows past MaxOther
	} {
		if counts[e] != want {
			t.Errorf("flow %v has %d transfers, want %d", e, counts[e], want)
		}
	}
	if r := a.Recent(Edge{OtherKey, OtherKey, OtherKey}); len(r) != 12 || r[0] != uint64(n-1) {
		t.Errorf("recent of the last OtherKey flow %v, want 12 starting %d", r, n-1)
	}
	checkTotals(t, a)
}

// TestCollectionBounds: past MaxCollections pairs, new pairs count at
// (region, OtherKey), at most MaxOther of those, then at (OtherKey,
// OtherKey).
func TestCollectionBounds(t *testing.T) {
	a := New()
	n := 0
	add := func(region, loc string) { a.Add(uint64(n), ev(record.Collected, region, loc, "", t0)); n++ }
	for i := 0; i < MaxCollections; i++ {
		add("EU", fmt.Sprintf("l-%d", i))
	}
	add("EU", "l-0")
	add("EU", "new")
	add("EU", "newer")
	for i := 0; i < MaxOther+5; i++ {
		add(fmt.Sprintf("R%d", i), "x")
	}
	counts := map[[2]string]uint64{}
	var sum uint64
	for _, c := range a.Collections() {
		counts[[2]string{c.Region, c.Location}] = c.Events
		sum += c.Events
	}
	if sum != uint64(n) || len(counts) != MaxCollections+MaxOther+1 {
		t.Errorf("%d collections adding up to %d, want %d adding up to %d", len(counts), sum, MaxCollections+MaxOther+1, n)
	}
	for k, want := range map[[2]string]uint64{
		{"EU", "l-0"}:        2,
		{"EU", OtherKey}:     2,
		{"R0", OtherKey}:     1,
		{OtherKey, OtherKey}: 5 + 1, // MaxOther-1 regions fit besides EU
	} {
		if counts[k] != want {
			t.Errorf("collection %v has %d, want %d", k, counts[k], want)
		}
	}
}

// TestLocationBound: the series keeps MaxLocations data centres by name
// and counts the others under OtherKey.
func TestLocationBound(t *testing.T) {
	a := New()
	for i := 0; i < MaxLocations+40; i++ {
		a.Add(uint64(i), ev(record.Stored, "EU", fmt.Sprintf("l-%d", i), "", t0))
	}
	locs := map[string]uint64{}
	for _, b := range a.Series(t0, t0.Add(time.Hour), Hourly) {
		locs[b.Location] += b.Events
	}
	if len(locs) != MaxLocations+1 || locs[OtherKey] != 40 || locs["l-0"] != 1 {
		t.Errorf("%d locations, %d events under %s; want %d and 40", len(locs), locs[OtherKey], OtherKey, MaxLocations+1)
	}
	checkTotals(t, a)
}

// TestDayCellBound: past MaxDayCells (day, location) cells, the events of
// new cells are only counted in Overflow (and existing cells still
// count); past MaxDayCells days of Logged time, in LoggedOverflow.
func TestDayCellBound(t *testing.T) {
	a := New()
	day := func(i int) time.Time { return t0.AddDate(0, 0, i-MaxDayCells) }
	for i := 0; i < MaxDayCells+30; i++ {
		a.Add(uint64(i), ev(record.Stored, "EU", "ch-zrh-1", "", day(i)))
	}
	a.Add(MaxDayCells+30, ev(record.Stored, "EU", "ch-zrh-1", "", day(0))) // an existing cell
	if len(a.days) != MaxDayCells || a.Overflow() != 30 || len(a.logged) != MaxDayCells || a.LoggedOverflow() != 30 {
		t.Errorf("%d day cells, overflow %d, %d logged days, logged overflow %d; want %d, 30, %d, 30", len(a.days), a.Overflow(), len(a.logged), a.LoggedOverflow(), MaxDayCells, MaxDayCells)
	}
	if got := a.Series(day(0), day(1), Daily); len(got) != 1 || got[0].Events != 2 {
		t.Errorf("first day's buckets %v, want one of 2 events", got)
	}
	checkTotals(t, a)
	g := a.Growth(day(MaxDayCells+40), day(MaxDayCells+41))
	if len(g) != 1 || g[0].Events+a.LoggedOverflow() != a.Events() {
		t.Errorf("growth at the end %v, want all %d events less %d lost", g, a.Events(), a.LoggedOverflow())
	}
}

// TestSpan: the earliest and latest event times, whatever their order.
func TestSpan(t *testing.T) {
	if _, _, ok := New().Span(); ok {
		t.Error("an empty aggregate has a span")
	}
	a := feed(ev(record.Stored, "EU", "ch-zrh-1", "", t0), ev(record.Stored, "EU", "ch-zrh-1", "", t0.Add(-time.Hour)), ev(record.Stored, "EU", "ch-zrh-1", "", t0.Add(time.Hour)))
	first, last, ok := a.Span()
	if !ok || !first.Equal(t0.Add(-time.Hour)) || !last.Equal(t0.Add(time.Hour)) || first.Location() != time.UTC {
		t.Errorf("span %v..%v %v", first, last, ok)
	}
}

// TestClone: a clone and its original change independently.
func TestClone(t *testing.T) {
	e := Edge{"EU", "ch-zrh-1", "de-fra-1"}
	a := New()
	for i := 0; i < MaxRecent+5; i++ {
		a.Add(uint64(i), transfer(e.Region, e.From, e.To, t0.Add(time.Duration(i)*time.Minute)))
	}
	a.Add(MaxRecent+5, ev(record.Collected, "EU", "ch-zrh-1", "", t0))
	c := a.Clone()
	view := func(x *Aggregate) string {
		return fmt.Sprint(x.Flows(), x.Recent(e), x.Collections(), x.Series(t0, t0.Add(72*time.Hour), Hourly),
			x.Series(t0, t0.Add(72*time.Hour), Daily), x.Growth(t0, t0.Add(72*time.Hour)), x.Events(), x.Transfers())
	}
	before := view(a)
	if view(c) != before {
		t.Fatal("the clone differs from its original")
	}
	for i := 0; i < 3; i++ {
		a.Add(MaxRecent+6+uint64(i), transfer(e.Region, e.From, e.To, t0.Add(50*time.Hour)))
		a.Add(MaxRecent+9+uint64(i), ev(record.Collected, "EU", "ch-zrh-1", "", t0.Add(30*time.Hour)))
	}
	if view(c) != before {
		t.Error("adding to the original changed the clone")
	}
	c2 := a.Clone()
	after := view(a)
	c2.Add(5000, transfer(e.Region, e.From, e.To, t0))
	c2.Add(5001, transfer("US", "us-ash-1", "ch-zrh-1", t0))
	if view(a) != after {
		t.Error("adding to a clone changed the original")
	}
}

// BenchmarkAdd measures Add on a workload like the audit benchmark's
// (six routes, every action, one event a second), the cost an Aggregate
// adds to every event the server counts and the auditor checks:
//
//	go test ./activity -run '^$' -bench Add
func BenchmarkAdd(b *testing.B) {
	routes := [][3]string{{"EU", "de-fra-1", "ch-zrh-1"}, {"US", "us-ash-1", "ch-zrh-1"}, {"UK", "uk-lon-1", "ch-zrh-1"},
		{"ROW", "sg-sin-1", "ru-mow-1"}, {"ROW", "sg-sin-1", "ch-zrh-1"}, {"EU", "ch-zrh-1", "de-fra-1"}}
	actions := []record.Action{record.Collected, record.Transferred, record.Stored, record.Analysed, record.Deleted, record.Deleted}
	const n = 1 << 16
	evs := make([]record.Event, n)
	for i := range evs {
		r := routes[(i/6)%len(routes)]
		evs[i] = record.Event{Sample: "s", Action: actions[i%6], Region: r[0], Location: r[1], Time: t0.Add(time.Duration(i) * time.Second), Actor: "a"}
		evs[i].Logged = evs[i].Time.Add(time.Second)
		if evs[i].Action == record.Transferred {
			evs[i].To = r[2]
		}
	}
	a := New()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e := &evs[i%n]
		if i%n == 0 && i > 0 {
			a = New() // event times start over
		}
		a.Add(uint64(i), e)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
