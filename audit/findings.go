package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/custodylog/custody/internal/spill"
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
// names and the counts, it does not grow with the number of events. In
// memory a sample costs:
//
//   - a 32-byte record (first index, deletion index, region, where its
//     identifier is, and the location where it is present when there is
//     one), allocated 4096 at a time, holding no pointers;
//   - its identifier's bytes and a length byte, back to back in 1 MiB
//     blocks;
//   - a slot of the identifier table, 8 bytes (part of a hash and the
//     record's number) in a table that is 3/8 to 3/4 full: 11 to 21 bytes;
//   - while it is present at two or more locations, a list of them (24
//     bytes and 4 a location).
//
// So a sample present at one location or none costs 45 to 55 bytes plus
// its identifier (75 bytes in all for the 25-character identifiers of
// BenchmarkEngineOpenSamples). An engine made by NewEngineWith with a
// memory budget (EngineOptions.Memory) keeps this under the budget,
// outside the Go heap: when it outgrows it, the samples seen least
// recently are moved, about half the budget at a time, to sorted run files
// on disk (about 12 bytes a sample there; their Bloom filters and block
// indexes cost about 1.4 bytes a sample in memory), and a moved sample is
// read back when one of its events comes. The findings, counts and
// MarshalState output do not depend on the budget. Such an engine must be
// closed (Close), which removes the files and frees the memory. Location
// and region names are stored once.
type Engine struct {
	maxDelay time.Duration // policy's MaxLogDelay
	next     uint64        // index the next Add must have

	locs    map[string]*engineLoc    // every location name seen, by name
	locList []*engineLoc             // the same, by id
	regs    map[string]*engineRegion // every region name seen, by name
	regList []*engineRegion          // the same, by id

	s *samples // per-sample state

	present  []string  // scratch for sorted presence lists
	locBuf   []uint32  // scratch for location ids
	findings []Finding // scratch for Add

	details    map[string]string // details of earlier findings, shared
	lastSample string            // the sample of the last finding
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

// NewEngine returns an engine that evaluates events against p, starting at
// index 0 with no history. The engine copies what it needs from p: later
// changes to p do not affect it. p must not be nil.
func NewEngine(p *Policy) *Engine {
	e := &Engine{
		maxDelay: p.MaxLogDelay,
		locs:     make(map[string]*engineLoc, len(p.Locations)),
		regs:     make(map[string]*engineRegion, len(p.Regions)),
		s:        newSamples(0, ""),
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

// NewEngineWith returns an engine like NewEngine's that keeps the
// per-sample state in memory within o.Memory bytes, moving the rest to
// disk. It must be closed.
func NewEngineWith(p *Policy, o EngineOptions) *Engine {
	e := NewEngine(p)
	e.s = newSamples(max(o.Memory, 0), o.SpillDir)
	return e
}

// Close removes the engine's spill files, if any. The engine must not be
// used after.
func (e *Engine) Close() error { return e.s.close() }

// Err returns the first error of reading or writing the engine's spill
// files, or nil. After such an error the findings, counts and state of
// the engine are not valid: an audit must stop.
func (e *Engine) Err() error { return e.s.err }

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

// presentNames returns the names of the locations where the sample is
// present, sorted, in e.present.
func (e *Engine) presentNames(st *sampleState) []string {
	e.present = e.present[:0]
	e.locBuf = e.s.locations(st, e.locBuf[:0])
	for _, id := range e.locBuf {
		e.present = append(e.present, e.locList[id].name)
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
	h := spill.Hash(ev.Sample)
	st := e.s.lookup(ev.Sample, h)
	if st == nil {
		st = e.s.add(ev.Sample, h, sampleState{first: index, region: reg.id})
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
	here := e.s.presentAt(st, loc.id)
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
			e.s.removePresent(st, loc.id)
			if st.set == 0 {
				st.gone = index + 1
			}
		}
	case record.Transferred:
		if !here {
			e.s.addPresent(st, loc.id)
		}
		if !e.s.presentAt(st, to.id) {
			e.s.addPresent(st, to.id)
		}
		st.gone = 0
	default:
		if !here {
			e.s.addPresent(st, loc.id)
		}
		st.gone = 0
	}

	if int(loc.id) >= len(reg.counts) {
		reg.growCounts(len(e.locList))
	}
	reg.counts[loc.id]++
	if e.s.overBudget() {
		e.s.spillOut()
	}

	if len(e.findings) == 0 {
		return nil
	}
	return slices.Clone(e.findings)
}

// report adds a finding. Its sample is copied, so that a finding kept long
// does not keep the whole decoded event its identifier came from; a
// detail made before is shared (the details of unknown names and reroutes
// repeat), so that millions of findings keep one copy of each.
func (e *Engine) report(index uint64, ev record.Event, kind Kind, detail string) {
	if d, ok := e.details[detail]; ok {
		detail = d
	} else if len(e.details) < 1<<12 {
		if e.details == nil {
			e.details = make(map[string]string)
		}
		e.details[detail] = detail
	}
	sample := e.lastSample
	if sample != ev.Sample {
		sample = strings.Clone(ev.Sample)
		e.lastSample = sample
	}
	e.findings = append(e.findings, Finding{Index: index, Sample: sample, Kind: kind, Detail: detail})
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
// in the same state give the same bytes, whatever their memory budgets, and
// UnmarshalState of it restores an engine whose later findings, counts and
// MarshalState are exactly those of this one.
//
// The bytes are exactly what encoding/json's Marshal writes for an
// engineState (the tests hold it to that); they are written directly, since
// a state has an entry per sample. For a large state, WriteStateTo writes
// the same bytes without holding them in memory.
func (e *Engine) MarshalState() ([]byte, error) {
	var b bytes.Buffer
	b.Grow(64 + e.s.n*48)
	if err := e.WriteStateTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// WriteStateTo writes MarshalState's bytes to w as it makes them: the
// samples in memory, in identifier order, merged with those moved to disk,
// so that the state is never all in memory (the sort takes 20 bytes a
// sample in memory of scratch).
func (e *Engine) WriteStateTo(w io.Writer) error {
	if e.s.err != nil {
		return e.s.err
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	b := make([]byte, 0, 64<<10)
	b = append(b, `{"version":`...)
	b = strconv.AppendInt(b, stateVersion, 10)
	b = append(b, `,"next":`...)
	b = strconv.AppendUint(b, e.next, 10)
	b = append(b, `,"samples":{`...)

	mem, free := scratch[uint32](e.s, e.s.n)
	defer free()
	for i := range mem {
		mem[i] = uint32(i)
	}
	mem = e.s.sorted(mem)
	var it *spill.Merged
	more := false
	if e.s.store != nil {
		it = e.s.store.Iter()
		more = it.Next()
	}
	var locs []uint32
	written := 0
	for i := 0; i < len(mem) || more; {
		var id []byte
		var st sampleState
		locs = locs[:0]
		c := -1
		if i < len(mem) && more {
			c = bytes.Compare(e.s.keys.get(e.s.rec(int(mem[i])).key), it.Key())
		} else if more {
			c = 1
		}
		if c <= 0 {
			rec := e.s.rec(int(mem[i]))
			id, st, locs = e.s.keys.get(rec.key), *rec, e.s.locations(rec, locs)
			i++
		} else {
			var err error
			id = it.Key()
			if st, locs, err = decodeSample(it.Value(), locs); err != nil {
				return fmt.Errorf("audit: spilled state of sample %q: %w", id, err)
			}
		}
		if c == 0 {
			// The spilled copy of a sample in memory is stale.
			more = it.Next()
		}
		if written > 0 {
			b = append(b, ',')
		}
		written++
		b = e.appendSample(b, id, &st, locs)
		if len(b) > 60<<10 {
			if _, err := bw.Write(b); err != nil {
				return err
			}
			b = b[:0]
		}
		if c > 0 {
			// Next is called after the sample is written: id is its key.
			more = it.Next()
		}
	}
	if it != nil {
		if err := it.Err(); err != nil {
			return err
		}
	}
	b = append(b, `},"counts":{`...)
	regions := make([]*engineRegion, 0, len(e.regList))
	for _, r := range e.regList {
		if slices.ContainsFunc(r.counts, func(n uint64) bool { return n != 0 }) {
			regions = append(regions, r)
		}
	}
	slices.SortFunc(regions, func(x, y *engineRegion) int { return strings.Compare(x.name, y.name) })
	var ls []*engineLoc
	for i, r := range regions {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, r.name)
		b = append(b, `:{`...)
		ls = ls[:0]
		for id, n := range r.counts {
			if n != 0 {
				ls = append(ls, e.locList[id])
			}
		}
		slices.SortFunc(ls, func(x, y *engineLoc) int { return strings.Compare(x.name, y.name) })
		for j, l := range ls {
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
	if _, err := bw.Write(b); err != nil {
		return err
	}
	return bw.Flush()
}

// appendSample appends one sample of MarshalState's "samples" object.
func (e *Engine) appendSample(b, id []byte, st *sampleState, locs []uint32) []byte {
	b = appendJSONString(b, unsafeString(id))
	b = append(b, `:{"region":`...)
	b = appendJSONString(b, e.regList[st.region].name)
	b = append(b, `,"first":`...)
	b = strconv.AppendUint(b, st.first, 10)
	if len(locs) > 0 {
		e.present = e.present[:0]
		for _, l := range locs {
			e.present = append(e.present, e.locList[l].name)
		}
		slices.Sort(e.present)
		b = append(b, `,"present":[`...)
		for j, l := range e.present {
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
	return append(b, '}')
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
// one written by MarshalState; the engine keeps its own policy and memory
// budget. It rejects, leaving the engine unchanged, state that MarshalState
// could not have written: another version, unknown fields, trailing data,
// samples out of order or repeated, duplicate or unsorted presence lists, a
// sample both present and deleted everywhere, indices not below next, zero
// counts, or counts that do not add up to next. Names are not checked: they
// are whatever the events held.
func (e *Engine) UnmarshalState(b []byte) error { return e.ReadStateFrom(bytes.NewReader(b)) }

// ReadStateFrom is UnmarshalState of the bytes r reads, as it reads them:
// a state larger than the engine's memory budget is spilled to disk while
// it is read.
func (e *Engine) ReadStateFrom(r io.Reader) error {
	fresh := newSamples(e.s.budget, e.s.spillDir)
	next, counts, err := e.readState(r, fresh)
	if err != nil {
		fresh.close()
		return err
	}
	// The state is valid: replace the engine's.
	e.s.close()
	e.s, e.next = fresh, next
	for _, r := range e.regList {
		clear(r.counts)
	}
	for region, m := range counts {
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

// readState reads a state into fresh, and returns its next and counts.
// Names are interned in e as they come, which changes nothing that can be
// seen if the state is rejected.
func (e *Engine) readState(r io.Reader, fresh *samples) (uint64, map[string]map[string]uint64, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("audit: engine state: "+format, args...)
	}
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	delim := func(want json.Delim, what string) error {
		t, err := dec.Token()
		if err != nil {
			return fmt.Errorf("audit: engine state: %w", err)
		}
		if d, ok := t.(json.Delim); !ok || d != want {
			return bad("cannot unmarshal %s into %s", tokenKind(t), what)
		}
		return nil
	}
	if err := delim('{', "the engine state object"); err != nil {
		return 0, nil, err
	}
	var (
		version            int
		next               uint64
		counts             map[string]map[string]uint64
		maxFirst, maxGone  uint64
		firstID, goneID    string
		goneFirst, samples uint64
		hasGone            bool
	)
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return 0, nil, fmt.Errorf("audit: engine state: %w", err)
		}
		switch t {
		case "version":
			err = dec.Decode(&version)
		case "next":
			err = dec.Decode(&next)
		case "counts":
			counts = nil
			err = dec.Decode(&counts)
		case "samples":
			if samples > 0 {
				return 0, nil, bad("two sample lists")
			}
			if err := delim('{', "the samples object"); err != nil {
				return 0, nil, err
			}
			var prev string
			for dec.More() {
				t, err := dec.Token()
				if err != nil {
					return 0, nil, fmt.Errorf("audit: engine state: %w", err)
				}
				id := t.(string)
				if samples > 0 && id <= prev {
					return 0, nil, bad("sample %q after %q: samples not sorted and distinct", id, prev)
				}
				samples++
				var sj sampleJSON
				if err := dec.Decode(&sj); err != nil {
					return 0, nil, fmt.Errorf("audit: engine state: sample %q: %w", id, err)
				}
				for i, l := range sj.Present {
					if i > 0 && l <= sj.Present[i-1] {
						return 0, nil, bad("sample %q: present locations not sorted and distinct", id)
					}
				}
				if samples == 1 || sj.First > maxFirst {
					maxFirst, firstID = sj.First, id
				}
				st := sampleState{first: sj.First, region: e.region(sj.Region).id}
				if sj.Gone != nil {
					if len(sj.Present) > 0 {
						return 0, nil, bad("sample %q: both present and deleted everywhere", id)
					}
					if *sj.Gone < sj.First {
						return 0, nil, bad("sample %q: deletion index %d before its first index %d", id, *sj.Gone, sj.First)
					}
					if !hasGone || *sj.Gone > maxGone {
						maxGone, goneID, goneFirst, hasGone = *sj.Gone, id, sj.First, true
					}
					st.gone = *sj.Gone + 1
				}
				rec := fresh.add(id, spill.Hash(id), st)
				for _, l := range sj.Present {
					fresh.addPresent(rec, e.loc(l).id)
				}
				if fresh.overBudget() {
					fresh.spillOut()
				}
				if fresh.err != nil {
					return 0, nil, fresh.err
				}
				prev = id
			}
			if _, err := dec.Token(); err != nil {
				return 0, nil, fmt.Errorf("audit: engine state: %w", err)
			}
		default:
			return 0, nil, bad("json: unknown field %q", t)
		}
		if err != nil {
			return 0, nil, fmt.Errorf("audit: engine state: %w", err)
		}
	}
	if err := delim('}', "the end of the engine state"); err != nil {
		return 0, nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return 0, nil, bad("data after the JSON object")
	}
	if version != stateVersion {
		return 0, nil, bad("version %d, want %d", version, stateVersion)
	}
	if samples > 0 && maxFirst >= next {
		return 0, nil, bad("sample %q: first index %d not below next %d", firstID, maxFirst, next)
	}
	if hasGone && maxGone >= next {
		return 0, nil, bad("sample %q: deletion index %d outside %d..%d", goneID, maxGone, goneFirst, next-1)
	}
	var total uint64
	for region, m := range counts {
		for loc, n := range m {
			if n == 0 {
				return 0, nil, bad("counts: region %q, location %q: zero count", region, loc)
			}
			total += n
			if total < n {
				return 0, nil, bad("counts: total overflows")
			}
		}
	}
	if total != next {
		return 0, nil, bad("counts add up to %d events, want next = %d", total, next)
	}
	return next, counts, nil
}

// tokenKind names a JSON token for an error.
func tokenKind(t json.Token) string {
	switch t := t.(type) {
	case json.Delim:
		if t == '[' {
			return "array"
		}
		return "object"
	case string:
		return "string"
	case nil:
		return "null"
	case bool:
		return "bool"
	}
	return "number"
}
