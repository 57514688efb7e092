package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
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
	// Kind is what is wrong, one of the Kind constants.
	Kind Kind `json:"kind"`
	// Detail is one sentence for people; its wording is fixed for a given
	// event and engine state (tests compare it), but programs should
	// act on Kind.
	Detail string `json:"detail"`
}

// String returns "INDEX SAMPLE KIND: DETAIL".
func (f Finding) String() string {
	return fmt.Sprintf("%d %s %s: %s", f.Index, f.Sample, f.Kind, f.Detail)
}

// Kind is the kind of a Finding: what is wrong with the event. Its value
// is the name in the JSON and text reports ("reroute", …); programs should
// compare it with the constants below, not parse Finding.Detail.
type Kind string

// The kinds of finding, in the order Engine.Add reports them for one event.
const (
	// KindUnknownRegion: the event's region is not in the policy.
	KindUnknownRegion Kind = "unknown-region"
	// KindUnknownLocation: the event's location, or a transfer's
	// destination, is not in the policy. One finding per such location;
	// never also reported as a reroute.
	KindUnknownLocation Kind = "unknown-location"
	// KindReroute: the event's location, or a transfer's destination, is
	// in the policy but not allowed for the sample's region. One finding
	// per such location.
	KindReroute Kind = "reroute"
	// KindContinuity: the event happened where the sample was not present,
	// or after the sample had been deleted from every location it was
	// present in.
	KindContinuity Kind = "continuity"
	// KindRegionChange: the event's region differs from the sample's
	// region, the region of its first event.
	KindRegionChange Kind = "region-change"
	// KindLate: the event was logged more than the policy's MaxLogDelay
	// after its time, or its time is more than record.MaxFutureSkew after
	// it was logged.
	KindLate Kind = "late"
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
//
// # Memory
//
// The engine's memory grows with the number of samples, since continuity is
// judged against each sample's whole history; apart from the interned
// names and the counts, it does not grow with the number of events. A
// sample costs:
//
//   - a 24-byte record (first index, deletion index, region, presence),
//     allocated 1024 at a time, holding no pointers;
//   - its identifier's bytes, copied back to back into 32 KiB blocks rather
//     than allocated one by one;
//   - a slot of the identifier index, a Go map of 24-byte slots (and a
//     control byte each) that is 7/16 to 7/8 full: 28 to 57 bytes a
//     sample;
//   - while it is present somewhere, a list of its locations (a 24-byte
//     slice header and 4 bytes a location, reused by later samples once it
//     is deleted everywhere).
//
// So a sample deleted everywhere costs 52 to 81 bytes plus its identifier:
// 76 bytes on average for the 12-character identifiers of
// BenchmarkEngineState. Location and region names are stored once.
type Engine struct {
	maxDelay time.Duration // policy's MaxLogDelay
	next     uint64        // index the next Add must have

	locs    map[string]*engineLoc    // every location name seen, by name
	locList []*engineLoc             // the same, by id
	regs    map[string]*engineRegion // every region name seen, by name
	regList []*engineRegion          // the same, by id

	ids      map[string]int  // sample identifier → its record's number
	recs     [][]sampleState // the records, in chunks of sampleChunk
	keys     stringArena     // the identifiers' bytes
	sets     [][]uint32      // presence lists (location ids); sampleState.set-1 indexes it
	freeSets []int32         // unused entries of sets (sampleState.set values)

	present  []string  // scratch for sorted presence lists
	findings []Finding // scratch for Add
}

// engineLoc is an interned location name.
type engineLoc struct {
	name    string
	id      uint32
	known   bool   // a key of Policy.Locations
	country string // its country, when known
}

// engineRegion is an interned region name, with its rule if it is in the
// policy, and the counts of the events logged under it.
type engineRegion struct {
	name    string
	id      uint32
	known   bool     // a key of Policy.Regions
	allowed []bool   // by location id: in the region's allowed list
	list    string   // "a, b, c" as in the policy, for details
	counts  []uint64 // by location id: events logged under this region there
}

func (r *engineRegion) allows(l *engineLoc) bool {
	return int(l.id) < len(r.allowed) && r.allowed[l.id]
}

// growCounts extends r.counts with zeros to n locations.
func (r *engineRegion) growCounts(n int) {
	for len(r.counts) < n {
		r.counts = append(r.counts, 0)
	}
}

// sampleState is the custody state of one sample. It holds no pointers, so
// the garbage collector never scans the records.
type sampleState struct {
	first  uint64 // index of the first event
	gone   uint64 // 1 + index of the deletion that left it present nowhere; 0 unless deleted everywhere
	region uint32 // id of the region of the first event
	set    int32  // 1 + index in Engine.sets of the locations where it is present; 0 for none
}

// sampleChunk is the number of sample records allocated at once.
const sampleChunk = 1024

// NewEngine returns an engine that evaluates events against p, starting at
// index 0 with no history. The engine copies what it needs from p: later
// changes to p do not affect it. p must not be nil.
func NewEngine(p *Policy) *Engine {
	e := &Engine{
		maxDelay: p.MaxLogDelay,
		locs:     make(map[string]*engineLoc, len(p.Locations)),
		regs:     make(map[string]*engineRegion, len(p.Regions)),
		ids:      make(map[string]int),
	}
	for name, loc := range p.Locations {
		l := e.loc(name)
		l.known, l.country = true, loc.Country
	}
	for name, r := range p.Regions {
		reg := e.region(name)
		reg.known, reg.list = true, strings.Join(r.Allowed, ", ")
		reg.allowed = make([]bool, len(e.locList))
		for _, name := range r.Allowed {
			if l := e.locs[name]; l != nil && l.known {
				reg.allowed[l.id] = true
			}
		}
	}
	return e
}

// loc returns the interned location name s, adding it if it is new. The
// copy does not share memory with the event s came from (DecodeEntry's
// strings share one allocation per event).
func (e *Engine) loc(s string) *engineLoc {
	if l := e.locs[s]; l != nil {
		return l
	}
	l := &engineLoc{name: strings.Clone(s), id: uint32(len(e.locList))}
	e.locs[l.name] = l
	e.locList = append(e.locList, l)
	return l
}

// region returns the interned region name s, adding it if it is new.
func (e *Engine) region(s string) *engineRegion {
	if r := e.regs[s]; r != nil {
		return r
	}
	r := &engineRegion{name: strings.Clone(s), id: uint32(len(e.regList))}
	e.regs[r.name] = r
	e.regList = append(e.regList, r)
	return r
}

// sample returns the record of sample id, or nil.
func (e *Engine) sample(id string) *sampleState {
	n, ok := e.ids[id]
	if !ok {
		return nil
	}
	return &e.recs[n/sampleChunk][n%sampleChunk]
}

// newSample adds a record for sample id, which must be new.
func (e *Engine) newSample(id string, st sampleState) *sampleState {
	n := len(e.ids)
	if n%sampleChunk == 0 {
		e.recs = append(e.recs, make([]sampleState, sampleChunk))
	}
	e.ids[e.keys.clone(id)] = n
	rec := &e.recs[n/sampleChunk][n%sampleChunk]
	*rec = st
	return rec
}

// presentAt reports whether the sample is present at location id.
func (e *Engine) presentAt(st *sampleState, id uint32) bool {
	return st.set != 0 && slices.Contains(e.sets[st.set-1], id)
}

// addPresent records the sample as present at location id, where it is
// not yet.
func (e *Engine) addPresent(st *sampleState, id uint32) {
	if st.set == 0 {
		if n := len(e.freeSets); n > 0 {
			st.set, e.freeSets = e.freeSets[n-1], e.freeSets[:n-1]
		} else {
			e.sets = append(e.sets, nil)
			st.set = int32(len(e.sets))
		}
	}
	e.sets[st.set-1] = append(e.sets[st.set-1], id)
}

// removePresent ends the sample's presence at location id, where it is
// present, giving its list back when that was the last location.
func (e *Engine) removePresent(st *sampleState, id uint32) {
	set := e.sets[st.set-1]
	i := slices.Index(set, id)
	set[i] = set[len(set)-1]
	set = set[:len(set)-1]
	e.sets[st.set-1] = set
	if len(set) == 0 {
		e.freeSets = append(e.freeSets, st.set)
		st.set = 0
	}
}

// presentNames returns the names of the locations where the sample is
// present, sorted, in e.present.
func (e *Engine) presentNames(st *sampleState) []string {
	e.present = e.present[:0]
	if st.set != 0 {
		for _, id := range e.sets[st.set-1] {
			e.present = append(e.present, e.locList[id].name)
		}
	}
	slices.Sort(e.present)
	return e.present
}

// Next returns the index that the next call of Add must have: the number of
// events evaluated so far, counting those before a resumed state.
func (e *Engine) Next() uint64 { return e.next }

// Skip moves Next forward to index without evaluating the events in
// between, for an engine fed only some of the log's events. The findings of
// a sample depend only on the policy and that sample's own events, so an
// engine fed one sample's events (Skip to each index, then Add) reports
// exactly the findings a full audit reports for that sample; other
// subsets carry no such guarantee. Skip panics if index is below Next.
func (e *Engine) Skip(index uint64) {
	if index < e.next {
		panic(fmt.Sprintf("audit: Engine.Skip(%d) backwards: next is %d", index, e.next))
	}
	e.next = index
}

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
		panic(fmt.Sprintf("audit: Engine.Add(%d, …) out of order: want index %d", index, e.next))
	}
	e.next++
	e.findings = e.findings[:0]

	reg, loc := e.region(ev.Region), e.loc(ev.Location)
	st := e.sample(ev.Sample)
	if st == nil {
		st = e.newSample(ev.Sample, sampleState{first: index, region: reg.id})
	}
	transfer := ev.Action == record.Transferred
	var to *engineLoc
	if transfer {
		to = e.loc(ev.To)
	}

	// 1. unknown-region
	if !reg.known {
		e.report(index, ev, KindUnknownRegion, "region "+quoteRegion(ev.Region)+" is not in the policy")
	}

	// 2. unknown-location
	if !loc.known {
		e.report(index, ev, KindUnknownLocation, "location "+quoteLocation(ev.Location)+" is not in the policy")
	}
	if transfer && !to.known {
		e.report(index, ev, KindUnknownLocation, "transfer destination "+quoteLocation(ev.To)+" is not in the policy")
	}

	// 3. reroute, against the sample's (first) region
	if rule := e.regList[st.region]; rule.known {
		if loc.known && !rule.allows(loc) {
			verb := string(ev.Action) + " at "
			if transfer {
				verb = "transferred from "
			}
			e.report(index, ev, KindReroute, rerouteDetail(verb, loc, rule))
		}
		if transfer && to.known && !rule.allows(to) {
			e.report(index, ev, KindReroute, rerouteDetail("transferred to ", to, rule))
		}
	}

	// 4. continuity
	here := e.presentAt(st, loc.id)
	switch {
	case st.gone != 0:
		e.report(index, ev, KindContinuity, fmt.Sprintf("%s after deletion everywhere (deleted everywhere at index %d)",
			actionAt(ev), st.gone-1))
	case ev.Action != record.Collected && !here:
		e.report(index, ev, KindContinuity, actionAt(ev)+", where the sample is not present ("+e.presence(st, index)+")")
	}

	// 5. region-change
	if reg.id != st.region {
		e.report(index, ev, KindRegionChange, fmt.Sprintf("logged under region %s, but the sample's region is %s (first logged at index %d)",
			quoteRegion(ev.Region), quoteRegion(e.regList[st.region].name), st.first))
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
			e.removePresent(st, loc.id)
			if st.set == 0 {
				st.gone = index + 1
			}
		}
	case record.Transferred:
		if !here {
			e.addPresent(st, loc.id)
		}
		if !e.presentAt(st, to.id) {
			e.addPresent(st, to.id)
		}
		st.gone = 0
	default:
		if !here {
			e.addPresent(st, loc.id)
		}
		st.gone = 0
	}

	if int(loc.id) >= len(reg.counts) {
		reg.growCounts(len(e.locList))
	}
	reg.counts[loc.id]++

	if len(e.findings) == 0 {
		return nil
	}
	return slices.Clone(e.findings)
}

