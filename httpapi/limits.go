package httpapi

import (
	"math"
	"sync"
	"time"
)

// DefaultMaxConcurrentWrites is how many POST /v1/events requests are
// served at once when Config.MaxConcurrentWrites is 0.
const DefaultMaxConcurrentWrites = 64

// DefaultBodyTimeout is how long a POST /v1/events request may take to
// send its body when Config.BodyTimeout is 0.
const DefaultBodyTimeout = 10 * time.Second

// perTokenWrites is the default cap of one token's writes in flight with
// total write slots and the given number of configured tokens: a quarter
// of the slots (16 of 64), at least 1, so that no token holder can take
// every slot from the others; with a single token there are no others,
// and it may use them all.
func perTokenWrites(total, tokens int) int {
	if tokens <= 1 {
		return total
	}
	return max(1, total/4)
}

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

// tokenSlots caps the write requests in flight per bearer token (keyed by
// the token's digest). Only authorized tokens get an entry, and an entry
// is removed when its count drops to zero, so the map is bounded by the
// configured tokens.
type tokenSlots struct {
	max int
	mu  sync.Mutex
	n   map[[32]byte]int
}

func newTokenSlots(max int) *tokenSlots {
	return &tokenSlots{max: max, n: make(map[[32]byte]int)}
}

// tryAcquire takes one of key's slots without waiting; it reports false
// when key already has max requests in flight.
func (s *tokenSlots) tryAcquire(key [32]byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n[key] >= s.max {
		return false
	}
	s.n[key]++
	return true
}

func (s *tokenSlots) release(key [32]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n[key]--; s.n[key] <= 0 {
		delete(s.n, key)
	}
}

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

// refill brings key's bucket up to now; t.mu must be held.
func (t *tokenLimiter) refill(key [32]byte) *bucket {
	now := t.now()
	b := t.buckets[key]
	if b == nil {
		b = &bucket{tokens: t.burst, last: now}
		t.buckets[key] = b
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = math.Min(t.burst, b.tokens+el*t.rate)
	}
	b.last = now
	return b
}

// admit reports whether key may send a request now: while its bucket holds
// at least one event's worth. Otherwise it returns how long until it will.
// A request is admitted before its body is read, so admit charges nothing:
// the events are charged with charge once they are received.
func (t *tokenLimiter) admit(key [32]byte) (ok bool, wait time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.refill(key)
	if b.tokens >= 1 {
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / t.rate * float64(time.Second))
}

// charge takes n events from key's bucket: every event received, whether
// it turns out new, a duplicate or invalid. The bucket may go below zero;
// admit then refuses key's requests until the debt is repaid at the rate.
func (t *tokenLimiter) charge(key [32]byte, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.refill(key).tokens -= float64(n)
}

// retryAfterSeconds rounds a wait up to whole seconds, at least 1.
func retryAfterSeconds(d time.Duration) int {
	s := int(math.Ceil(d.Seconds()))
	return max(s, 1)
}
