// Package httpapi is the HTTP API of a custody log server: the
// c2sp.org/tlog-tiles read API, the JSON convenience endpoints (proofs,
// entries, sample pages, stats), POST /v1/events with its bearer tokens,
// limits and forwarding to the sequencer, /healthz and /metrics.
//
// It works over Log, the narrow view of the sequencer (package log) it
// needs; it holds no log state of its own beyond the limits' counters.
package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/custodylog/custody/log"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/verify"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Limits of the HTTP API.
const (
	// DefaultMaxBody is the largest POST /v1/events body accepted.
	DefaultMaxBody = 16 << 20
	// DefaultMaxEvents is the most events one POST /v1/events may carry.
	DefaultMaxEvents = 10000
	// maxQuery bounds the query string of read requests.
	maxQuery = 1024
	// maxOtherBody bounds what any route other than POST /v1/events may
	// read of a request body (GET and HEAD may read none).
	maxOtherBody = 64 << 10
	// maxTokenFile bounds the token file LoadTokens reads.
	maxTokenFile = 1 << 20
)

// Log is what the API needs of the log (a *log.Log): the published
// checkpoint and what it covers, and Submit for writes.
type Log interface {
	// Checkpoint is the newest published checkpoint.
	Checkpoint() store.Checkpoint
	// ReadTile reads a tile or entry bundle of the published tree.
	ReadTile(ctx context.Context, a verify.TileAddr) ([]byte, error)
	// InclusionProof and ConsistencyProof build proofs in the published
	// tree (errors wrap log.ErrBeyondTree past it).
	InclusionProof(ctx context.Context, index, size uint64) ([][]byte, error)
	ConsistencyProof(ctx context.Context, from, to uint64) ([][]byte, error)
	// LeafIndex finds a published entry by leaf hash.
	LeafIndex(ctx context.Context, h store.Hash) (uint64, error)
	// Entries reads published entries [start, end).
	Entries(ctx context.Context, start, end uint64) ([]store.Entry, error)
	// SampleIndexes lists a sample's published entries.
	SampleIndexes(ctx context.Context, sample string) ([]uint64, error)
	// Submit appends events and returns once they are durable.
	Submit(ctx context.Context, evs []record.Event) (*log.Receipts, error)
	// SubmitGroups appends events, some signed by their sites, and
	// returns once they are durable (log.Log.SubmitGroups).
	SubmitGroups(ctx context.Context, gs []log.Group) (*log.Receipts, error)
	// SiteMode says whether the log verifies or requires site signatures.
	SiteMode() log.SiteMode
	// Closed reports whether the log is shutting down.
	Closed() bool
}

// Counts are the event counts GET /v1/stats serves (stats.Counter).
type Counts interface {
	// Counted is how many entries, from index 0, are counted.
	Counted() uint64
	// Counts is region -> location -> events.
	Counts() map[string]map[string]uint64
}

// Config configures the HTTP API of a log.
type Config struct {
	// Tokens are the bearer tokens allowed to POST events. With none, every
	// write is refused (401).
	Tokens []string
	// MaxBody and MaxEvents bound one POST /v1/events (0: the defaults).
	MaxBody   int64
	MaxEvents int
	// Metrics and Gatherer, if set, serve /metrics and count requests.
	Metrics  *Metrics
	Gatherer prometheus.Gatherer
	// Logger receives one line per failed request; nil discards.
	Logger *slog.Logger
	// Extra, if set, is mounted at "/" for everything the API does not
	// serve (the dashboard).
	Extra http.Handler
	// MaxConcurrentWrites caps the POST /v1/events requests served at
	// once (0: DefaultMaxConcurrentWrites). Beyond it a request is answered
	// 429 with Retry-After: 1 at once, without reading its body.
	MaxConcurrentWrites int
	// MaxConcurrentWritesPerToken caps the POST /v1/events requests of
	// one bearer token served at once, so that one token holder cannot
	// take every slot from the others. 0: a quarter of
	// MaxConcurrentWrites, at least 1 (16 of the default 64), when there
	// are several Tokens; all of them with one token, whose holders have
	// nobody else's writes to block. Beyond it: 429 with Retry-After: 1,
	// body not read.
	MaxConcurrentWritesPerToken int
	// BodyTimeout is how long a POST /v1/events request may take to send
	// its body (0: DefaultBodyTimeout); past it the request is answered
	// 408 and its slot freed.
	BodyTimeout time.Duration
	// TokenRate limits each bearer token to this many events per second
	// on average (0: unlimited), with bursts of up to TokenBurst events
	// (0: one second's worth). A token whose bucket is empty is answered
	// 429 with Retry-After before its body is read; otherwise every event
	// its request carries is charged (new, duplicate or invalid alike),
	// and the bucket may go into debt that later requests wait out. A
	// request with more events than TokenBurst gets 413.
	TokenRate  float64
	TokenBurst int
	// Leader, if set, says which server appends when several share the
	// store: self is true when this one does; otherwise addr is the base
	// URL of the one that does ("" if none is known). A POST /v1/events
	// that passes the token, size and rate checks is then forwarded there
	// once (its answer is passed back as it is); with no leader known, or
	// for a request that was already forwarded, it gets 503 with
	// Retry-After.
	Leader func() (addr string, self bool)
	// Stats, if set, are the region × location counts GET /v1/stats
	// serves (without: none counted).
	Stats Counts
	// Now is the clock a submitted event's time is checked against (not
	// more than 5 minutes ahead); nil: time.Now.
	Now func() time.Time
}