func (e *Engine) report(index uint64, ev record.Event, kind Kind, detail string) {
	e.findings = append(e.findings, Finding{Index: index, Sample: ev.Sample, Kind: kind, Detail: detail})
}

func rerouteDetail(verb string, loc *engineLoc, rule *engineRegion) string {
	return fmt.Sprintf("%s%s (%s), not allowed for region %s (allowed: %s)", verb, loc.name, loc.country, rule.name, rule.list)
}

// presence describes where the sample is present, for a continuity detail.
func (e *Engine) presence(st *sampleState, index uint64) string {
	switch {
	case st.first == index:
		return "no earlier event of the sample"
	case st.set == 0:
		return "present nowhere"
	}
	names := e.presentNames(st)
	for i, l := range names {
		names[i] = quoteLocation(l)
	}
	return "present at " + strings.Join(names, ", ")
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

// stringArena copies strings back to back into large blocks, so that many
// small strings kept for long cost their bytes and not an allocation each
// (rounded up to a size class, and an object for the garbage collector to
// find). A strings.Builder never changes bytes it has written, so the
// strings handed out stay valid while later ones are added.
type stringArena struct {
	b strings.Builder
}

// stringArenaBlock is the size of an arena block; longer strings are
// copied on their own.
const stringArenaBlock = 32 << 10

func (a *stringArena) clone(s string) string {
	if len(s) > stringArenaBlock/8 {
		return strings.Clone(s)
	}
	if a.b.Cap()-a.b.Len() < len(s) {
		a.b = strings.Builder{}
		a.b.Grow(stringArenaBlock)
	}
	start := a.b.Len()
	a.b.WriteString(s)
	return a.b.String()[start:]
}

// Counts returns the number of events evaluated, including those before a
// resumed state, per region (as each event logs it) and location (the
// event's location; for a transfer the source). The map is a fresh copy
// that the caller may keep and change.
func (e *Engine) Counts() map[string]map[string]uint64 {
	out := make(map[string]map[string]uint64)
	for _, r := range e.regList {
		for id, n := range r.counts {
			if n == 0 {
				continue
			}
			m := out[r.name]
			if m == nil {
				m = make(map[string]uint64)
				out[r.name] = m
			}
			m[e.locList[id].name] = n
		}
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
//
// The bytes are exactly what encoding/json's Marshal writes for an
// engineState (the tests hold it to that); they are written directly, since
// a state has an entry per sample.
func (e *Engine) MarshalState() ([]byte, error) {
	type sampleRef struct {
		id string
		n  int
	}
	ids := make([]sampleRef, 0, len(e.ids))
	size := 64
	for id, n := range e.ids {
		ids = append(ids, sampleRef{id, n})
		size += len(id) + 48
	}
	slices.SortFunc(ids, func(x, y sampleRef) int { return strings.Compare(x.id, y.id) })
	b := make([]byte, 0, size+size/4)
	b = append(b, `{"version":`...)
	b = strconv.AppendInt(b, stateVersion, 10)
	b = append(b, `,"next":`...)
	b = strconv.AppendUint(b, e.next, 10)
	b = append(b, `,"samples":{`...)
	for i, ref := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		st := &e.recs[ref.n/sampleChunk][ref.n%sampleChunk]
		b = appendJSONString(b, ref.id)
		b = append(b, `:{"region":`...)
		b = appendJSONString(b, e.regList[st.region].name)
		b = append(b, `,"first":`...)
		b = strconv.AppendUint(b, st.first, 10)
		if st.set != 0 {
			b = append(b, `,"present":[`...)
			for j, l := range e.presentNames(st) {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendJSONString(b, l)
			}
			b = append(b, ']')
		}
		if st.gone != 0 {
			b = append(b, `,"gone":`...)
			b = strconv.AppendUint(b, st.gone-1, 10)
		}
		b = append(b, '}')
	}
	b = append(b, `},"counts":{`...)
	regions := make([]*engineRegion, 0, len(e.regList))
	for _, r := range e.regList {
		if slices.ContainsFunc(r.counts, func(n uint64) bool { return n != 0 }) {
			regions = append(regions, r)
		}
	}
	slices.SortFunc(regions, func(x, y *engineRegion) int { return strings.Compare(x.name, y.name) })
	var locs []*engineLoc
	for i, r := range regions {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, r.name)
		b = append(b, `:{`...)
		locs = locs[:0]
		for id, n := range r.counts {
			if n != 0 {
				locs = append(locs, e.locList[id])
			}
		}
		slices.SortFunc(locs, func(x, y *engineLoc) int { return strings.Compare(x.name, y.name) })
		for j, l := range locs {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, l.name)
			b = append(b, ':')
			b = strconv.AppendUint(b, r.counts[l.id], 10)
		}
		b = append(b, '}')
	}
	b = append(b, `}}`...)
	if cap(b)-len(b) > len(b)/16 {
		b = bytes.Clone(b) // the caller keeps it (AuditState.Engine)
	}
	return b, nil
}

