package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestAppendStreamInput(t *testing.T) {
	ok := eventLineForStream(1)
	for _, tc := range []struct {
		name     string
		input    string
		wantLine int    // InputError.Line; -1: no InputError
		wantText string // in the error
		wantSent int
	}{
		{"bad JSON on line 2", ok + "\n{\n", 2, "input line 2: ", 0},
		{"blank lines counted", "\n\n" + ok + "\nnot json\n", 4, "input line 4: ", 0},
		{"line too long", ok + "\n" + strings.Repeat("x", 70<<10) + "\n", 0, "reading input: line 2 is longer than", 0},
		{"clean", ok + "\n\n" + eventLineForStream(2) + "\n", -1, "", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var posts int
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				posts++
				io.WriteString(w, strings.Repeat(`{"index":0}`+"\n", tc.wantSent))
			}))
			defer srv.Close()
			c, err := NewUnverified(srv.URL, "tok", WithBatch(10))
			if err != nil {
				t.Fatal(err)
			}
			var emitted int
			sent, err := c.AppendStream(context.Background(), strings.NewReader(tc.input), "input", func(rs []Receipt) error {
				emitted += len(rs)
				return nil
			})
			var ie *InputError
			switch {
			case tc.wantLine < 0 && err != nil:
				t.Fatalf("AppendStream: %v", err)
			case tc.wantLine >= 0 && (!errors.As(err, &ie) || ie.Line != tc.wantLine || !strings.Contains(err.Error(), tc.wantText)):
				t.Fatalf("AppendStream: %v, want an InputError at line %d containing %q", err, tc.wantLine, tc.wantText)
			}
			if tc.wantLine >= 0 && posts != 0 {
				t.Errorf("%d requests sent for an input with a bad line in its only batch, want 0", posts)
			}
			if sent != tc.wantSent || emitted != tc.wantSent {
				t.Errorf("sent %d, emitted %d, want %d", sent, emitted, tc.wantSent)
			}
		})
	}
}

// TestAppendStreamBatches checks that events go a batch at a time, that a
// refusal of the log names the events of the failing batch in the whole
// input, and that the batches before it were emitted.
func TestAppendStreamBatches(t *testing.T) {
	var sizes []int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		lines := strings.Count(string(body), "\n")
		if len(sizes) == 2 {
			http.Error(w, "no more", http.StatusBadRequest)
			return
		}
		sizes = append(sizes, lines)
		io.WriteString(w, strings.Repeat(`{"index":0}`+"\n", lines))
	}))
	defer srv.Close()
	c, err := NewUnverified(srv.URL, "tok", WithBatch(2), WithRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	var in strings.Builder
	for i := range 5 {
		in.WriteString(eventLineForStream(i) + "\n")
	}
	var emitted []int
	sent, err := c.AppendStream(context.Background(), strings.NewReader(in.String()), "events.jsonl", func(rs []Receipt) error {
		emitted = append(emitted, len(rs))
		return nil
	})
	var be *BatchError
	var he *HTTPError
	if !errors.As(err, &be) || be.First != 5 || be.Last != 5 || !errors.As(err, &he) || he.Code != 400 {
		t.Fatalf("AppendStream: %v, want a BatchError for event 5 quoting the 400", err)
	}
	if !strings.HasPrefix(err.Error(), "appending events 5 to 5 of events.jsonl: ") {
		t.Errorf("error text %q", err)
	}
	if sent != 4 || fmt.Sprint(emitted) != "[2 2]" || fmt.Sprint(sizes) != "[2 2]" {
		t.Errorf("sent %d, emitted %v, batches %v; want 4, [2 2], [2 2]", sent, emitted, sizes)
	}
	// emit's error stops the stream and is returned as it is.
	stop := errors.New("stop")
	sizes = nil
	if _, err := c.AppendStream(context.Background(), strings.NewReader(in.String()), "x", func([]Receipt) error { return stop }); err != stop {
		t.Errorf("emit's error: got %v", err)
	}
}

func eventLineForStream(i int) string {
	return fmt.Sprintf(`{"sample":"s-%d","action":"collected","location":"ch-zrh-1","region":"EU","time":"2026-01-02T03:04:05Z","actor":"t"}`, i)
}
