package verify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/custodylog/custody/record"
)

// Finding is one problem the policy engine found with one logged event.
type Finding struct {
	// Index is the leaf index of the offending event.
	Index uint64 `json:"index"`
	// Sample is the event's sample identifier.
	Sample string `json:"sample"`
	// Kind is one of the Kind constants.
	Kind string `json:"kind"`
	// Detail is one sentence for people; its wording is fixed for a given
	// event and engine state (tests compare it), but programs should
	// act on Kind.
	Detail string `json:"detail"`
}

// String returns "INDEX SAMPLE KIND: DETAIL".
func (f Finding) String() string {
	return fmt.Sprintf("%d %s %s: %s", f.Index, f.Sample, f.Kind, f.Detail)
}

// The kinds of finding, in the order Engine.Add reports them for one event.
const (
	// KindUnknownRegion: the event's region is not in the policy.
	KindUnknownRegion = "unknown-region"
	// KindUnknownLocation: the event's location, or a transfer's
	// destination, is not in the policy. One finding per such location;
	// never also reported as a reroute.
	KindUnknownLocation = "unknown-location"
	// KindReroute: the event's location, or a transfer's destination, is
	// in the policy but not allowed for the sample's region. One finding
	// per such location.
	KindReroute = "reroute"
	// KindContinuity: the event happened where the sample was not present,
	// or after the sample had been deleted from every location it was
	// present in.
	KindContinuity = "continuity"
	// KindRegionChange: the event's region differs from the sample's
	// region, the region of its first event.
	KindRegionChange = "region-change"
	// KindLate: the event was logged more than the policy's MaxLogDelay
	// after its time, or its time is more than record.MaxFutureSkew after
	// it was logged.
	KindLate = "late"
)

// Engine is the policy engine of an audit: it evaluates the events of a log
// one by one, in index order, against a Policy and against the custody
// history of each sample so far.
//
// The engine keeps, per sample, the sample's region (the region of its first
// event), the index of that first event, the set of locations where the
// sample is present, and whether it has been deleted from every location it
// was present in; and, over all events, the count of events per region ×
// location. This state does not depend on the policy, so a state saved with
// MarshalState can be resumed under a changed policy: the findings of the
// events evaluated before keep the old policy, later ones get the new one.
//
// # Rules
//
// For an event e with index i, Add reports, in this order:
//
//  1. unknown-region if e.Region is not a key of Policy.Regions.
//  2. unknown-location for e.Location, then for e.To of a transfer, if it is
//     not a key of Policy.Locations.
//  3. reroute for e.Location, then for e.To of a transfer, if it is a key of
//     Policy.Locations but not in the Allowed list of the sample's region.
//     The sample's region is the region of its first event, even when e
//     logs another region (a region change cannot move a sample's
//     allowance), and even when e.Region is not in the policy. When the
//     sample's region is not in the policy no reroute check is possible
//     and none is reported.
//  4. continuity (at most one per event), with presence judged in log
//     order: any action, collected included, after the sample was deleted
//     from every location where it was present ("after deletion
//     everywhere"); otherwise transferred, deleted, stored, analysed or
//     released when the sample is not present at e.Location (for a
//     transfer, the source). Collected is otherwise always allowed: a
//     sample may be collected again, at the same or another location,
//     while present elsewhere.
//  5. region-change if e.Region differs from the sample's region. Every
//     event logged under a region other than the first is reported, not
//     only the first such event.
//  6. late if e.Logged − e.Time > Policy.MaxLogDelay, or e.Time − e.Logged >
//     record.MaxFutureSkew. An event with a zero Logged (not from a log) is
//     never late.
//
// After the checks the event takes effect whether or not it broke
// continuity, so that one missing link gives one finding rather than a
// cascade: collected at L makes the sample present at L; transferred from L
// to M makes it present at both L and M (a transfer copies; the source copy
// stays until deleted); stored, analysed and released at L make it present
// at L (the event is evidence that it was there); deleted at L ends the
// presence at L, and if that leaves the sample present nowhere it is
// "deleted everywhere" until a later event (itself a continuity finding)
// makes it present again. A deletion where the sample was not present
// changes nothing.
//
// The findings of an event depend only on the policy, the event, and the
// state left by the events before it; two engines with the same policy fed
// the same events, in one pass or resumed from MarshalState at any point,
// report identical findings. An Engine is not safe for concurrent use.
type Engine struct {
	locations map[string]string        // known location → country
	regions   map[string]*engineRegion // known region → its rule
	maxDelay  time.Duration            // policy's MaxLogDelay
	next      uint64                   // index the next Add must have
	samples   map[string]*sampleState  // per-sample custody state
	counts    map[countKey]*uint64     // events per region × location
	names     map[string]string        // interned locations and regions
	present   []string                 // scratch for sorted presence lists
	findings  []Finding                // scratch for Add
}