// appendJSONString appends s as encoding/json writes a string: printable
// ASCII other than `"`, `\`, `<`, `>` and `&` as it is, anything else by
// encoding/json itself.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, err := json.Marshal(s)
			if err != nil { // cannot happen for a string
				panic(err)
			}
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
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
		return fmt.Errorf("audit: engine state: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("audit: engine state: data after the JSON object")
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("audit: engine state: "+format, args...)
	}
	if s.Version != stateVersion {
		return bad("version %d, want %d", s.Version, stateVersion)
	}
	for id, sj := range s.Samples {
		if sj.First >= s.Next {
			return bad("sample %q: first index %d not below next %d", id, sj.First, s.Next)
		}
		for i, l := range sj.Present {
			if i > 0 && l <= sj.Present[i-1] {
				return bad("sample %q: present locations not sorted and distinct", id)
			}
		}
		if sj.Gone != nil {
			if len(sj.Present) > 0 {
				return bad("sample %q: both present and deleted everywhere", id)
			}
			if *sj.Gone >= s.Next || *sj.Gone < sj.First {
				return bad("sample %q: deletion index %d outside %d..%d", id, *sj.Gone, sj.First, s.Next-1)
			}
		}
	}
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
		}
	}
	if total != s.Next {
		return bad("counts add up to %d events, want next = %d", total, s.Next)
	}

	// The state is valid: replace the engine's.
	e.next = s.Next
	e.ids = make(map[string]int, len(s.Samples))
	e.recs, e.keys, e.sets, e.freeSets = nil, stringArena{}, nil, nil
	for _, r := range e.regList {
		clear(r.counts)
	}
	for id, sj := range s.Samples {
		st := e.newSample(id, sampleState{first: sj.First, region: e.region(sj.Region).id})
		for _, l := range sj.Present {
			e.addPresent(st, e.loc(l).id)
		}
		if sj.Gone != nil {
			st.gone = *sj.Gone + 1
		}
	}
	for region, m := range s.Counts {
		r := e.region(region)
		for loc, n := range m {
			l := e.loc(loc)
			if int(l.id) >= len(r.counts) {
				r.growCounts(len(e.locList))
			}
			r.counts[l.id] = n
		}
	}
	return nil
}
