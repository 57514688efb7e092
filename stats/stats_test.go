package stats

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/store"
)

var testTime = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func entry(i int, region, location string) store.Entry {
	ev := record.Event{Sample: fmt.Sprintf("s-%d", i), Action: record.Stored, Region: region,
		Location: location, Time: testTime, Logged: testTime, Actor: "a"}
	return store.Entry{Index: uint64(i), Data: ev.Canonical()}
}

// memSource is a store's entries in memory; it counts the entries read
// and can be made to fail.
type memSource struct {
	mu   sync.Mutex
	es   []store.Entry
	read int
	fail error
}

func (m *memSource) Entries(ctx context.Context, start, end uint64) ([]store.Entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return nil, m.fail
	}
	end = min(end, uint64(len(m.es)))
	if start >= end {
		return nil, nil
	}
	m.read += int(end - start)
	return append([]store.Entry(nil), m.es[start:end]...), nil
}

func (m *memSource) append(es ...store.Entry) {
	m.mu.Lock()
	m.es = append(m.es, es...)
	m.mu.Unlock()
}

// runCounter runs c until the test ends.
func runCounter(t *testing.T, c *Counter) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// waitCounted waits until c has counted size entries (10 s at most).
func waitCounted(t *testing.T, c *Counter, size uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.Counted() < size {
		if time.Now().After(deadline) {
			t.Fatalf("counted %d of %d entries after 10 s", c.Counted(), size)
		}
		time.Sleep(time.Millisecond)
	}
}

// regionName is the i-th of many distinct region names ("RAAAA", "RAAAB", …).
func regionName(i int) string {
	b := []byte("RAAAA")
	for j := len(b) - 1; j > 0 && i > 0; j-- {
		b[j] = 'A' + byte(i%26)
		i /= 26
	}
	return string(b)
}

// TestStatsBounded: a token holder logs events with ever new regions and
// locations. The counts keep at most MaxRegions regions and MaxPairs
// pairs (plus the OtherKey buckets), and still add up to every event
// counted.
func TestStatsBounded(t *testing.T) {
	const n = MaxPairs + 4000
	s := New(&memSource{}, nil)
	var es []store.Entry
	for i := 0; i < n; i++ {
		es = append(es, entry(i, regionName(i%(MaxRegions+50)), fmt.Sprintf("l-%d", i)))
	}
	if err := s.add(es); err != nil {
		t.Fatal(err)
	}
	counts := s.Counts()
	var sum uint64
	pairs := 0
	for _, m := range counts {
		for l, c := range m {
			sum += c
			if l != OtherKey {
				pairs++
			}
		}
	}
	if len(counts) > MaxRegions+1 || counts[OtherKey] == nil {
		t.Errorf("%d regions counted (want at most %d and an %s row)", len(counts), MaxRegions+1, OtherKey)
	}
	if pairs > MaxPairs {
		t.Errorf("%d pairs counted, want at most %d", pairs, MaxPairs)
	}
	if sum != n || s.Total() != n || s.Counted() != n {
		t.Errorf("counts add up to %d, total %d, counted %d; want %d each", sum, s.Total(), s.Counted(), n)
	}
	// The first regions seen keep their names, and their later events at
	// new locations go to their own OtherKey column.
	if c := counts[regionName(0)][OtherKey]; c == 0 {
		t.Errorf("region %s has no %s column after the pair cap", regionName(0), OtherKey)
	}
}

// TestCommittedBatchesCountedFromMemory: the entries of the log at start
// are read from the store; the batches handed to Committed afterwards are
// counted without reading the store again.
func TestCommittedBatchesCountedFromMemory(t *testing.T) {
	src := &memSource{}
	for i := 0; i < 10; i++ {
		src.append(entry(i, "EU", "ch-zrh-1"))
	}
	c := New(src, nil)
	c.Committed(store.Checkpoint{Size: 10}, nil) // as log.Open does
	runCounter(t, c)
	waitCounted(t, c, 10)
	for b := 0; b < 5; b++ {
		var batch []store.Entry
		for i := 0; i < 4; i++ {
			batch = append(batch, entry(10+4*b+i, "US", "us-ash-1"))
		}
		src.append(batch...)
		c.Committed(store.Checkpoint{Size: uint64(14 + 4*b)}, batch)
	}
	waitCounted(t, c, 30)
	src.mu.Lock()
	read := src.read
	src.mu.Unlock()
	if read != 10 {
		t.Errorf("read %d entries from the store, want the 10 there at start only", read)
	}
	want := map[string]map[string]uint64{"EU": {"ch-zrh-1": 10}, "US": {"us-ash-1": 20}}
	if got := c.Counts(); fmt.Sprint(got) != fmt.Sprint(want) || c.Total() != 30 {
		t.Fatalf("counts %v (total %d), want %v", got, c.Total(), want)
	}
}

