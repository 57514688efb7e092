// Package activity keeps the aggregates behind the dashboard's flow diagram
// and timeline and the regulator's report (custody audit --report): the
// transfers per (region, source, destination), the collections per
// (region, data centre), and the events per data centre per day and per
// hour of their time.
//
// An Aggregate is fed the log's events in index order, once each (the
// server's stats.Counter and the auditor both do), and is bounded whatever
// the log holds: at most MaxEdges flows by name (plus MaxOther flows and
// collections under OtherKey), MaxRecent entry indices per flow,
// MaxCollections collections by name, MaxLocations data centres in the
// time series, MaxDayCells day cells and days of growth, and the hourly
// cells of the newest HourlyWindow of event time. What goes past a bound
// is still counted (under OtherKey, or in Overflow), so the totals always
// add up. Which names are kept depends only on the
// order of the events, so a recount gives the same aggregate.
//
// The package does no I/O; MarshalBinary and UnmarshalBinary let the
// server persist an Aggregate and the auditor keep it in its state.
package activity

import (
	"cmp"
	"slices"
	"time"

	"github.com/custodylog/custody/record"
)

// Bounds of an Aggregate.
const (
	// MaxEdges is the most distinct (region, from, to) flows kept under
	// their names; the transfers of further flows are counted at
	// (region, from, OtherKey) while there are at most MaxOther of those,
	// and at (OtherKey, OtherKey, OtherKey) past that.
	MaxEdges = 4096
	// MaxOther is the most flows, and the most collections, named partly
	// by OtherKey (besides the one named by OtherKey only).
	MaxOther = 256
	// MaxCollections is the most distinct (region, location) collections
	// kept under their names; the collections of further pairs are
	// counted at (region, OtherKey) while there are at most MaxOther of
	// those, and at (OtherKey, OtherKey) past that.
	MaxCollections = 4096
	// MaxRecent is the most entry indices kept per flow: its newest
	// transfers, for the dashboard's "samples on this flow" pages.
	MaxRecent = 1000
	// MaxLocations is the most distinct data centres the time series
	// keeps by name; further ones are counted under OtherKey.
	MaxLocations = 256
	// MaxDayCells is the most (day, data centre) cells kept; the events
	// of a new cell past it are only counted in Overflow. It also bounds
	// the days of Logged time kept for Growth (see LoggedOverflow).
	MaxDayCells = 1 << 17
	// HourlyWindow is the span of the hourly cells kept: the whole hours
	// of event time that end at the end of the hour of the newest event
	// time. Older hours are dropped (the daily cells keep their events).
	HourlyWindow = 14 * 24 * time.Hour
)

// OtherKey is the region or location under which what goes past a bound is
// counted. It is not a valid region or location name, so it never collides
// with one (it is stats.OtherKey).
const OtherKey = "(other)"

// Edge names a flow: the transfers of samples of customer Region from data
// centre From to data centre To.
type Edge struct {
	Region string `json:"region"`
	From   string `json:"from"`
	To     string `json:"to"`
}

// Flow is the number of transferred events on one Edge.
type Flow struct {
	Edge
	Events uint64 `json:"events"`
}

// Collection is the number of collected events of customer Region at data
// centre Location: where the region's samples first entered custody.
type Collection struct {
	Region   string `json:"region"`
	Location string `json:"location"`
	Events   uint64 `json:"events"`
}

// Bucket is the number of events at one data centre within one hour or day
// of event time.
type Bucket struct {
	Start    time.Time `json:"start"`
	Location string    `json:"location"`
	Events   uint64    `json:"events"`
}

// Resolution is the width of a Bucket.
type Resolution int

// The resolutions of Series.
const (
	Hourly Resolution = iota
	Daily
)

// Duration is the width of a bucket of resolution r.
func (r Resolution) Duration() time.Duration {
	if r == Hourly {
		return time.Hour
	}
	return 24 * time.Hour
}

// String is "hour" or "day".
func (r Resolution) String() string {
	if r == Hourly {
		return "hour"
	}
	return "day"
}

// cell is a (bucket, location) key; bucket is hours or days since the Unix
// epoch, loc the location's number (Aggregate.locNames) or otherLoc. A
// number rather than the name, so that a cell is hashed without a string.
type cell struct {
	bucket int64
	loc    int32
}

// otherLoc is the cell location of OtherKey.
const otherLoc = -1

// flowState is one flow's count and its newest entry indices, a ring of at
// most MaxRecent.
type flowState struct {
	events uint64
	recent []uint64 // ring; next is where the next index goes once full
	next   int
}

