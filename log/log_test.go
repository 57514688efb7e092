package log

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/custodylog/custody/internal/logtest"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/stats"
	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/store/sqlite"
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

var testTime = logtest.Time

type testLog struct {
	*Log
	counter  *stats.Counter // fed by the log's OnCommit
	st       store.Store
	path     string
	signer   note.Signer
	verifier note.Verifier
	vkey     string
}

func newKeys(t testing.TB) (note.Signer, note.Verifier, string) { return logtest.Keys(t) }

// newTestLog creates and opens a log in a fresh SQLite file.
func newTestLog(t testing.TB, cfg Config) *testLog {
	t.Helper()
	tl := newBareLog(t)
	tl.open(t, cfg)
	return tl
}

func (tl *testLog) open(t testing.TB, cfg Config) {
	t.Helper()
	if cfg.Store == nil {
		cfg.Store = tl.st
	}
	cfg.Signer, cfg.Verifier = tl.signer, tl.verifier
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return testTime.Add(time.Minute) }
	}
	counter := stats.New(cfg.Store, nil)
	if cfg.OnCommit == nil {
		cfg.OnCommit = counter.Committed
	}
	l, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); counter.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	tl.Log, tl.counter = l, counter
}

// Stats returns the counts the log's commits feed.
func (tl *testLog) Stats() *stats.Counter { return tl.counter }

// reopen closes the log and the store and opens both again.
func (tl *testLog) reopen(t testing.TB) {
	t.Helper()
	tl.Close()
	if err := tl.st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(tl.path)
	if err != nil {
		t.Fatal(err)
	}
	tl.st = st
	tl.open(t, Config{})
}

func testEvent(i int) record.Event { return logtest.Event(i) }

func testEvents(from, n int) []record.Event { return logtest.Events(from, n) }

// checkReceipt verifies a receipt with x/mod's note and tlog, not our code.
func checkReceipt(t testing.TB, vkey string, r verify.Receipt) tlog.Tree {
	t.Helper()
	return logtest.CheckReceipt(t, vkey, r)
}

func TestAddReceiptsVerifyWithXMod(t *testing.T) {
	tl := newTestLog(t, Config{MaxBatch: 100})
	ctx := context.Background()
	// Grow through the tile edges: 1, 255, 256, 257 and beyond 256*2.
	total := 0
	for _, n := range []int{1, 254, 1, 1, 300, 3000} {
		rs, err := tl.AddMany(ctx, testEvents(total, n))
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range rs {
			if r.Index != uint64(total+i) {
				t.Fatalf("event %d got index %d", total+i, r.Index)
			}
			checkReceipt(t, tl.vkey, r)
		}
		total += n
		if got := tl.Checkpoint().Size; got != uint64(total) {
			t.Fatalf("size %d after %d events", got, total)
		}
	}
}

