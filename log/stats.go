package log

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/store"
)

// Stats counts the log's events per customer region and data centre
// (the event's location). New batches are counted as they commit; the
// entries already in the log when it was opened are counted in the
// background, so Total may lag the tree size for a while after start-up.
type Stats struct {
	mu     sync.RWMutex
	counts map[string]map[string]uint64
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
		m := s.counts[ev.Region]
		if m == nil {
			m = map[string]uint64{}
			s.counts[ev.Region] = m
		}
		m[ev.Location]++
		s.total++
	}
	return nil
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