// Aggregate is the activity of a log's events. The zero value is not
// usable: create it with New. It is not safe for concurrent use; its owner
// locks (stats.Counter does) or hands out Clones.
type Aggregate struct {
	flows       map[Edge]*flowState
	collections map[[2]string]uint64
	days        map[cell]uint64
	hours       map[cell]uint64
	logged      map[int64]uint64 // events per day of their Logged time
	locations   map[string]int32 // those the series keeps by name: their number
	locNames    []string         // the names of the numbers in locations
	events      uint64           // events added
	transfers   uint64           // of which transferred
	overflow    uint64           // events in no day cell (MaxDayCells)
	lost        uint64           // events with a Logged time in no day of logged (MaxDayCells)
	otherFlows  int              // flows named (region, from, OtherKey)
	otherColls  int              // collections named (region, OtherKey)
	first, last int64            // event times (Unix seconds) seen; valid when events > 0
}

// windowHours is HourlyWindow in hours.
const windowHours = int64(HourlyWindow / time.Hour)

// New returns an empty Aggregate.
func New() *Aggregate {
	return &Aggregate{
		flows:       map[Edge]*flowState{},
		collections: map[[2]string]uint64{},
		days:        map[cell]uint64{},
		hours:       map[cell]uint64{},
		logged:      map[int64]uint64{},
		locations:   map[string]int32{},
	}
}

// Add counts ev, the event at leaf index index. Events must be added in
// index order, each once; Add does not check either (the owner does).
func (a *Aggregate) Add(index uint64, ev *record.Event) {
	a.events++
	t := ev.Time.Unix()
	if a.events == 1 {
		a.first, a.last = t, t
	} else {
		a.first, a.last = min(a.first, t), max(a.last, t)
	}
	switch ev.Action {
	case record.Transferred:
		a.transfers++
		a.addFlow(index, Edge{Region: ev.Region, From: ev.Location, To: ev.To})
	case record.Collected:
		a.addCollection(ev.Region, ev.Location)
	}
	if !ev.Logged.IsZero() {
		// Below the bound, one map operation rather than a lookup first.
		d := floorDiv(ev.Logged.Unix(), 86400)
		if len(a.logged) < MaxDayCells {
			a.logged[d]++
		} else if n, ok := a.logged[d]; ok {
			a.logged[d] = n + 1
		} else {
			a.lost++
		}
	}
	loc := a.seriesLocation(ev.Location)
	day := cell{floorDiv(t, 86400), loc}
	if len(a.days) < MaxDayCells {
		a.days[day]++
	} else if n, ok := a.days[day]; ok {
		a.days[day] = n + 1
	} else {
		a.overflow++
	}
	if h := floorDiv(t, 3600); h >= a.firstHour() {
		a.hours[cell{h, loc}]++
	}
	// Drop the hourly cells that fell out of the window, now and then
	// (the window moves with the newest event time). At most
	// windowHours*(len(locations)+1) cells are in the window, so this
	// runs once per at least as many Adds.
	if len(a.hours) > 2*int(windowHours)*max(1, len(a.locations)) {
		a.pruneHours()
	}
}

// firstHour is the first hour (since the epoch) of the hourly window:
// windowHours whole hours ending with that of the newest event time.
// Every event of a later hour was counted in its hourly cell: the window
// only moves forward.
func (a *Aggregate) firstHour() int64 {
	return floorDiv(a.last, 3600) - windowHours + 1
}

func (a *Aggregate) addFlow(index uint64, e Edge) {
	f := a.flows[e]
	if f == nil && len(a.flows) >= MaxEdges {
		e.To = OtherKey
		if f = a.flows[e]; f == nil && a.otherFlows >= MaxOther {
			e = Edge{Region: OtherKey, From: OtherKey, To: OtherKey}
			f = a.flows[e]
		}
	}
	if f == nil {
		f = &flowState{}
		a.flows[e] = f
		if e.To == OtherKey && e.Region != OtherKey {
			a.otherFlows++
		}
	}
	f.events++
	if len(f.recent) < MaxRecent {
		f.recent = append(f.recent, index)
		return
	}
	f.recent[f.next] = index
	f.next = (f.next + 1) % MaxRecent
}