// TestGapsReadFromStore: entries the Counter was not handed (a failed
// commit that reached the disk, another server's appends, a batch dropped
// when the queue was full) are read from the store, and every entry is
// counted once, whatever the order in which batches and sizes arrive.
func TestGapsReadFromStore(t *testing.T) {
	src := &memSource{}
	c := New(src, nil)
	var all []store.Entry
	for i := 0; i < maxQueued+3000; i++ {
		all = append(all, entry(i, string(rune('A'+i%3))+"R", "x-y-1"))
	}
	src.append(all...)
	// Not handed over: [0, 5) (before start), [5, 9) announced without
	// entries (reload), then a batch too large to queue, then a batch
	// already partly counted.
	c.Committed(store.Checkpoint{Size: 5}, nil)
	c.Committed(store.Checkpoint{Size: 9}, nil)
	c.Committed(store.Checkpoint{Size: 12}, all[9:12])
	c.Committed(store.Checkpoint{Size: 20}, all[15:20]) // [12, 15) never handed over
	c.Committed(store.Checkpoint{Size: uint64(len(all) - 10)}, all[20:len(all)-10])
	c.Committed(store.Checkpoint{Size: uint64(len(all))}, all[len(all)-20:]) // overlaps
	runCounter(t, c)
	waitCounted(t, c, uint64(len(all)))
	if c.Total() != uint64(len(all)) || c.Counted() != uint64(len(all)) {
		t.Fatalf("total %d, counted %d, want %d", c.Total(), c.Counted(), len(all))
	}
	counts := c.Counts()
	for r := 0; r < 3; r++ {
		want := uint64(len(all) / 3)
		if r < len(all)%3 {
			want++
		}
		if got := counts[string(rune('A'+r))+"R"]["x-y-1"]; got != want {
			t.Errorf("region %d: %d, want %d", r, got, want)
		}
	}
}

// TestStoreFailureRetried: a store that fails leaves the counts where
// they were (nothing counted twice or skipped) and the next Committed
// retries.
func TestStoreFailureRetried(t *testing.T) {
	src := &memSource{fail: errors.New("injected: store down")}
	for i := 0; i < 8; i++ {
		src.append(entry(i, "EU", "ch-zrh-1"))
	}
	c := New(src, nil)
	if err := c.step(context.Background(), nil, 8); err == nil {
		t.Fatal("counting with a failing store succeeded")
	}
	if c.Counted() != 0 {
		t.Fatalf("counted %d after a failed read", c.Counted())
	}
	src.mu.Lock()
	src.fail = nil
	src.mu.Unlock()
	runCounter(t, c)
	c.Committed(store.Checkpoint{Size: 8}, nil)
	waitCounted(t, c, 8)
	if c.Total() != 8 {
		t.Fatalf("total %d, want 8", c.Total())
	}
}

// TestCommittedNeverBlocks: Committed returns at once however far behind
// counting is (no Run at all here), and the queue stays bounded.
func TestCommittedNeverBlocks(t *testing.T) {
	c := New(&memSource{}, nil)
	batch := make([]store.Entry, 1000)
	for i := 0; i < 1000; i++ {
		c.Committed(store.Checkpoint{Size: uint64(1000 * (i + 1))}, batch)
	}
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if c.queued > maxQueued {
		t.Fatalf("%d entries queued, bound %d", c.queued, maxQueued)
	}
	if c.target != 1000*1000 {
		t.Fatalf("target %d", c.target)
	}
}
