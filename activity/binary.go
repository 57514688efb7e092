package activity

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/custodylog/custody/internal/bindec"
)

// binaryMagic starts every encoded Aggregate; its last byte is the
// format's version.
var binaryMagic = []byte("custody-activity\x00\x01")

// Bounds of an encoding, besides those of an Aggregate.
const (
	// maxName is the longest region or location name (record allows 8
	// and 32 bytes).
	maxName = 32
	// MaxBinaryLen bounds the encoding of an Aggregate: every bound
	// reached, every name at its longest, every number at its widest.
	MaxBinaryLen = 64 + 6*binary.MaxVarintLen64 +
		(MaxEdges+MaxOther+1)*(3*(1+maxName)+3*binary.MaxVarintLen64+MaxRecent*binary.MaxVarintLen64) +
		(MaxCollections+MaxOther+1)*(2*(1+maxName)+binary.MaxVarintLen64) +
		MaxLocations*(1+maxName) +
		(MaxDayCells+int(windowHours)*(MaxLocations+1))*3*binary.MaxVarintLen64 +
		MaxDayCells*2*binary.MaxVarintLen64 + 5*binary.MaxVarintLen64
)

// MarshalBinary encodes a canonically, so that equal aggregates (those
// that answer every query alike, such as a and a copy restored from its
// encoding) have equal encodings. The format, after binaryMagic
// ("custody-activity\x00" and version 1), in uvarints unless said:
//
//   - events, transfers, Overflow, LoggedOverflow; if events > 0, the
//     first and last event time (Unix seconds, varints);
//   - the flows, sorted by region, source and destination: their number,
//     then each as three names (uvarint length, bytes), its events, the
//     number of its recent entry indices and those, newest first, as the
//     newest and then the (positive) gaps between them;
//   - the collections, sorted: their number, then each as two names and
//     its events;
//   - the data centres the series keeps by name, sorted: their number and
//     names;
//   - the day cells, then the hourly cells of the window, each sorted by
//     bucket and location: their number, then each as its bucket (the
//     first as a varint, then the gap from the one before), its location
//     (its position among the names above; their number for OtherKey) and
//     its events;
//   - the days of Logged time: their number, then each as its day (the
//     first as a varint, then the positive gap) and its events.
//
// It fails only if a holds a name that is not a valid region or location
// (record's rules) or OtherKey, or entry indices out of order: an
// Aggregate fed valid events in index order never does.
func (a *Aggregate) MarshalBinary() ([]byte, error) {
	b := slices.Clone(binaryMagic)
	for _, n := range []uint64{a.events, a.transfers, a.overflow, a.lost} {
		b = binary.AppendUvarint(b, n)
	}
	if a.events > 0 {
		b = binary.AppendVarint(b, a.first)
		b = binary.AppendVarint(b, a.last)
	}

	flows := a.Flows()
	b = binary.AppendUvarint(b, uint64(len(flows)))
	for _, f := range flows {
		if !validRegion(f.Region, true) || !validLocation(f.From, true) || !validLocation(f.To, true) {
			return nil, fmt.Errorf("activity: encoding flow %v: not a valid region or location", f.Edge)
		}
		b = appendName(appendName(appendName(b, f.Region), f.From), f.To)
		b = binary.AppendUvarint(b, f.Events)
		recent := a.Recent(f.Edge)
		b = binary.AppendUvarint(b, uint64(len(recent)))
		for i, idx := range recent {
			if i == 0 {
				b = binary.AppendUvarint(b, idx)
				continue
			}
			if idx >= recent[i-1] {
				return nil, fmt.Errorf("activity: encoding flow %v: entry %d added after entry %d (not in index order)", f.Edge, recent[i-1], idx)
			}
			b = binary.AppendUvarint(b, recent[i-1]-idx)
		}
	}

	colls := a.Collections()
	b = binary.AppendUvarint(b, uint64(len(colls)))
	for _, c := range colls {
		if !validRegion(c.Region, true) || !validLocation(c.Location, true) {
			return nil, fmt.Errorf("activity: encoding collection (%q, %q): not a valid region or location", c.Region, c.Location)
		}
		b = binary.AppendUvarint(appendName(appendName(b, c.Region), c.Location), c.Events)
	}

	locs := slices.Clone(a.locNames)
	for _, l := range locs {
		if !validLocation(l, false) {
			return nil, fmt.Errorf("activity: encoding location %q: not a valid location", l)
		}
	}
	slices.Sort(locs)
	b = binary.AppendUvarint(b, uint64(len(locs)))
	for _, l := range locs {
		b = appendName(b, l)
	}
	// pos is the position of each location number among the sorted
	// names; OtherKey's is after them.
	pos := make(map[int32]uint64, len(locs)+1)
	for i, l := range locs {
		pos[a.locations[l]] = uint64(i)
	}
	pos[otherLoc] = uint64(len(locs))
	first := int64(math.MinInt64)
	if a.events > 0 {
		first = a.firstHour()
	}
	for _, cs := range []struct {
		m    map[cell]uint64
		from int64
	}{{a.days, math.MinInt64}, {a.hours, first}} {
		b = appendCells(b, cs.m, cs.from, pos)
	}

	days := make([]int64, 0, len(a.logged))
	for d := range a.logged {
		days = append(days, d)
	}
	slices.Sort(days)
	b = binary.AppendUvarint(b, uint64(len(days)))
	for i, d := range days {
		if i == 0 {
			b = binary.AppendVarint(b, d)
		} else {
			b = binary.AppendUvarint(b, uint64(d-days[i-1]))
		}
		b = binary.AppendUvarint(b, a.logged[d])
	}
	return b, nil
}

