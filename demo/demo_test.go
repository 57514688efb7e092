package demo

import (
	"context"
	"errors"
	"testing"
)

// A server that fails before it is ready: Start returns its error.
func TestStartFailsBeforeReady(t *testing.T) {
	boom := errors.New("listen: address in use")
	s, addr, err := Start(context.Background(), func(context.Context, chan<- string) error { return boom })
	if !errors.Is(err, boom) || s != nil || addr != "" {
		t.Fatalf("Start = %v, %q, %v; want nil, \"\", %v", s, addr, err, boom)
	}
}

// serveUntilDone is a server that is ready at once and returns ret once
// its context is done.
func serveUntilDone(ret error) func(context.Context, chan<- string) error {
	return func(ctx context.Context, ready chan<- string) error {
		ready <- "127.0.0.1:1"
		<-ctx.Done()
		return ret
	}
}

func TestStopStopsAndReportsErrors(t *testing.T) {
	stopped := errors.New("stopped badly")
	s, addr, err := Start(context.Background(), serveUntilDone(stopped))
	if err != nil || addr != "127.0.0.1:1" {
		t.Fatalf("Start: %q, %v", addr, err)
	}
	// Stop returns only once the server returned (it would hang
	// otherwise), and the server's error when there is no other.
	if err := s.Stop(nil); !errors.Is(err, stopped) {
		t.Errorf("Stop(nil) = %v, want %v", err, stopped)
	}
	s, _, _ = Start(context.Background(), serveUntilDone(stopped))
	first := errors.New("appending failed")
	if err := s.Stop(first); !errors.Is(err, first) {
		t.Errorf("Stop(first) = %v, want %v", err, first)
	}
}

func TestWait(t *testing.T) {
	// ctx done: the server is stopped, its nil error returned.
	ctx, cancel := context.WithCancel(context.Background())
	s, _, _ := Start(context.Background(), serveUntilDone(nil))
	cancel()
	if err := s.Wait(ctx); err != nil {
		t.Errorf("Wait after ctx done = %v", err)
	}
	// The server stops by itself: Wait returns its error.
	died := errors.New("store failed")
	s, _, _ = Start(context.Background(), func(_ context.Context, ready chan<- string) error {
		ready <- "x"
		return died
	})
	if err := s.Wait(context.Background()); !errors.Is(err, died) {
		t.Errorf("Wait = %v, want %v", err, died)
	}
}
