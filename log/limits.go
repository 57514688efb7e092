package log

import (
	"math"
	"sync"
	"time"
)

// DefaultMaxConcurrentWrites is how many POST /v1/events requests are
// served at once when HandlerConfig.MaxConcurrentWrites is 0.
const DefaultMaxConcurrentWrites = 64

// writeSlots caps the write requests in flight.
type writeSlots chan struct{}

// tryAcquire takes a slot without waiting; it reports false when all are taken.
func (s writeSlots) tryAcquire() bool {
	select {
	case s <- struct{}{}:
		return true
	default:
		return false
	}
}

func (s writeSlots) release() { <-s }

// tokenLimiter is a token bucket per bearer token, keyed by the token's
// SHA-256 digest (the token itself is never kept). Only authorized tokens
// get a bucket, so the map is bounded by the configured tokens.
type tokenLimiter struct {
	rate  float64 // tokens per second
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[[32]byte]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// newTokenLimiter returns nil (no limit) for rate <= 0. A burst <= 0 means
// one second's worth of events (at least 1).
func newTokenLimiter(rate float64, burst int) *tokenLimiter {
	if rate <= 0 || math.IsNaN(rate) || math.IsInf(rate, 0) {
		return nil
	}
	b := float64(burst)
	if burst <= 0 {
		b = math.Max(1, math.Ceil(rate))
	}
	return &tokenLimiter{rate: rate, burst: b, now: time.Now, buckets: make(map[[32]byte]*bucket)}
}

// take charges n events to key. It returns ok, or how long to wait until n
// events would be allowed. n larger than the burst can never pass: it
// returns ok false and wait 0.
func (t *tokenLimiter) take(key [32]byte, n int) (ok bool, wait time.Duration) {
	need := float64(n)
	if need > t.burst {
		return false, 0
	}
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buckets[key]
	if b == nil {
		b = &bucket{tokens: t.burst, last: now}
		t.buckets[key] = b
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = math.Min(t.burst, b.tokens+el*t.rate)
	}
	b.last = now
	if b.tokens >= need {
		b.tokens -= need
		return true, 0
	}
	return false, time.Duration((need - b.tokens) / t.rate * float64(time.Second))
}

// retryAfterSeconds rounds a wait up to whole seconds, at least 1.
func retryAfterSeconds(d time.Duration) int {
	s := int(math.Ceil(d.Seconds()))
	return max(s, 1)
}