// appendCells appends the cells of m from bucket from on.
func appendCells(b []byte, m map[cell]uint64, from int64, pos map[int32]uint64) []byte {
	type pc struct {
		bucket int64
		loc    uint64
		n      uint64
	}
	cells := make([]pc, 0, len(m))
	for c, n := range m {
		if c.bucket >= from {
			cells = append(cells, pc{c.bucket, pos[c.loc], n})
		}
	}
	slices.SortFunc(cells, func(x, y pc) int { return cmp.Or(cmp.Compare(x.bucket, y.bucket), cmp.Compare(x.loc, y.loc)) })
	b = binary.AppendUvarint(b, uint64(len(cells)))
	for i, c := range cells {
		if i == 0 {
			b = binary.AppendVarint(b, c.bucket)
		} else {
			b = binary.AppendUvarint(b, uint64(c.bucket-cells[i-1].bucket))
		}
		b = binary.AppendUvarint(binary.AppendUvarint(b, c.loc), c.n)
	}
	return b
}

func appendName(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// validRegion reports whether s is a region record accepts (2 to 8 of
// A-Z), or OtherKey if other.
func validRegion(s string, other bool) bool {
	if s == OtherKey {
		return other
	}
	if len(s) < 2 || len(s) > 8 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

// validLocation reports whether s is a location record accepts (2 to 32
// of a-z, 0-9 and -), or OtherKey if other.
func validLocation(s string, other bool) bool {
	if s == OtherKey {
		return other
	}
	if len(s) < 2 || len(s) > maxName {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// UnmarshalBinary replaces a with the Aggregate encoded in data by
// MarshalBinary. It accepts only what MarshalBinary writes for an
// Aggregate fed valid events: the canonical encoding (sorted, shortest
// numbers, nothing after it), every bound of an Aggregate respected, the
// totals adding up (the flows to the transfers, the day cells and
// Overflow to the events, ...) and every cell within the span of event
// times. On any other input it returns an error saying what is wrong and
// leaves a unchanged, so a damaged or forged encoding is never half-read.
func (a *Aggregate) UnmarshalBinary(data []byte) error {
	if len(data) > MaxBinaryLen {
		return fmt.Errorf("activity: encoded aggregate of %d bytes, more than the %d any aggregate needs", len(data), MaxBinaryLen)
	}
	if !bytes.HasPrefix(data, binaryMagic) {
		if len(data) >= len(binaryMagic) && bytes.HasPrefix(data, binaryMagic[:len(binaryMagic)-1]) {
			return fmt.Errorf("activity: encoded aggregate of version %d, this custody reads version %d", data[len(binaryMagic)-1], binaryMagic[len(binaryMagic)-1])
		}
		return errors.New("activity: not an encoded aggregate (wrong magic)")
	}
	d := &decoder{bindec.Decoder{B: data[len(binaryMagic):], Prefix: "activity: malformed aggregate"}}
	out := New()
	out.events, out.transfers, out.overflow, out.lost = d.Uvarint(), d.Uvarint(), d.Uvarint(), d.Uvarint()
	if out.events > 0 {
		out.first, out.last = d.Varint(), d.Varint()
		if d.Err == nil && out.first > out.last {
			d.Fail("first event time %d after the last %d", out.first, out.last)
		}
	}
	d.flows(out)
	d.collections(out)
	locs := d.locations(out)
	d.cells(out, out.days, locs, MaxDayCells, "day", 86400)
	d.cells(out, out.hours, locs, int(windowHours)*(MaxLocations+1), "hour", 3600)
	d.logged(out)
	if d.Err == nil && len(d.B) != 0 {
		d.Fail("%d bytes after the aggregate", len(d.B))
	}
	if d.Err != nil {
		return d.Err
	}
	if err := out.checkTotals(); err != nil {
		return err
	}
	*a = *out
	return nil
}

// checkTotals checks that what a decoded aggregate counts adds up.
func (a *Aggregate) checkTotals() error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("activity: malformed aggregate: "+format, args...)
	}
	if a.events == 0 && (a.transfers|a.overflow|a.lost != 0 || len(a.flows)+len(a.collections)+len(a.locations)+len(a.days)+len(a.hours)+len(a.logged) != 0) {
		return fail("no events, but counts")
	}
	var flows, colls, days, hours, logged sum
	for _, f := range a.flows {
		flows.add(f.events)
	}
	for _, n := range a.collections {
		colls.add(n)
	}
	for _, n := range a.days {
		days.add(n)
	}
	for _, n := range a.hours {
		hours.add(n)
	}
	for _, n := range a.logged {
		logged.add(n)
	}
	days.add(a.overflow)
	logged.add(a.lost)
	colls.add(a.transfers)
	switch {
	case flows.over || flows.n != a.transfers:
		return fail("the flows add up to %d, not the %d transfers", flows.n, a.transfers)
	case colls.over || colls.n > a.events:
		return fail("%d collections and %d transfers, more than the %d events", colls.n-a.transfers, a.transfers, a.events)
	case days.over || days.n != a.events:
		return fail("the day cells and the overflow add up to %d, not the %d events", days.n, a.events)
	case hours.over || hours.n > a.events:
		return fail("the hourly cells add up to %d, more than the %d events", hours.n, a.events)
	case logged.over || logged.n > a.events:
		return fail("the logged days add up to %d, more than the %d events", logged.n, a.events)
	case a.overflow > 0 && len(a.days) < MaxDayCells:
		return fail("an overflow of %d with %d day cells, fewer than the %d kept before overflowing", a.overflow, len(a.days), MaxDayCells)
	case a.lost > 0 && len(a.logged) < MaxDayCells:
		return fail("a logged overflow of %d with %d days, fewer than the %d kept before overflowing", a.lost, len(a.logged), MaxDayCells)
	}
	return nil
}

// sum adds counts, noting an overflow.
type sum struct {
	n    uint64
	over bool
}

func (s *sum) add(n uint64) {
	if n > math.MaxUint64-s.n {
		s.over = true
	}
	s.n += n
}

// decoder reads an encoded Aggregate, remembering the first error.
type decoder struct{ bindec.Decoder }

// count reads a number of items of at most limit, each taking at least
// one byte.
func (d *decoder) count(what string, limit int) int {
	n := d.Uvarint()
	if d.Err == nil && (n > uint64(limit) || n > uint64(len(d.B))) {
		d.Fail("%d %s, more than %d", n, what, min(limit, len(d.B)))
		return 0
	}
	return int(n)
}

// positive reads a count that must not be 0.
func (d *decoder) positive(what string) uint64 {
	n := d.Uvarint()
	if d.Err == nil && n == 0 {
		d.Fail("%s of 0 events", what)
	}
	return n
}

func (d *decoder) name() string {
	n := d.Uvarint()
	if d.Err != nil {
		return ""
	}
	if n > maxName || n > uint64(len(d.B)) {
		d.Fail("name of %d bytes, more than %d or than what is left", n, min(maxName, len(d.B)))
		return ""
	}
	s := string(d.B[:n])
	d.B = d.B[n:]
	return s
}

// flows reads the flows into a and checks their shapes and bounds: at
// most MaxEdges by name; (region, from, OtherKey) only once those are
// full, at most MaxOther of them; (OtherKey, OtherKey, OtherKey) only
// once those are full too.
func (d *decoder) flows(a *Aggregate) {
	n := d.count("flows", MaxEdges+MaxOther+1)
	var prev Edge
	named, all := 0, false
	for i := 0; i < n && d.Err == nil; i++ {
		e := Edge{Region: d.name(), From: d.name(), To: d.name()}
		events := d.positive(fmt.Sprintf("flow %v", e))
		k := d.count("recent entries", MaxRecent)
		if d.Err != nil {
			return
		}
		switch {
		case i > 0 && compareEdges(e, prev) <= 0:
			d.Fail("flow %v after %v", e, prev)
		case e == Edge{OtherKey, OtherKey, OtherKey}:
			all = true
		case !validRegion(e.Region, false) || !validLocation(e.From, false) || !validLocation(e.To, true):
			d.Fail("flow %v: not a valid region and locations", e)
		case e.To == OtherKey:
			a.otherFlows++
		default:
			named++
		}
		prev = e
		if uint64(k) != min(events, MaxRecent) {
			d.Fail("flow %v has %d transfers and %d recent entries, want %d", e, events, k, min(events, MaxRecent))
		}
		f := &flowState{events: events, recent: make([]uint64, k)}
		for j := k - 1; j >= 0 && d.Err == nil; j-- {
			if j == k-1 {
				f.recent[j] = d.Uvarint()
				continue
			}
			gap := d.Uvarint()
			if d.Err == nil && (gap == 0 || gap > f.recent[j+1]) {
				d.Fail("flow %v: recent entry %d less %d", e, f.recent[j+1], gap)
			}
			f.recent[j] = f.recent[j+1] - gap
		}
		a.flows[e] = f
	}
	switch {
	case d.Err != nil:
	case named > MaxEdges || a.otherFlows > MaxOther:
		d.Fail("%d flows by name and %d to %s, more than %d and %d", named, a.otherFlows, OtherKey, MaxEdges, MaxOther)
	case a.otherFlows > 0 && named < MaxEdges:
		d.Fail("%d flows to %s with %d by name, fewer than the %d kept before", a.otherFlows, OtherKey, named, MaxEdges)
	case all && a.otherFlows < MaxOther:
		d.Fail("a flow of %s only with %d flows to %s, fewer than the %d kept before", OtherKey, a.otherFlows, OtherKey, MaxOther)
	}
}

// collections reads the collections into a and checks their shapes and
// bounds, as flows does.
func (d *decoder) collections(a *Aggregate) {
	n := d.count("collections", MaxCollections+MaxOther+1)
	var prev [2]string
	named, all := 0, false
	for i := 0; i < n && d.Err == nil; i++ {
		k := [2]string{d.name(), d.name()}
		a.collections[k] = d.positive(fmt.Sprintf("collection %q", k))
		if d.Err != nil {
			return
		}
		switch {
		case i > 0 && cmp.Or(cmp.Compare(k[0], prev[0]), cmp.Compare(k[1], prev[1])) <= 0:
			d.Fail("collection %q after %q", k, prev)
		case k == [2]string{OtherKey, OtherKey}:
			all = true
		case !validRegion(k[0], false) || !validLocation(k[1], true):
			d.Fail("collection %q: not a valid region and location", k)
		case k[1] == OtherKey:
			a.otherColls++
		default:
			named++
		}
		prev = k
	}
	switch {
	case d.Err != nil:
	case named > MaxCollections || a.otherColls > MaxOther:
		d.Fail("%d collections by name and %d at %s, more than %d and %d", named, a.otherColls, OtherKey, MaxCollections, MaxOther)
	case a.otherColls > 0 && named < MaxCollections:
		d.Fail("%d collections at %s with %d by name, fewer than the %d kept before", a.otherColls, OtherKey, named, MaxCollections)
	case all && a.otherColls < MaxOther:
		d.Fail("a collection of %s only with %d at %s, fewer than the %d kept before", OtherKey, a.otherColls, OtherKey, MaxOther)
	}
}

// locations reads the data centres the series keeps by name into a,
// numbered in order, and returns their number, and then OtherKey's if
// there are MaxLocations.
func (d *decoder) locations(a *Aggregate) []int32 {
	n := d.count("locations", MaxLocations)
	locs := make([]string, 0, n)
	for i := 0; i < n && d.Err == nil; i++ {
		l := d.name()
		switch {
		case d.Err != nil:
		case !validLocation(l, false):
			d.Fail("location %q not valid", l)
		case i > 0 && l <= locs[i-1]:
			d.Fail("location %q after %q", l, locs[i-1])
		}
		a.locations[l] = int32(len(locs))
		locs = append(locs, l)
	}
	a.locNames = locs
	ids := make([]int32, len(locs), len(locs)+1)
	for i := range ids {
		ids[i] = int32(i)
	}
	if n == MaxLocations {
		ids = append(ids, otherLoc)
	}
	return ids
}

// cells reads day or hour cells (width seconds) into m: at most limit,
// sorted by bucket and location, each within the span of event times
// (hours: within the hourly window).
func (d *decoder) cells(a *Aggregate, m map[cell]uint64, locs []int32, limit int, what string, width int64) {
	n := d.count(what+" cells", limit)
	lo, hi := floorDiv(a.first, width), floorDiv(a.last, width)
	if width == 3600 {
		lo = a.firstHour()
	}
	var bucket int64
	var prev uint64 // the location of the cell before
	for i := 0; i < n && d.Err == nil; i++ {
		gap := uint64(1)
		if i == 0 {
			bucket = d.Varint()
		} else {
			gap = d.Uvarint()
			if d.Err == nil && gap > uint64(hi-bucket) {
				d.Fail("%s cell after %d: gap %d, past the last event's", what, bucket, gap)
			}
			bucket += int64(gap)
		}
		loc := d.Uvarint()
		events := d.positive(what + " cell")
		switch {
		case d.Err != nil:
			return
		case bucket < lo || bucket > hi:
			d.Fail("%s cell %d outside the events' %ss %d to %d", what, bucket, what, lo, hi)
		case loc >= uint64(len(locs)):
			d.Fail("%s cell %d at location %d of %d", what, bucket, loc, len(locs))
		case gap == 0 && loc <= prev:
			d.Fail("%s cell %d: location %d after %d", what, bucket, loc, prev)
		default:
			m[cell{bucket, locs[loc]}] = events
			prev = loc
		}
	}
}

// logged reads the days of Logged time into a.
func (d *decoder) logged(a *Aggregate) {
	n := d.count("logged days", MaxDayCells)
	var day int64
	for i := 0; i < n && d.Err == nil; i++ {
		if i == 0 {
			day = d.Varint()
		} else {
			gap := d.Uvarint()
			if d.Err == nil && (gap == 0 || gap > uint64(math.MaxInt64-day)) {
				d.Fail("logged day after %d: gap %d", day, gap)
			}
			day += int64(gap)
		}
		a.logged[day] = d.positive("logged day")
	}
}
