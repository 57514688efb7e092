package log

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/store"
)

// Bounds of the counts Stats keeps: a token holder who logs events with
// ever new regions and locations must not grow them without limit.
const (
	// MaxStatsRegions is the most distinct regions counted under their own
	// name; the events of further regions are counted under OtherKey.
	MaxStatsRegions = 256
	// MaxStatsPairs is the most distinct (region, location) pairs counted
	// under their own names. Once it is reached, an event at a location
	// its region has no count for yet is counted at (region, OtherKey).
	MaxStatsPairs = 16384
)

// OtherKey is the region or location under which Stats counts the events
// beyond MaxStatsRegions or MaxStatsPairs. It is not a valid region or
// location name, so it never collides with one.
const OtherKey = "(other)"

// Stats counts the log's events per customer region and data centre
// (the event's location). New batches are counted as they commit; the
// entries already in the log when it was opened are counted in the
// background, so Total may lag the tree size for a while after start-up.
//
// The counts are bounded: at most MaxStatsRegions regions plus OtherKey,
// and at most MaxStatsPairs pairs plus one (region, OtherKey) pair per
// region. Which names are kept depends only on the order of the entries
// (the first ones seen), so it is the same after every restart. Every
// event is counted exactly once, so the counts always add up to Total.
type Stats struct {
	mu     sync.RWMutex
	counts map[string]map[string]uint64
	pairs  int // distinct (region, location) pairs counted, OtherKey pairs excluded
	total  uint64
	size   uint64 // entries [0, size) are counted
}

func newStats() *Stats { return &Stats{counts: map[string]map[string]uint64{}} }

// catchUp counts the store's entries from the last counted one up to size.
func (s *Stats) catchUp(ctx context.Context, st store.Store, size uint64) error {
	const page = 4096
	for {
		s.mu.RLock()
		start := s.size
		s.mu.RUnlock()
		if start >= size {
			return nil
		}
		end := min(start+page, size)
		es, err := st.Entries(ctx, start, end)
		if err != nil {
			return fmt.Errorf("log: counting entries %d to %d: %w", start, end, err)
		}
		if err := s.addEntries(es); err != nil {
			return fmt.Errorf("log: counting entries: %w", err)
		}
	}
}

// addEntries counts entries that continue the counted prefix; entries that
// do not (the background count is behind) are left to catchUp.
func (s *Stats) addEntries(es []store.Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(es) > 0 && es[0].Index != s.size {
		return nil
	}
	for _, e := range es {
		if e.Index != s.size {
			return fmt.Errorf("entry %d counted out of order (next is %d)", e.Index, s.size)
		}
		ev, err := record.DecodeEntry(e.Data)
		if err != nil {
			return fmt.Errorf("entry %d: %w", e.Index, err)
		}
		s.size++
		s.count(ev.Region, ev.Location)
	}
	return nil
}

// count adds one event at (region, location), within the bounds.
func (s *Stats) count(region, location string) {
	s.total++
	m := s.counts[region]
	if m == nil {
		if len(s.counts) >= MaxStatsRegions {
			region = OtherKey
			m = s.counts[OtherKey]
		}
		if m == nil {
			m = map[string]uint64{}
			s.counts[region] = m
		}
	}
	if _, ok := m[location]; !ok && location != OtherKey {
		if s.pairs >= MaxStatsPairs {
			location = OtherKey
		} else {
			s.pairs++
		}
	}
	m[location]++
}

// Counts returns a copy of the counts: region -> location -> events.
func (s *Stats) Counts() map[string]map[string]uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]map[string]uint64, len(s.counts))
	for r, m := range s.counts {
		c := make(map[string]uint64, len(m))
		for k, v := range m {
			c[k] = v
		}
		out[r] = c
	}
	return out
}

// Counted returns how many entries, from index 0, are counted.
func (s *Stats) Counted() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.size
}

// Total returns the number of events counted.
func (s *Stats) Total() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.total
}

// Regions returns the regions counted, sorted.
func (s *Stats) Regions() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	for r := range s.counts {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}