func TestDuplicateGetsOriginalIndex(t *testing.T) {
	tl := newTestLog(t, Config{})
	ctx := context.Background()
	first, err := tl.AddMany(ctx, testEvents(0, 10))
	if err != nil {
		t.Fatal(err)
	}
	size := tl.Checkpoint().Size
	// The same events again, in another order, plus a duplicate within
	// the batch and one new event.
	evs := append(testEvents(5, 5), testEvents(0, 5)...)
	evs = append(evs, testEvent(3), testEvent(10))
	again, err := tl.AddMany(ctx, evs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range again[:10] {
		want := first[(i+5)%10]
		if r.Index != want.Index || string(r.Entry) != string(want.Entry) {
			t.Errorf("duplicate %d: got index %d entry %s, want %d %s", i, r.Index, r.Entry, want.Index, want.Entry)
		}
		checkReceipt(t, tl.vkey, r)
	}
	if again[10].Index != 3 {
		t.Errorf("in-batch duplicate got index %d, want 3", again[10].Index)
	}
	if again[11].Index != size {
		t.Errorf("new event got index %d, want %d", again[11].Index, size)
	}
	if got := tl.Checkpoint().Size; got != size+1 {
		t.Errorf("size %d, want %d: duplicates grew the tree", got, size+1)
	}
	// Only duplicates: no new checkpoint at all.
	cp := tl.Checkpoint()
	if _, err := tl.AddMany(ctx, testEvents(0, 3)); err != nil {
		t.Fatal(err)
	}
	if got := tl.Checkpoint(); string(got.Note) != string(cp.Note) {
		t.Errorf("an all-duplicate batch published a new checkpoint")
	}
}

func TestConcurrentAddsAreBatched(t *testing.T) {
	tl := newTestLog(t, Config{MaxBatch: 64, MaxWait: 5 * time.Millisecond})
	ctx := context.Background()
	const writers, each = 16, 40
	var mu sync.Mutex
	seen := map[uint64]string{}
	var wg sync.WaitGroup
	errc := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				ev := testEvent(w*each + i)
				r, err := tl.Add(ctx, ev)
				if err != nil {
					errc <- err
					return
				}
				mu.Lock()
				if prev, ok := seen[r.Index]; ok {
					errc <- fmt.Errorf("index %d given to %s and %s", r.Index, prev, ev.Sample)
				}
				seen[r.Index] = ev.Sample
				mu.Unlock()
				checkReceipt(t, tl.vkey, r)
			}
		}(w)
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if got := tl.Checkpoint().Size; got != writers*each {
		t.Fatalf("size %d, want %d", got, writers*each)
	}
	// Every stored entry is the one its receipt named.
	es, err := tl.Entries(ctx, 0, writers*each)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		ev, err := record.DecodeEntry(e.Data)
		if err != nil {
			t.Fatal(err)
		}
		if seen[e.Index] != ev.Sample {
			t.Fatalf("entry %d holds %s, its receipt went to %s", e.Index, ev.Sample, seen[e.Index])
		}
	}
}

func TestReopenContinues(t *testing.T) {
	tl := newTestLog(t, Config{})
	ctx := context.Background()
	if _, err := tl.AddMany(ctx, testEvents(0, 700)); err != nil {
		t.Fatal(err)
	}
	before := tl.Checkpoint()
	tl.reopen(t)
	if got := tl.Checkpoint(); string(got.Note) != string(before.Note) {
		t.Fatalf("after reopen the checkpoint is\n%s\nwant\n%s", got.Note, before.Note)
	}
	rs, err := tl.AddMany(ctx, testEvents(700, 100))
	if err != nil {
		t.Fatal(err)
	}
	tree := checkReceipt(t, tl.vkey, rs[99])
	// The tree after reopening extends the one before (x/mod CheckTree).
	p, err := tl.ConsistencyProof(ctx, before.Size, uint64(tree.N))
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.CheckTree(toTLog(p), tree.N, tree.Hash, int64(before.Size), tlog.Hash(before.Root)); err != nil {
		t.Fatalf("x/mod CheckTree %d -> %d: %v", before.Size, tree.N, err)
	}
	// Stats survive the reopen (recounted from the store in the background).
	waitCounted(t, tl)
	if got := tl.Stats().Counts()["EU"]["ch-zrh-1"]; got != 800 {
		t.Errorf("EU/ch-zrh-1 count %d, want 800", got)
	}
}

func toTLog(p [][]byte) tlog.TreeProof {
	out := make(tlog.TreeProof, len(p))
	for i := range p {
		out[i] = tlog.Hash(p[i])
	}
	return out
}

// failingStore fails Append while fail is set, optionally after committing.
type failingStore struct {
	store.Store
	mu          sync.Mutex
	fail        bool
	afterCommit bool
}

func (f *failingStore) Append(ctx context.Context, b store.Batch) error {
	f.mu.Lock()
	fail, after := f.fail, f.afterCommit
	f.mu.Unlock()
	if fail && !after {
		return errors.New("injected: disk full")
	}
	err := f.Store.Append(ctx, b)
	if fail && after && err == nil {
		return errors.New("injected: commit reported failure after it reached the disk")
	}
	return err
}

