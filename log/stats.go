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
// (the event's location), kept up to date as batches commit.
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
	s.mu.RLock()
	from := s.size
	s.mu.RUnlock()
	for start := from; start < size; start += page {
		end := min(start+page, size)
		es, err := st.Entries(ctx, start, end)
		if err != nil {
			return fmt.Errorf("log: counting entries %d to %d: %w", start, end, err)
		}
		if err := s.addEntries(es); err != nil {
			return fmt.Errorf("log: counting entries: %w", err)
		}
	}
	return nil
}

func (s *Stats) addEntries(es []store.Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
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