// addCollection counts a collected event at (region, location), within
// the bounds.
func (a *Aggregate) addCollection(region, location string) {
	k := [2]string{region, location}
	if _, ok := a.collections[k]; !ok && len(a.collections) >= MaxCollections {
		k[1] = OtherKey
		if _, ok := a.collections[k]; !ok {
			if a.otherColls >= MaxOther {
				k[0] = OtherKey
			} else {
				a.otherColls++
			}
		}
	}
	a.collections[k]++
}

// seriesLocation is the number under which the series counts location.
func (a *Aggregate) seriesLocation(location string) int32 {
	if id, ok := a.locations[location]; ok {
		return id
	}
	if len(a.locations) >= MaxLocations {
		return otherLoc
	}
	id := int32(len(a.locNames))
	a.locations[location] = id
	a.locNames = append(a.locNames, location)
	return id
}

// locName is the name of location number id.
func (a *Aggregate) locName(id int32) string {
	if id == otherLoc {
		return OtherKey
	}
	return a.locNames[id]
}

// pruneHours drops the hourly cells before the window.
func (a *Aggregate) pruneHours() {
	first := a.firstHour()
	for c := range a.hours {
		if c.bucket < first {
			delete(a.hours, c)
		}
	}
}

// floorDiv is a/b rounded towards minus infinity (event times are after
// 1970, but a careless caller's need not be).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// Events is the number of events added.
func (a *Aggregate) Events() uint64 { return a.events }

// Transfers is the number of transferred events added; the Flows add up to
// it.
func (a *Aggregate) Transfers() uint64 { return a.transfers }

// IndexRange returns the smallest and the largest entry index among the
// newest transfers kept (Recent of every flow); ok is false when there
// are none. An owner restoring an aggregate checks them against the
// entries it covers (UnmarshalBinary cannot know those).
func (a *Aggregate) IndexRange() (first, last uint64, ok bool) {
	for _, f := range a.flows {
		for _, i := range f.recent {
			if !ok {
				first, last, ok = i, i, true
			}
			first, last = min(first, i), max(last, i)
		}
	}
	return first, last, ok
}

// Overflow is the number of events the daily series does not hold (past
// MaxDayCells); the day buckets add up to Events less Overflow.
func (a *Aggregate) Overflow() uint64 { return a.overflow }

// LoggedOverflow is the number of events with a Logged time that Growth
// does not count: logged on a day past the MaxDayCells days kept.
func (a *Aggregate) LoggedOverflow() uint64 { return a.lost }

// Span returns the earliest and the latest event time added; ok is false
// when no event was added.
func (a *Aggregate) Span() (first, last time.Time, ok bool) {
	if a.events == 0 {
		return time.Time{}, time.Time{}, false
	}
	return time.Unix(a.first, 0).UTC(), time.Unix(a.last, 0).UTC(), true
}

// Flows returns every flow, sorted by region, source and destination.
func (a *Aggregate) Flows() []Flow {
	out := make([]Flow, 0, len(a.flows))
	for e, f := range a.flows {
		out = append(out, Flow{Edge: e, Events: f.events})
	}
	slices.SortFunc(out, func(x, y Flow) int { return compareEdges(x.Edge, y.Edge) })
	return out
}

func compareEdges(x, y Edge) int {
	return cmp.Or(cmp.Compare(x.Region, y.Region), cmp.Compare(x.From, y.From), cmp.Compare(x.To, y.To))
}

// Recent returns the entry indices of the newest transfers on e (at most
// MaxRecent), newest first; nil when e has no flow.
func (a *Aggregate) Recent(e Edge) []uint64 {
	f := a.flows[e]
	if f == nil {
		return nil
	}
	out := make([]uint64, 0, len(f.recent))
	for i := range f.recent {
		// The newest is just before next (the ring's oldest).
		out = append(out, f.recent[(f.next-1-i+2*len(f.recent))%len(f.recent)])
	}
	return out
}

// Collections returns the collected events per (region, location), sorted
// by region and location.
func (a *Aggregate) Collections() []Collection {
	out := make([]Collection, 0, len(a.collections))
	for k, n := range a.collections {
		out = append(out, Collection{Region: k[0], Location: k[1], Events: n})
	}
	slices.SortFunc(out, func(x, y Collection) int {
		return cmp.Or(cmp.Compare(x.Region, y.Region), cmp.Compare(x.Location, y.Location))
	})
	return out
}