type api struct {
	l           Log
	now         func() time.Time
	tokens      [][32]byte
	maxBody     int64
	maxEvents   int
	m           *Metrics
	logger      *slog.Logger
	slots       writeSlots
	tokenSlots  *tokenSlots
	bodyTimeout time.Duration
	limiter     *tokenLimiter // nil: no per-token limit
	leader      func() (string, bool)
	forward     *http.Client
	counts      Counts
}

// New returns the HTTP API of l: the c2sp.org/tlog-tiles read API, the
// JSON convenience endpoints, POST /v1/events, /healthz and /metrics. It
// starts nothing.
func New(l Log, cfg Config) http.Handler {
	a := &api{l: l, now: cfg.Now, maxBody: cfg.MaxBody, maxEvents: cfg.MaxEvents, m: cfg.Metrics, logger: cfg.Logger}
	if a.now == nil {
		a.now = time.Now
	}
	if a.maxBody <= 0 {
		a.maxBody = DefaultMaxBody
	}
	if a.maxEvents <= 0 {
		a.maxEvents = DefaultMaxEvents
	}
	if a.logger == nil {
		a.logger = slog.New(slog.DiscardHandler)
	}
	maxWrites := cfg.MaxConcurrentWrites
	if maxWrites <= 0 {
		maxWrites = DefaultMaxConcurrentWrites
	}
	a.slots = make(writeSlots, maxWrites)
	perToken := cfg.MaxConcurrentWritesPerToken
	if perToken <= 0 {
		perToken = perTokenWrites(maxWrites, len(cfg.Tokens))
	}
	a.tokenSlots = newTokenSlots(min(perToken, maxWrites))
	a.bodyTimeout = cfg.BodyTimeout
	if a.bodyTimeout <= 0 {
		a.bodyTimeout = DefaultBodyTimeout
	}
	a.limiter = newTokenLimiter(cfg.TokenRate, cfg.TokenBurst)
	a.leader = cfg.Leader
	a.counts = cfg.Stats
	a.forward = &http.Client{Timeout: 2 * time.Minute}
	for _, t := range cfg.Tokens {
		a.tokens = append(a.tokens, sha256.Sum256([]byte(t)))
	}
	mux := http.NewServeMux()
	handle := func(pattern string, h http.HandlerFunc) {
		mux.Handle(pattern, a.instrument(pattern, h))
	}
	handle("GET /checkpoint", a.checkpoint)
	handle("GET /tile/", a.tile)
	handle("GET /v1/proof/inclusion", a.inclusion)
	handle("GET /v1/proof/consistency", a.consistency)
	handle("GET /v1/entries/{index}", a.entry)
	handle("GET /v1/samples/{sample}", a.sample)
	handle("GET /v1/samples/{sample}/proof", a.sampleProof)
	handle("GET /v1/stats", a.stats)
	handle("POST /v1/events", a.events)
	handle("GET /healthz", a.healthz)
	if cfg.Gatherer != nil {
		mux.Handle("GET /metrics", a.instrument("GET /metrics", promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{}).ServeHTTP))
	}
	handle("/", func(w http.ResponseWriter, r *http.Request) {
		if allow := apiMethod(r.URL.Path); allow != "" {
			if r.Method == allow || (r.Method == http.MethodHead && allow == http.MethodGet) {
				// The right method on an API path no route matched:
				// a missing or extra path segment.
				badAPIPath(w, r)
				return
			}
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, "%s %s: use %s", r.Method, r.URL.Path, allow)
			return
		}
		if cfg.Extra != nil {
			cfg.Extra.ServeHTTP(w, r)
			return
		}
		writeError(w, http.StatusNotFound, "no such endpoint: %s %s", r.Method, r.URL.Path)
	})
	return mux
}

