package log

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custodylog/custody/store"
)

// hangingStore's Append hangs while hang is set: until its context is done
// (honest), or until release is closed whatever the context (deaf, a store
// that ignores cancellation). With afterCommit it hangs after the batch
// reached the disk. entered receives one value each time an Append hangs.
type hangingStore struct {
	store.Store
	deaf    bool
	release chan struct{}
	entered chan struct{}

	mu          sync.Mutex
	hang        bool
	afterCommit bool
}

func newHangingStore(st store.Store) *hangingStore {
	return &hangingStore{Store: st, release: make(chan struct{}), entered: make(chan struct{}, 16)}
}

func (h *hangingStore) setHang(on, afterCommit bool) {
	h.mu.Lock()
	h.hang, h.afterCommit = on, afterCommit
	h.mu.Unlock()
}

func (h *hangingStore) Append(ctx context.Context, b store.Batch) error {
	h.mu.Lock()
	hang, after := h.hang, h.afterCommit
	h.mu.Unlock()
	if !hang {
		return h.Store.Append(ctx, b)
	}
	if after {
		if err := h.Store.Append(ctx, b); err != nil {
			return err
		}
	}
	select {
	case h.entered <- struct{}{}:
	default:
	}
	if h.deaf {
		<-h.release
		return errors.New("injected: the store answered at last")
	}
	<-ctx.Done()
	return fmt.Errorf("injected: hung until cancelled: %w", ctx.Err())
}

// TestCommitTimeout: a commit that hangs past CommitTimeout fails exactly
// as a failed commit does: its callers get ErrUnavailable, wrapping
// context.DeadlineExceeded (the cause kept in the chain), nothing is
// published, and once the store answers again the pipeline has reloaded:
// the retry gets the indexes after the last published entry exactly once,
// whether or not the hung commit reached the disk.
func TestCommitTimeout(t *testing.T) {
	for _, after := range []bool{false, true} {
		t.Run(fmt.Sprintf("afterCommit=%v", after), func(t *testing.T) {
			tl := newTestLog(t, Config{})
			ctx := context.Background()
			if _, err := tl.AddMany(ctx, testEvents(0, 10)); err != nil {
				t.Fatal(err)
			}
			hs := newHangingStore(tl.st)
			tl.Close()
			tl.open(t, Config{Store: hs, CommitTimeout: 50 * time.Millisecond})
			before := tl.Checkpoint()
			hs.setHang(true, after)
			_, err := tl.AddMany(ctx, testEvents(10, 5))
			if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("AddMany with a hung store: %v, want ErrUnavailable wrapping context.DeadlineExceeded", err)
			}
			if got := tl.Checkpoint(); string(got.Note) != string(before.Note) {
				t.Fatalf("a timed-out commit published checkpoint %d", got.Size)
			}
			if !tl.broken.Load() {
				t.Fatal("a timed-out commit did not mark the log for a reload")
			}
			hs.setHang(false, false)
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
			// And the log goes on.
			rs, err = tl.AddMany(ctx, testEvents(15, 2))
			if err != nil || rs[1].Index != 16 {
				t.Fatalf("next batch: %v, %v", rs, err)
			}
		})
	}
}

// TestCommitErrorKeepsCause: the store's own error stays in the chain of
// the ErrUnavailable a caller gets (%w, not %v).
func TestCommitErrorKeepsCause(t *testing.T) {
	injected := errors.New("injected: disk full")
	tl := newTestLog(t, Config{})
	fs := &causeStore{Store: tl.st, err: injected}
	tl.Close()
	tl.open(t, Config{Store: fs})
	_, err := tl.AddMany(context.Background(), testEvents(0, 3))
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, injected) {
		t.Fatalf("AddMany with a failing store: %v; want it to wrap ErrUnavailable and the store's error", err)
	}
}

type causeStore struct {
	store.Store
	err error
}

func (c *causeStore) Append(context.Context, store.Batch) error { return c.err }

// TestShutdownCancelsHungCommit: Shutdown with a deadline returns by it
// even though a commit is hung in the store, cancels the log's context so
// the store call returns, and the caller of that batch is answered with
// ErrUnavailable (the batch is not lost silently: it may be retried).
func TestShutdownCancelsHungCommit(t *testing.T) {
	tl := newTestLog(t, Config{})
	hs := newHangingStore(tl.st)
	tl.Close()
	tl.open(t, Config{Store: hs, CommitTimeout: time.Hour})
	hs.setHang(true, false)
	errc := make(chan error, 1)
	go func() {
		_, err := tl.AddMany(context.Background(), testEvents(0, 3))
		errc <- err
	}()
	<-hs.entered // the commit is in the store
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := tl.Shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with a hung commit: %v, want context.DeadlineExceeded", err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
			t.Fatalf("the hung batch's caller got %v, want ErrUnavailable wrapping context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the hung batch's caller was not answered after Shutdown cancelled the log")
	}
	if _, err := tl.AddMany(context.Background(), testEvents(3, 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("AddMany after Shutdown: %v, want ErrClosed", err)
	}
	// A second Shutdown finds the goroutines stopped.
	if err := tl.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}

// TestShutdownBoundedByDeafStore: a store that ignores cancellation cannot
// hold Shutdown past its context.
func TestShutdownBoundedByDeafStore(t *testing.T) {
	tl := newTestLog(t, Config{})
	hs := newHangingStore(tl.st)
	hs.deaf = true
	t.Cleanup(func() { close(hs.release) }) // let the stuck goroutines end
	tl.Close()
	tl.open(t, Config{Store: hs, CommitTimeout: 50 * time.Millisecond})
	hs.setHang(true, false)
	errc := make(chan error, 1)
	go func() {
		_, err := tl.AddMany(context.Background(), testEvents(0, 3))
		errc <- err
	}()
	<-hs.entered
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := tl.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with a store that ignores cancellation: %v, want context.DeadlineExceeded", err)
	}
	select {
	case err := <-errc:
		t.Fatalf("the batch stuck in a deaf store was answered (%v) before the store returned", err)
	default:
	}
}

// TestSyncCancelledByShutdown: Sync's work on the sequencer runs under the
// caller's context and the log's lifetime: a Sync waiting on a hung store
// read returns once Shutdown ends the log.
func TestSyncCancelledByShutdown(t *testing.T) {
	tl := newTestLog(t, Config{Shared: true})
	hs := &hangingLatest{Store: tl.st, entered: make(chan struct{}, 1)}
	tl.Close()
	tl.open(t, Config{Store: hs, Shared: true})
	hs.hang.Store(true)
	errc := make(chan error, 1)
	go func() { errc <- tl.Sync(context.Background()) }()
	<-hs.entered
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	tl.Shutdown(ctx) // the sequencer is inside Sync: not done in time
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Sync cut short by Shutdown: %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Sync on a hung store did not return after Shutdown")
	}
}

// hangingLatest's Latest hangs, while hang is set, until its context is done.
type hangingLatest struct {
	store.Store
	hang    atomic.Bool
	entered chan struct{}
}

func (h *hangingLatest) Latest(ctx context.Context) (store.Checkpoint, error) {
	if !h.hang.Load() {
		return h.Store.Latest(ctx)
	}
	select {
	case h.entered <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return store.Checkpoint{}, ctx.Err()
}
