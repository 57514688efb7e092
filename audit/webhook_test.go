package audit

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestWebhookDelivers: posts go out in order, as JSON; a 2xx answer is a
// delivery, anything else a failure with the status in LastErr; Take
// resets the counts.
func TestWebhookDelivers(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, string(b))
		mu.Unlock()
		if r.Header.Get("Content-Type") != "application/json" || string(b) == `{"n":2}` {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	h := NewWebhook(srv.URL, time.Minute)
	h.Add([]byte(`{"n":1}`))
	h.Add([]byte(`{"n":2}`))
	h.EndRound()
	h.Add([]byte(`{"n":3}`))
	h.Close(time.Minute) // ends the round, waits for every post
	st := h.Take()
	if st.Delivered != 2 || st.Failed != 1 || st.Dropped != 0 || !strings.Contains(st.LastErr, "500") {
		t.Errorf("stats %+v, want 2 delivered, 1 failed (500)", st)
	}
	if strings.Join(got, " ") != `{"n":1} {"n":2} {"n":3}` {
		t.Errorf("posted %q", got)
	}
	if st := h.Take(); st != (WebhookStats{}) {
		t.Errorf("Take did not reset: %+v", st)
	}
}

// TestWebhookHanging: a webhook that never answers holds a round's posts
// only for the budget: the post in flight fails, the rest are dropped, and
// Close returns.
func TestWebhookHanging(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	h := NewWebhook(srv.URL, 50*time.Millisecond)
	for range 3 {
		h.Add([]byte(`{}`))
	}
	h.EndRound()
	h.Close(time.Minute)
	if st := h.Take(); st.Delivered != 0 || st.Failed != 1 || st.Dropped != 2 {
		t.Errorf("stats %+v, want 1 failed (the one in flight at the deadline), 2 dropped", st)
	}
}

// TestWebhookQueueFull: rounds beyond WebhookQueue waiting are dropped, not
// queued without bound, and EndRound never blocks.
func TestWebhookQueueFull(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	h := NewWebhook(srv.URL, time.Hour)
	// The first round is taken by the delivery goroutine and hangs; then
	// WebhookQueue rounds fill the queue and the rest are dropped.
	rounds := WebhookQueue + 4
	for range rounds {
		h.Add([]byte(`{}`))
		h.EndRound()
	}
	close(release)
	h.Close(time.Minute)
	st := h.Take()
	if st.Delivered+st.Failed+st.Dropped != rounds || st.Dropped < rounds-WebhookQueue-1 {
		t.Errorf("stats %+v for %d rounds of one post, want at least %d dropped", st, rounds, rounds-WebhookQueue-1)
	}
}

// TestWebhookCloseUnused: a Webhook that never had a post closes at once.
func TestWebhookCloseUnused(t *testing.T) {
	h := NewWebhook("http://127.0.0.1:1", time.Second)
	h.Close(time.Minute)
	if st := h.Take(); st != (WebhookStats{}) {
		t.Errorf("stats %+v", st)
	}
}

func TestWebhookStatsProblems(t *testing.T) {
	for _, tc := range []struct {
		st   WebhookStats
		want string
	}{
		{WebhookStats{Delivered: 5}, ""},
		{WebhookStats{Delivered: 2, Failed: 1, LastErr: "502 Bad Gateway"}, "2 posts delivered, 1 failed, 0 dropped unsent; last failure: 502 Bad Gateway"},
		{WebhookStats{Dropped: 3}, "0 posts delivered, 0 failed, 3 dropped unsent (a round's posts get 30s in all, and at most 4 rounds wait; the findings are still in the audit state and on stdout)"},
	} {
		if got := tc.st.Problems(30 * time.Second); got != tc.want {
			t.Errorf("%+v: Problems = %q, want %q", tc.st, got, tc.want)
		}
	}
}
