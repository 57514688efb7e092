// Package stats counts a log's events per customer region and data centre
// (the event's location): the numbers behind the dashboard's chart and
// GET /v1/stats; and keeps the same events' activity.Aggregate (flows,
// collections, time series), which a Counter serves as an
// activity.Reader and saves and restores with the counts.
//
// A Counter is fed outside the log's commit path. The log hands it each
// committed batch (log.Config.OnCommit is Counter.Committed, which only
// queues the entries); Run, on its own goroutine, decodes and counts them,
// and reads from the store whatever it was not handed: the entries already
// in the log when it was opened, those another server appended to a shared
// store, those of a commit that failed after reaching the disk, and any
// batch dropped because the queue was full. The sequencer never decodes an
// event to count it, and never waits for the Counter.
package stats

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/custodylog/custody/activity"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/store"
)

// Bounds of the counts: a token holder who logs events with ever new
// regions and locations must not grow them without limit.
const (
	// MaxRegions is the most distinct regions counted under their own
	// name; the events of further regions are counted under OtherKey.
	MaxRegions = 256
	// MaxPairs is the most distinct (region, location) pairs counted
	// under their own names. Once it is reached, an event at a location
	// its region has no count for yet is counted at (region, OtherKey).
	MaxPairs = 16384
)

// OtherKey is the region or location under which the events beyond
// MaxRegions or MaxPairs are counted. It is not a valid region or location
// name, so it never collides with one.
const OtherKey = "(other)"

// maxQueued bounds the entries Committed holds for Run. A batch that
// would go past it is dropped and later read back from the store, so the
// queue cannot grow without limit when counting falls behind.
const maxQueued = 1 << 16

// readPage is how many entries one catch-up read asks the store for.
const readPage = 4096

// Source is where a Counter reads the entries it was not handed: the
// log's store (store.Store implements it).
type Source interface {
	Entries(ctx context.Context, start, end uint64) ([]store.Entry, error)
}

// Counter counts the log's events per region and location, in index
// order, each exactly once, and feeds the same events to an
// activity.Aggregate (site attestations are not events: neither counts
// them). It is an activity.Reader: its methods of that interface read the
// aggregate under the Counter's lock, so they are safe while it counts. Create it with New, hand it the log's commits
// with Committed and run Run on a goroutine of its own; the counts trail
// the log (Counted says how far they got).
//
// The counts are bounded: at most MaxRegions regions plus OtherKey, and at
// most MaxPairs pairs plus one (region, OtherKey) pair per region. Which
// names are kept depends only on the order of the entries (the first ones
// seen), so it is the same after every restart. The counts always add up
// to Total.
type Counter struct {
	src    Source
	logger *slog.Logger
	kick   chan struct{}

	// What the log handed over and Run has not taken yet.
	qmu    sync.Mutex
	queue  [][]store.Entry
	queued int
	target uint64 // the largest committed size the log announced

	mu     sync.RWMutex
	counts map[string]map[string]uint64
	pairs  int // distinct (region, location) pairs counted, OtherKey pairs excluded
	total  uint64
	size   uint64              // entries [0, size) are counted
	last   []byte              // the data of entry size-1 (for Snapshot)
	act    *activity.Aggregate // the same events' flows and time series

	// progress is signalled (without blocking) after Run counted some
	// entries, for Persist.
	progress chan struct{}
}

// New returns a Counter that reads missing entries from src and reports
// failures to logger (nil discards them). It starts nothing: call Run.
func New(src Source, logger *slog.Logger) *Counter {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Counter{src: src, logger: logger, kick: make(chan struct{}, 1), progress: make(chan struct{}, 1), counts: map[string]map[string]uint64{}, act: activity.New()}
}