type engineRegion struct {
	allowed map[string]bool
	list    string // "a, b, c" as in the policy, for details
}

type countKey struct{ region, location string }

type sampleState struct {
	region  string   // the region of the first event
	first   uint64   // index of the first event
	present []string // locations where the sample is present, unordered
	gone    bool     // was present, and has been deleted everywhere
	goneAt  uint64   // index of the deletion that made it gone
}

// NewEngine returns an engine that evaluates events against p, starting at
// index 0 with no history. The engine copies what it needs from p: later
// changes to p do not affect it. p must not be nil.
func NewEngine(p *Policy) *Engine {
	e := &Engine{
		locations: make(map[string]string, len(p.Locations)),
		regions:   make(map[string]*engineRegion, len(p.Regions)),
		maxDelay:  p.MaxLogDelay,
		samples:   make(map[string]*sampleState),
		counts:    make(map[countKey]*uint64),
		names:     make(map[string]string),
	}
	for name, loc := range p.Locations {
		e.locations[name] = loc.Country
	}
	for name, r := range p.Regions {
		er := &engineRegion{allowed: make(map[string]bool, len(r.Allowed)), list: strings.Join(r.Allowed, ", ")}
		for _, l := range r.Allowed {
			if _, known := p.Locations[l]; known {
				er.allowed[l] = true
			}
		}
		e.regions[name] = er
	}
	return e
}

// Next returns the index that the next call of Add must have: the number of
// events evaluated so far, counting those before a resumed state.
func (e *Engine) Next() uint64 { return e.next }

// Add evaluates the event with the given leaf index, updates the engine's
// state, and returns the event's findings in the order of the rules in the
// Engine documentation (nil when there are none). index must equal Next();
// Add panics otherwise, since skipping or repeating events would make every
// later continuity judgement wrong.
//
// ev should satisfy ev.Validate(), as every event from record.DecodeEntry
// does; Add does not check it, and names in details that are not valid
// location or region names are quoted. The returned slice is the caller's.
func (e *Engine) Add(index uint64, ev record.Event) []Finding {
	if index != e.next {
		panic(fmt.Sprintf("verify: Engine.Add(%d, …) out of order: want index %d", index, e.next))
	}
	e.next++
	e.findings = e.findings[:0]

	st := e.samples[ev.Sample]
	if st == nil {
		st = &sampleState{region: e.intern(ev.Region), first: index}
		e.samples[strings.Clone(ev.Sample)] = st
	}
	transfer := ev.Action == record.Transferred

	// 1. unknown-region
	if _, ok := e.regions[ev.Region]; !ok {
		e.report(index, ev, KindUnknownRegion, "region "+quoteRegion(ev.Region)+" is not in the policy")
	}

	// 2. unknown-location
	_, locKnown := e.locations[ev.Location]
	if !locKnown {
		e.report(index, ev, KindUnknownLocation, "location "+quoteLocation(ev.Location)+" is not in the policy")
	}
	toKnown := true
	if transfer {
		if _, toKnown = e.locations[ev.To]; !toKnown {
			e.report(index, ev, KindUnknownLocation, "transfer destination "+quoteLocation(ev.To)+" is not in the policy")
		}
	}

	// 3. reroute, against the sample's (first) region
	if rule := e.regions[st.region]; rule != nil {
		if locKnown && !rule.allowed[ev.Location] {
			verb := string(ev.Action) + " at "
			if transfer {
				verb = "transferred from "
			}
			e.report(index, ev, KindReroute, e.rerouteDetail(verb, ev.Location, st.region, rule))
		}
		if transfer && toKnown && !rule.allowed[ev.To] {
			e.report(index, ev, KindReroute, e.rerouteDetail("transferred to ", ev.To, st.region, rule))
		}
	}

	// 4. continuity
	here := slices.Contains(st.present, ev.Location)
	switch {
	case st.gone:
		e.report(index, ev, KindContinuity, fmt.Sprintf("%s after deletion everywhere (deleted everywhere at index %d)",
			actionAt(ev), st.goneAt))
	case ev.Action != record.Collected && !here:
		e.report(index, ev, KindContinuity, actionAt(ev)+", where the sample is not present ("+e.presence(st, index)+")")
	}

	// 5. region-change
	if ev.Region != st.region {
		e.report(index, ev, KindRegionChange, fmt.Sprintf("logged under region %s, but the sample's region is %s (first logged at index %d)",
			quoteRegion(ev.Region), quoteRegion(st.region), st.first))
	}

	// 6. late
	if !ev.Logged.IsZero() {
		if d := ev.Logged.Sub(ev.Time); d > e.maxDelay {
			e.report(index, ev, KindLate, fmt.Sprintf("logged %v after its time, more than max_log_delay %v", d, e.maxDelay))
		} else if d := ev.Time.Sub(ev.Logged); d > record.MaxFutureSkew {
			e.report(index, ev, KindLate, fmt.Sprintf("time is %v after it was logged, more than the allowed skew of %v", d, record.MaxFutureSkew))
		}
	}

	// Effects.
	switch ev.Action {
	case record.Deleted:
		if here {
			st.present = removeString(st.present, ev.Location)
			if len(st.present) == 0 {
				st.gone, st.goneAt = true, index
			}
		}
	case record.Transferred:
		if !here {
			st.present = append(st.present, e.intern(ev.Location))
		}
		if !slices.Contains(st.present, ev.To) {
			st.present = append(st.present, e.intern(ev.To))
		}
		st.gone = false
	default:
		if !here {
			st.present = append(st.present, e.intern(ev.Location))
		}
		st.gone = false
	}
	if !st.gone {
		st.goneAt = 0
	}

	k := countKey{ev.Region, ev.Location}
	if n := e.counts[k]; n != nil {
		*n++
	} else {
		one := uint64(1)
		e.counts[countKey{e.intern(ev.Region), e.intern(ev.Location)}] = &one
	}

	if len(e.findings) == 0 {
		return nil
	}
	return slices.Clone(e.findings)
}