// apiMethod returns the method an API path is served with, or "".
func apiMethod(path string) string {
	switch path {
	case "/v1/events":
		return http.MethodPost
	case "/checkpoint", "/healthz", "/metrics", "/v1/stats", "/v1/proof/inclusion", "/v1/proof/consistency":
		return http.MethodGet
	}
	for _, p := range []string{"/tile/", "/v1/entries/", "/v1/samples/"} {
		if strings.HasPrefix(path, p) {
			return http.MethodGet
		}
	}
	return ""
}

// badAPIPath answers a request with the right method on an API path that
// matches no route: 400 for a missing index or sample ID, 404 otherwise,
// saying what the route looks like.
func badAPIPath(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case p == "/v1/entries/":
		writeError(w, http.StatusBadRequest, "missing entry index: use GET /v1/entries/{index}, with a decimal index from 0")
	case p == "/v1/samples/":
		writeError(w, http.StatusBadRequest, "missing sample ID: use GET /v1/samples/{sample}")
	case strings.HasPrefix(p, "/v1/entries/"):
		writeError(w, http.StatusNotFound, "no such endpoint: %s %s (entries are at /v1/entries/{index})", r.Method, p)
	case strings.HasPrefix(p, "/v1/samples/"):
		writeError(w, http.StatusNotFound, "no such endpoint: %s %s (samples are at /v1/samples/{sample}; a sample ID has no '/')", r.Method, p)
	default:
		writeError(w, http.StatusNotFound, "no such endpoint: %s %s", r.Method, p)
	}
}

// statusWriter records the status code for metrics.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (for the body
// read deadline of POST /v1/events).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (a *api) instrument(route string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if sw.code == 0 {
				sw.code = http.StatusOK
			}
			if a.m != nil {
				a.m.HTTP.WithLabelValues(route, strconv.Itoa(sw.code)).Inc()
				a.m.HTTPLatency.WithLabelValues(route).Observe(time.Since(start).Seconds())
			}
		}()
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			// Logged with the stack for the operator; the client learns nothing.
			a.logger.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			if sw.code != 0 {
				// The response has begun: abort it rather than append to it.
				panic(http.ErrAbortHandler)
			}
			writeError(sw, http.StatusInternalServerError, "internal error")
		}()
		// Every route bounds what it may read of a body; only POST
		// /v1/events reads one (with its own, larger limit). The limit is
		// set on a shallow copy: the server must still see its own body
		// type, so that it closes the connection after the reply instead
		// of draining a large unread body first.
		if route != "POST /v1/events" && r.Body != nil && r.Body != http.NoBody {
			limit := int64(maxOtherBody)
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				limit = 0
			}
			r = r.WithContext(r.Context())
			r.Body = http.MaxBytesReader(sw, r.Body, limit)
		}
		if len(r.URL.RawQuery) > maxQuery {
			writeError(sw, http.StatusRequestURITooLong, "query string is %d bytes, the limit is %d", len(r.URL.RawQuery), maxQuery)
		} else {
			h(sw, r)
		}
	})
}

// writeError writes {"error": msg} with the status code.
func writeError(w http.ResponseWriter, code int, format string, args ...any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	msg := fmt.Sprintf(format, args...)
	b, _ := json.Marshal(map[string]string{"error": msg})
	w.Write(append(b, '\n'))
}

// marshal encodes v as one line of JSON without HTML escaping, so that
// embedded events are shown byte for byte as logged.
func marshal(buf *bytes.Buffer, v any) error {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func writeJSON(w http.ResponseWriter, v any) {
	var buf bytes.Buffer
	if err := marshal(&buf, v); err != nil {
		writeError(w, http.StatusInternalServerError, "internal error")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(buf.Bytes())
}

// fail maps an error from the log to a status code. Internal details are
// logged, never sent.
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	// A storage failure (log.ErrUnavailable) is that, whatever its cause
	// wraps (a missing tile, a timeout): it is checked before the causes.
	switch {
	case errors.Is(err, log.ErrRejected):
		writeError(w, http.StatusBadRequest, "%v; nothing of the request was written", err)
	case errors.Is(err, log.ErrNoQuorum):
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "the events are stored but the witnesses have not cosigned a checkpoint covering them yet; retry the same request to get receipts")
	case errors.Is(err, log.ErrUnavailable):
		a.unavailable(w, r, err)
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "not found: %s", r.URL.Path)
	case errors.Is(err, log.ErrBeyondTree):
		writeError(w, http.StatusBadRequest, "%v", err)
	case errors.Is(err, log.ErrClosed):
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "the log is shutting down; retry later")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusServiceUnavailable, "request cancelled or timed out; retry later")
	default:
		a.unavailable(w, r, err)
	}
}

// unavailable answers 503 for a failure of the log's storage; the error is
// logged, not sent.
func (a *api) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	a.logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	w.Header().Set("Retry-After", "1")
	writeError(w, http.StatusServiceUnavailable, "the log cannot serve this now (storage unavailable); retry later")
}