func TestCommitFailurePublishesNothing(t *testing.T) {
	for _, after := range []bool{false, true} {
		t.Run(fmt.Sprintf("afterCommit=%v", after), func(t *testing.T) {
			tl := newTestLog(t, Config{})
			ctx := context.Background()
			if _, err := tl.AddMany(ctx, testEvents(0, 10)); err != nil {
				t.Fatal(err)
			}
			fs := &failingStore{Store: tl.st, fail: true, afterCommit: after}
			tl.Close()
			tl.open(t, Config{Store: fs})
			before := tl.Checkpoint()
			_, err := tl.AddMany(ctx, testEvents(10, 5))
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("AddMany with a failing store: %v, want ErrUnavailable", err)
			}
			if got := tl.Checkpoint(); string(got.Note) != string(before.Note) {
				t.Fatalf("a failed commit published checkpoint %d", got.Size)
			}
			fs.mu.Lock()
			fs.fail = false
			fs.mu.Unlock()
			// The retry succeeds and the events get the indexes after 10 exactly
			// once, whether or not the failed commit reached the disk.
			rs, err := tl.AddMany(ctx, testEvents(10, 5))
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range rs {
				if r.Index != uint64(10+i) {
					t.Fatalf("retried event %d got index %d", i, r.Index)
				}
				checkReceipt(t, tl.vkey, r)
			}
			if got := tl.Checkpoint().Size; got != 15 {
				t.Fatalf("size %d after retry, want 15", got)
			}
			waitCounted(t, tl)
			if got := tl.Stats().Total(); got != 15 {
				t.Fatalf("stats count %d events after retry, want 15", got)
			}
		})
	}
}

func TestCloseAnswersQueuedEvents(t *testing.T) {
	tl := newTestLog(t, Config{MaxWait: 50 * time.Millisecond})
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ok, closed int
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r, err := tl.Add(ctx, testEvent(i))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
				checkReceipt(t, tl.vkey, r)
			case errors.Is(err, ErrClosed):
				closed++
			default:
				t.Errorf("Add during Close: %v", err)
			}
		}(i)
	}
	tl.Close()
	wg.Wait()
	if ok+closed != 50 {
		t.Fatalf("%d receipts + %d refused != 50", ok, closed)
	}
	if got := tl.Checkpoint().Size; got != uint64(ok) {
		t.Fatalf("size %d but %d receipts handed out", got, ok)
	}
}

// TestConcurrentDuplicates submits the same events from many goroutines at
// once, so duplicates meet batches that are still being committed.
func TestConcurrentDuplicates(t *testing.T) {
	tl := newTestLog(t, Config{MaxBatch: 8, MaxWait: -1})
	ctx := context.Background()
	const writers, events = 8, 60
	idx := make([][]uint64, writers)
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < events; i++ {
				r, err := tl.Add(ctx, testEvent(i))
				if err != nil {
					t.Error(err)
					return
				}
				checkReceipt(t, tl.vkey, r)
				idx[w] = append(idx[w], r.Index)
			}
		}(w)
	}
	wg.Wait()
	for w := 1; w < writers; w++ {
		if fmt.Sprint(idx[w]) != fmt.Sprint(idx[0]) {
			t.Fatalf("writer %d got indexes %v, writer 0 %v", w, idx[w], idx[0])
		}
	}
	if got := tl.Checkpoint().Size; got != events {
		t.Fatalf("size %d after %d distinct events", got, events)
	}
}

// waitCounted waits until the counts fed by the log's commits have reached
// the published size (it fails the test after 10 s).
func waitCounted(t testing.TB, l *testLog) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for l.Stats().Counted() < l.Checkpoint().Size {
		if time.Now().After(deadline) {
			t.Fatalf("counted %d of %d entries after 10 s", l.Stats().Counted(), l.Checkpoint().Size)
		}
		time.Sleep(time.Millisecond)
	}
}
