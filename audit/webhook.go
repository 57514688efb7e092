package audit

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// Limits of a Webhook.
const (
	// WebhookQueue is how many rounds' posts may wait for delivery; a
	// round that finds the queue full drops its posts (and counts them).
	WebhookQueue = 4
	// webhookPostTimeout bounds one post (the round's budget bounds it too).
	webhookPostTimeout = 10 * time.Second
)

// Webhook posts the events of `custody monitor` (new findings, failures
// of verification) to a URL in the background, in order, so that a slow or
// hanging webhook never holds up the audits. The posts of one round form a
// batch that must be delivered within the budget, counted from the end of
// the round; what is not delivered by then is dropped. At most WebhookQueue
// batches wait; a round that finds the queue full drops its batch. Every
// delivery, failure and drop is counted (Take). A post is delivered when
// the webhook answers 2xx.
//
// Add and EndRound are for one goroutine (the monitor's loop); Take may be
// called from any. The delivery goroutine starts with the first batch and
// ends with Close.
type Webhook struct {
	url    string
	budget time.Duration
	client *http.Client

	ctx    context.Context // cancelled by Close after the grace period
	cancel context.CancelFunc
	queue  chan webhookBatch
	done   chan struct{}
	start  sync.Once

	pending [][]byte // the current round's bodies (monitor goroutine only)

	mu    sync.Mutex
	stats WebhookStats
}

type webhookBatch struct {
	bodies   [][]byte
	deadline time.Time
}

// WebhookStats counts posts since the last Take.
type WebhookStats struct {
	Delivered, Failed, Dropped int
	// LastErr is the last failure's error text, empty if none.
	LastErr string
}

// Problems describes, for people, what was not delivered: the counts, the
// last failure and, if posts were dropped, why (budget is the webhook's
// per-round budget). It is "" when nothing failed or was dropped. The
// failure's text comes from the network or the webhook: escape it before
// printing it to a terminal.
func (st WebhookStats) Problems(budget time.Duration) string {
	if st.Failed == 0 && st.Dropped == 0 {
		return ""
	}
	msg := fmt.Sprintf("%d posts delivered, %d failed, %d dropped unsent", st.Delivered, st.Failed, st.Dropped)
	if st.LastErr != "" {
		msg += "; last failure: " + st.LastErr
	}
	if st.Dropped > 0 {
		msg += fmt.Sprintf(" (a round's posts get %v in all, and at most %d rounds wait; the findings are still in the audit state and on stdout)", budget, WebhookQueue)
	}
	return msg
}

// NewWebhook returns a Webhook posting to url, each round's posts within
// budget.
func NewWebhook(url string, budget time.Duration) *Webhook {
	ctx, cancel := context.WithCancel(context.Background())
	return &Webhook{
		url: url, budget: budget, client: &http.Client{},
		ctx: ctx, cancel: cancel,
		queue: make(chan webhookBatch, WebhookQueue), done: make(chan struct{}),
	}
}

// Budget returns how long the posts of one round may take in all.
func (h *Webhook) Budget() time.Duration { return h.budget }

// Add queues body (a JSON object) for the current round.
func (h *Webhook) Add(body []byte) { h.pending = append(h.pending, body) }

// EndRound hands the round's bodies to the delivery goroutine, or drops
// them if too many rounds are waiting. It never blocks.
func (h *Webhook) EndRound() {
	if len(h.pending) == 0 {
		return
	}
	h.start.Do(func() { go h.run() })
	b := webhookBatch{bodies: h.pending, deadline: time.Now().Add(h.budget)}
	h.pending = nil
	select {
	case h.queue <- b:
	default:
		h.count(0, 0, len(b.bodies), "")
	}
}

// Close ends the round, stops accepting rounds, lets the posts in flight
// run for at most grace, then cancels the rest (counted as dropped) and
// waits for the delivery goroutine to finish.
func (h *Webhook) Close(grace time.Duration) {
	h.EndRound()
	h.start.Do(func() { close(h.done) }) // no batch ever: nothing runs
	close(h.queue)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-h.done:
	case <-t.C:
		h.cancel()
		<-h.done
	}
	h.cancel()
}

func (h *Webhook) run() {
	defer close(h.done)
	for b := range h.queue {
		ctx, cancel := context.WithDeadline(h.ctx, b.deadline)
		for i, body := range b.bodies {
			if ctx.Err() != nil {
				h.count(0, 0, len(b.bodies)-i, "")
				break
			}
			if err := h.post(ctx, body); err != nil {
				h.count(0, 1, 0, err.Error())
			} else {
				h.count(1, 0, 0, "")
			}
		}
		cancel()
	}
}

func (h *Webhook) post(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, webhookPostTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("the webhook answered %s", resp.Status)
	}
	return nil
}

func (h *Webhook) count(delivered, failed, dropped int, errText string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stats.Delivered += delivered
	h.stats.Failed += failed
	h.stats.Dropped += dropped
	if errText != "" {
		h.stats.LastErr = errText
	}
}

// Take returns the counts since the last Take and resets them.
func (h *Webhook) Take() WebhookStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.stats
	h.stats = WebhookStats{}
	return st
}