func (e *Engine) report(index uint64, ev record.Event, kind, detail string) {
	e.findings = append(e.findings, Finding{Index: index, Sample: ev.Sample, Kind: kind, Detail: detail})
}

func (e *Engine) rerouteDetail(verb, loc, region string, rule *engineRegion) string {
	return fmt.Sprintf("%s%s (%s), not allowed for region %s (allowed: %s)", verb, loc, e.locations[loc], region, rule.list)
}

// presence describes where the sample is present, for a continuity detail.
func (e *Engine) presence(st *sampleState, index uint64) string {
	switch {
	case st.first == index:
		return "no earlier event of the sample"
	case len(st.present) == 0:
		return "present nowhere"
	}
	e.present = append(e.present[:0], st.present...)
	slices.Sort(e.present)
	for i, l := range e.present {
		e.present[i] = quoteLocation(l)
	}
	return "present at " + strings.Join(e.present, ", ")
}

func actionAt(ev record.Event) string {
	if ev.Action == record.Transferred {
		return "transferred from " + quoteLocation(ev.Location)
	}
	return quoteAction(ev.Action) + " at " + quoteLocation(ev.Location)
}

func quoteAction(a record.Action) string {
	switch a {
	case record.Collected, record.Transferred, record.Stored, record.Analysed, record.Released, record.Deleted:
		return string(a)
	}
	return fmt.Sprintf("%q", string(a))
}

// quoteLocation returns s as it is if it is a valid location name, else
// quoted, so that a detail cannot be confused by odd input.
func quoteLocation(s string) string {
	if isLocationName(s) {
		return s
	}
	return fmt.Sprintf("%q", s)
}

func quoteRegion(s string) string {
	if isRegionName(s) {
		return s
	}
	return fmt.Sprintf("%q", s)
}

func removeString(list []string, s string) []string {
	if i := slices.Index(list, s); i >= 0 {
		list[i] = list[len(list)-1]
		list[len(list)-1] = ""
		return list[:len(list)-1]
	}
	return list
}

// intern returns a copy of s that does not share memory with the event it
// came from (DecodeEntry's strings share one allocation per event), reusing
// one copy per distinct value.
func (e *Engine) intern(s string) string {
	if v, ok := e.names[s]; ok {
		return v
	}
	v := strings.Clone(s)
	e.names[v] = v
	return v
}