// Committed tells the Counter that the log's committed tree has cp.Size
// entries, the last len(es) of which are es (es may be empty: counted
// from the store). It only queues: it never blocks, reads or decodes, so
// the log may call it on its commit path (it is log.Config.OnCommit).
func (c *Counter) Committed(cp store.Checkpoint, es []store.Entry) {
	c.qmu.Lock()
	c.target = max(c.target, cp.Size)
	if len(es) > 0 && c.queued+len(es) <= maxQueued {
		c.queue = append(c.queue, es)
		c.queued += len(es)
	}
	c.qmu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Run counts what Committed announces, until ctx is done. Entries it was
// handed are counted from memory; the others are read from the store. A
// store failure is logged and retried at the next Committed.
func (c *Counter) Run(ctx context.Context) {
	for {
		c.qmu.Lock()
		batches, target := c.queue, c.target
		c.queue, c.queued = nil, 0
		c.qmu.Unlock()
		if err := c.step(ctx, batches, target); err != nil && ctx.Err() == nil {
			c.logger.Error("counting entries", "err", err)
		}
		select {
		case c.progress <- struct{}{}:
		default:
		}
		select {
		case <-c.kick:
		case <-ctx.Done():
			return
		}
	}
}

// step counts the queued batches, reading any gap before one from the
// store, then reads up to target.
func (c *Counter) step(ctx context.Context, batches [][]store.Entry, target uint64) error {
	for _, es := range batches {
		if err := c.catchUp(ctx, es[0].Index); err != nil {
			return err
		}
		if err := c.add(es); err != nil {
			return err
		}
	}
	return c.catchUp(ctx, target)
}

// Add counts es on the caller's goroutine, for a writer that does not Run
// the Counter (the prefill): es must be consecutive entries of the log
// and start at or before the first uncounted one (see Counted); entries
// counted already are skipped. It must not be called while Run runs.
func (c *Counter) Add(es []store.Entry) error { return c.add(es) }

// CountTo counts the store's entries from the first uncounted one up to
// size, on the caller's goroutine; like Add, not while Run runs.
func (c *Counter) CountTo(ctx context.Context, size uint64) error { return c.catchUp(ctx, size) }

// catchUp counts the store's entries from the first uncounted one up to
// size.
func (c *Counter) catchUp(ctx context.Context, size uint64) error {
	for {
		start := c.Counted()
		if start >= size {
			return nil
		}
		end := min(start+readPage, size)
		es, err := c.src.Entries(ctx, start, end)
		if err != nil {
			return fmt.Errorf("stats: reading entries %d to %d: %w", start, end, err)
		}
		if len(es) == 0 {
			return fmt.Errorf("stats: the store has no entry %d, want entries up to %d", start, size)
		}
		if err := c.add(es); err != nil {
			return err
		}
	}
}

// add counts the entries of es not counted yet; es must be consecutive
// and start at or before the first uncounted entry.
func (c *Counter) add(es []store.Entry) (err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var last []byte // the data of the last entry counted
	defer func() {
		if last != nil {
			c.last = slices.Clone(last)
		}
	}()
	for _, e := range es {
		if e.Index < c.size {
			continue // counted already
		}
		if e.Index != c.size {
			return fmt.Errorf("stats: entry %d counted out of order (next is %d)", e.Index, c.size)
		}
		if record.KindOf(e.Data) == record.EntryAttestation {
			c.size++ // a site's attestation: no event to count
			last = e.Data
			continue
		}
		ev, err := record.DecodeEntry(e.Data)
		if err != nil {
			return fmt.Errorf("stats: counting entry %d: %w", e.Index, err)
		}
		c.size++
		c.count(ev.Region, ev.Location)
		c.act.Add(e.Index, &ev)
		last = e.Data
	}
	return nil
}

// count adds one event at (region, location), within the bounds; c.mu
// must be held.
func (c *Counter) count(region, location string) {
	c.total++
	m := c.counts[region]
	if m == nil {
		if len(c.counts) >= MaxRegions {
			region = OtherKey
			m = c.counts[OtherKey]
		}
		if m == nil {
			m = map[string]uint64{}
			c.counts[region] = m
		}
	}
	if _, ok := m[location]; !ok && location != OtherKey {
		if c.pairs >= MaxPairs {
			location = OtherKey
		} else {
			c.pairs++
		}
	}
	m[location]++
}

// Counts returns a copy of the counts: region -> location -> events.
func (c *Counter) Counts() map[string]map[string]uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.countsLocked()
}

// countsLocked is Counts; c.mu must be held.
func (c *Counter) countsLocked() map[string]map[string]uint64 {
	out := make(map[string]map[string]uint64, len(c.counts))
	for r, m := range c.counts {
		cm := make(map[string]uint64, len(m))
		for k, v := range m {
			cm[k] = v
		}
		out[r] = cm
	}
	return out
}

// Counted returns how many entries, from index 0, are counted.
func (c *Counter) Counted() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.size
}

// Total returns the number of events counted.
func (c *Counter) Total() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.total
}

// Regions returns the regions counted, sorted.
func (c *Counter) Regions() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []string
	for r := range c.counts {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// The activity.Reader methods: each reads c's aggregate under c's read
// lock (no copy of the aggregate is made), so the answer is that of the
// entries counted so far (Counted).
var _ activity.Reader = (*Counter)(nil)

// Flows is activity.Aggregate.Flows of the events counted.
func (c *Counter) Flows() []activity.Flow {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.act.Flows()
}

// Collections is activity.Aggregate.Collections of the events counted.
func (c *Counter) Collections() []activity.Collection {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.act.Collections()
}

// Recent is activity.Aggregate.Recent of the events counted.
func (c *Counter) Recent(e activity.Edge) []uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.act.Recent(e)
}

// Series is activity.Aggregate.Series of the events counted.
func (c *Counter) Series(from, to time.Time, r activity.Resolution) []activity.Bucket {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.act.Series(from, to, r)
}

// Growth is activity.Aggregate.Growth of the events counted.
func (c *Counter) Growth(from, to time.Time) []activity.Point {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.act.Growth(from, to)
}

// Span is activity.Aggregate.Span of the events counted.
func (c *Counter) Span() (first, last time.Time, ok bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.act.Span()
}

// PickResolution is activity.Aggregate.PickResolution of the events
// counted.
func (c *Counter) PickResolution(from, to time.Time) activity.Resolution {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.act.PickResolution(from, to)
}

// Events is the number of events counted (Total).
func (c *Counter) Events() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.act.Events()
}

// Transfers is the number of transferred events counted.
func (c *Counter) Transfers() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.act.Transfers()
}