// Series returns the non-empty buckets of resolution r whose start is in
// [from, to), sorted by start and location; a bucket starts on a whole
// hour or a UTC midnight. The hourly buckets are only kept for the
// HourlyWindow of whole hours ending with the newest event's hour: older
// hours are absent (use Daily there; PickResolution chooses), and every
// hourly bucket returned counts all the events added in its hour.
func (a *Aggregate) Series(from, to time.Time, r Resolution) []Bucket {
	cells, width := a.days, int64(86400)
	if r == Hourly {
		cells, width = a.hours, 3600
	}
	// Bucket b starts at b*width: it is in [from, to) when
	// ceil(from/width) <= b < ceil(to/width), to the nanosecond.
	lo, hi := ceilDiv(from, width), ceilDiv(to, width)
	if r == Hourly && a.events > 0 {
		lo = max(lo, a.firstHour())
	}
	var out []Bucket
	for c, n := range cells {
		if c.bucket >= lo && c.bucket < hi {
			out = append(out, Bucket{Start: time.Unix(c.bucket*width, 0).UTC(), Location: a.locName(c.loc), Events: n})
		}
	}
	slices.SortFunc(out, func(x, y Bucket) int {
		return cmp.Or(x.Start.Compare(y.Start), cmp.Compare(x.Location, y.Location))
	})
	return out
}

// ceilDiv is the smallest integer b with b*width at or after t (width in
// seconds), without overflow for any t.
func ceilDiv(t time.Time, width int64) int64 {
	s := t.Unix() // floor: t.Nanosecond() is in [0, 1e9)
	q := floorDiv(s, width)
	if q*width < s || (q*width == s && t.Nanosecond() > 0) {
		q++
	}
	return q
}

// PickResolution is the resolution to draw [from, to) at: hourly for a
// span of up to three days that starts within the hourly window (so every
// hour drawn is kept), daily otherwise.
func (a *Aggregate) PickResolution(from, to time.Time) Resolution {
	if to.Sub(from) <= 72*time.Hour && a.events > 0 && ceilDiv(from, 3600) >= a.firstHour() {
		return Hourly
	}
	return Daily
}

// Point is the number of events the log had logged by End (by their Logged
// time): one point of the tree's growth.
type Point struct {
	End    time.Time `json:"end"`
	Events uint64    `json:"events"`
}

// Growth returns, for each UTC day whose end is in (from, to], the events
// logged up to its end, by their Logged time: the tree's growth in events
// (site attestations, not events, are not counted, nor events without a
// Logged time or in LoggedOverflow). Days on which nothing was logged are
// included, so the points are evenly spaced; a day not yet over at to has
// no point (pass the next midnight as to for today's). At most
// MaxDayCells+1 points are returned: the newest.
func (a *Aggregate) Growth(from, to time.Time) []Point {
	// Day d ends at (d+1)*86400: after from when d >= floor(from/86400),
	// at or before to when d < floor(to/86400).
	lo, hi := floorDiv(from.Unix(), 86400), floorDiv(to.Unix(), 86400)-1
	if hi < lo || len(a.logged) == 0 {
		return nil
	}
	if hi-lo > MaxDayCells {
		lo = hi - MaxDayCells
	}
	var before uint64 // logged on days before lo
	for d, n := range a.logged {
		if d < lo {
			before += n
		}
	}
	out := make([]Point, 0, hi-lo+1)
	for d := lo; d <= hi; d++ {
		before += a.logged[d]
		out = append(out, Point{End: time.Unix((d+1)*86400, 0).UTC(), Events: before})
	}
	return out
}

// Reader is what the dashboard and the report read of an Aggregate. An
// *Aggregate is one (not safe for concurrent use); stats.Counter is one
// that reads its aggregate under its lock while it goes on counting.
type Reader interface {
	Flows() []Flow
	Collections() []Collection
	Recent(e Edge) []uint64
	Series(from, to time.Time, r Resolution) []Bucket
	Growth(from, to time.Time) []Point
	Span() (first, last time.Time, ok bool)
	PickResolution(from, to time.Time) Resolution
	Events() uint64
	Transfers() uint64
}

var _ Reader = (*Aggregate)(nil)

// Clone returns a deep copy of a, for readers while the owner goes on
// adding.
func (a *Aggregate) Clone() *Aggregate {
	c := *a
	c.flows = make(map[Edge]*flowState, len(a.flows))
	for e, f := range a.flows {
		c.flows[e] = &flowState{events: f.events, recent: slices.Clone(f.recent), next: f.next}
	}
	c.collections = cloneMap(a.collections)
	c.days, c.hours, c.locations = cloneMap(a.days), cloneMap(a.hours), cloneMap(a.locations)
	c.locNames = slices.Clone(a.locNames)
	c.logged = cloneMap(a.logged)
	return &c
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