// Counts returns the number of events evaluated, including those before a
// resumed state, per region (as each event logs it) and location (the
// event's location; for a transfer the source). The map is a fresh copy
// that the caller may keep and change.
func (e *Engine) Counts() map[string]map[string]uint64 {
	out := make(map[string]map[string]uint64)
	for k, n := range e.counts {
		m := out[k.region]
		if m == nil {
			m = make(map[string]uint64)
			out[k.region] = m
		}
		m[k.location] = *n
	}
	return out
}

// stateVersion identifies the format MarshalState writes.
const stateVersion = 1

// engineState is the JSON form of an engine's state.
type engineState struct {
	Version int                          `json:"version"`
	Next    uint64                       `json:"next"`
	Samples map[string]sampleJSON        `json:"samples"`
	Counts  map[string]map[string]uint64 `json:"counts"`
}

type sampleJSON struct {
	Region  string   `json:"region"`
	First   uint64   `json:"first"`
	Present []string `json:"present,omitempty"`
	Gone    *uint64  `json:"gone,omitempty"` // index of the deletion everywhere
}

// MarshalState returns the engine's state as JSON: Next, the per-sample
// custody state and the counts, but not the policy. The output is
// deterministic (object keys sorted, presence lists sorted), so two engines
// in the same state give the same bytes, and UnmarshalState of it restores
// an engine whose later findings, counts and MarshalState are exactly those
// of this one.
func (e *Engine) MarshalState() ([]byte, error) {
	s := engineState{
		Version: stateVersion,
		Next:    e.next,
		Samples: make(map[string]sampleJSON, len(e.samples)),
		Counts:  e.Counts(),
	}
	for id, st := range e.samples {
		sj := sampleJSON{Region: st.region, First: st.first}
		if len(st.present) > 0 {
			sj.Present = slices.Clone(st.present)
			slices.Sort(sj.Present)
		}
		if st.gone {
			at := st.goneAt
			sj.Gone = &at
		}
		s.Samples[id] = sj
	}
	return json.Marshal(s)
}

// UnmarshalState replaces the engine's state (Next, samples, counts) with
// one written by MarshalState; the engine keeps its own policy. It rejects,
// leaving the engine unchanged, state that MarshalState could not have
// written: another version, unknown fields, trailing data, duplicate or
// unsorted presence lists, a sample both present and deleted everywhere,
// indices not below next, zero counts, or counts that do not add up to next.
// Names are not checked: they are whatever the events held.
func (e *Engine) UnmarshalState(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var s engineState
	if err := dec.Decode(&s); err != nil {
		return fmt.Errorf("verify: engine state: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("verify: engine state: data after the JSON object")
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("verify: engine state: "+format, args...)
	}
	if s.Version != stateVersion {
		return bad("version %d, want %d", s.Version, stateVersion)
	}
	names := make(map[string]string)
	intern := func(v string) string {
		if w, ok := names[v]; ok {
			return w
		}
		names[v] = v
		return v
	}
	samples := make(map[string]*sampleState, len(s.Samples))
	for id, sj := range s.Samples {
		if sj.First >= s.Next {
			return bad("sample %q: first index %d not below next %d", id, sj.First, s.Next)
		}
		st := &sampleState{region: intern(sj.Region), first: sj.First}
		for i, l := range sj.Present {
			if i > 0 && l <= sj.Present[i-1] {
				return bad("sample %q: present locations not sorted and distinct", id)
			}
			st.present = append(st.present, intern(l))
		}
		if sj.Gone != nil {
			if len(sj.Present) > 0 {
				return bad("sample %q: both present and deleted everywhere", id)
			}
			if *sj.Gone >= s.Next || *sj.Gone < sj.First {
				return bad("sample %q: deletion index %d outside %d..%d", id, *sj.Gone, sj.First, s.Next-1)
			}
			st.gone, st.goneAt = true, *sj.Gone
		}
		samples[id] = st
	}
	counts := make(map[countKey]*uint64)
	var total uint64
	for region, m := range s.Counts {
		for loc, n := range m {
			if n == 0 {
				return bad("counts: region %q, location %q: zero count", region, loc)
			}
			total += n
			if total < n {
				return bad("counts: total overflows")
			}
			c := n
			counts[countKey{intern(region), intern(loc)}] = &c
		}
	}
	if total != s.Next {
		return bad("counts add up to %d events, want next = %d", total, s.Next)
	}
	e.next = s.Next
	e.samples = samples
	e.counts = counts
	e.names = names
	return nil
}
