package log

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"time"

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

// HandlerConfig configures the HTTP API of a log.
type HandlerConfig struct {
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
}

// forwardedHeader marks a write forwarded by a server that does not hold
// the sequencer lease; it is never forwarded again.
const forwardedHeader = "X-Custody-Forwarded"

// TokenFileModeError is LoadTokens' error for a token file that group or
// others may access.
type TokenFileModeError struct {
	Path string
	Mode fs.FileMode // the permission bits found
}

func (e *TokenFileModeError) Error() string {
	return fmt.Sprintf("token file %s is accessible by group or others (mode %04o): bearer tokens are secrets, only the file's owner may read them", e.Path, e.Mode)
}

// LoadTokens reads a token file: one token per line, blank lines and lines
// starting with # ignored. It refuses a file that group or others may
// access in any way (mode & 0077 != 0, a *TokenFileModeError: tokens
// are secrets, and whoever may write the file may add one), a file with no
// token, and tokens shorter than 16 characters. The mode is checked on the
// open file, so the file checked is the file read.
func LoadTokens(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading token file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading token file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("token file %s is not a regular file (%s)", path, fi.Mode().Type())
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, &TokenFileModeError{Path: path, Mode: perm}
	}
	b, err := io.ReadAll(io.LimitReader(f, maxTokenFile+1))
	if err != nil {
		return nil, fmt.Errorf("reading token file %s: %w", path, err)
	}
	if len(b) > maxTokenFile {
		return nil, fmt.Errorf("token file %s is larger than %d bytes", path, maxTokenFile)
	}
	var out []string
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if len(line) < 16 {
			return nil, fmt.Errorf("token file %s line %d: token is %d characters, want at least 16", path, i+1, len(line))
		}
		out = append(out, line)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("token file %s holds no token", path)
	}
	return out, nil
}

type api struct {
	l           *Log
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
}

// Handler returns the log's HTTP API: the c2sp.org/tlog-tiles read API, the
// JSON convenience endpoints, POST /v1/events, /healthz and /metrics.
func (l *Log) Handler(cfg HandlerConfig) http.Handler {
	a := &api{l: l, maxBody: cfg.MaxBody, maxEvents: cfg.MaxEvents, m: cfg.Metrics, logger: cfg.Logger}
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
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "not found: %s", r.URL.Path)
	case errors.Is(err, ErrBeyondTree):
		writeError(w, http.StatusBadRequest, "%v", err)
	case errors.Is(err, ErrNoQuorum):
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "the events are stored but the witnesses have not cosigned a checkpoint covering them yet; retry the same request to get receipts")
	case errors.Is(err, ErrClosed):
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "the log is shutting down; retry later")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusServiceUnavailable, "request cancelled or timed out; retry later")
	default:
		a.logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "the log cannot serve this now (storage unavailable); retry later")
	}
}

func (a *api) checkpoint(w http.ResponseWriter, r *http.Request) {
	cp := a.l.Checkpoint()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(cp.Note)
}

func (a *api) tile(w http.ResponseWriter, r *http.Request) {
	addr, err := verify.ParseTilePath(strings.TrimPrefix(r.URL.Path, "/"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	data, err := a.l.ReadTile(r.Context(), addr)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	if addr.Width == 0 {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "public, max-age=3600")
	}
	if addr.Entries {
		h.Add("Vary", "Accept-Encoding")
	}
	if addr.Entries && acceptsGzip(r.Header.Get("Accept-Encoding")) {
		h.Set("Content-Encoding", "gzip")
		zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
		zw.Write(data)
		zw.Close()
		return
	}
	w.Write(data)
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip.
func acceptsGzip(h string) bool {
	for _, part := range strings.Split(h, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(coding) != "gzip" {
			continue
		}
		q := strings.ReplaceAll(params, " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}

// parseUint parses a canonical decimal (no sign, no leading zeros).
func parseUint(name, s string) (uint64, error) {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || strconv.FormatUint(v, 10) != s {
		return 0, fmt.Errorf("parameter %s=%q is not a decimal number", name, s)
	}
	return v, nil
}

// sizeParam reads an optional size parameter, defaulting to the published size.
func (a *api) sizeParam(r *http.Request, name string) (uint64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return a.l.Checkpoint().Size, nil
	}
	return parseUint(name, s)
}

type inclusionJSON struct {
	Index    uint64   `json:"index"`
	Size     uint64   `json:"size"`
	LeafHash []byte   `json:"leaf_hash,omitempty"`
	Proof    [][]byte `json:"proof"`
}

func (a *api) inclusion(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	size, err := a.sizeParam(r, "size")
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	var index uint64
	var leaf []byte
	switch {
	case q.Has("index") && q.Has("hash"):
		writeError(w, http.StatusBadRequest, "give index or hash, not both")
		return
	case q.Has("index"):
		if index, err = parseUint("index", q.Get("index")); err != nil {
			writeError(w, http.StatusBadRequest, "%v", err)
			return
		}
	case q.Has("hash"):
		h, err := base64.StdEncoding.Strict().DecodeString(q.Get("hash"))
		if err != nil || len(h) != hashSize {
			writeError(w, http.StatusBadRequest, "parameter hash must be the standard base64 of a 32-byte leaf hash")
			return
		}
		if index, err = a.l.LeafIndex(r.Context(), store.Hash(h)); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				writeError(w, http.StatusNotFound, "no entry with leaf hash %s in the published tree of size %d", base64.StdEncoding.EncodeToString(h), a.l.Checkpoint().Size)
				return
			}
			a.fail(w, r, err)
			return
		}
		leaf = h
	default:
		writeError(w, http.StatusBadRequest, "missing parameter index or hash")
		return
	}
	if size > a.l.Checkpoint().Size {
		writeError(w, http.StatusBadRequest, "size %d is beyond the published tree of size %d", size, a.l.Checkpoint().Size)
		return
	}
	if index >= size {
		if leaf != nil {
			writeError(w, http.StatusBadRequest, "the entry with that hash has index %d, not in a tree of size %d", index, size)
			return
		}
		// An index the published tree does not have yet.
		writeError(w, http.StatusNotFound, "no entry %d in a tree of size %d", index, size)
		return
	}
	p, err := a.l.InclusionProof(r.Context(), index, size)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if leaf == nil {
		es, err := a.l.Entries(r.Context(), index, index+1)
		if err != nil || len(es) != 1 {
			a.fail(w, r, fmt.Errorf("reading entry %d: %v", index, err))
			return
		}
		leaf = es[0].LeafHash[:]
	}
	writeJSON(w, inclusionJSON{Index: index, Size: size, LeafHash: leaf, Proof: nonNil(p)})
}

func nonNil(p [][]byte) [][]byte {
	if p == nil {
		return [][]byte{}
	}
	return p
}

func (a *api) consistency(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !q.Has("from") {
		writeError(w, http.StatusBadRequest, "missing parameter from")
		return
	}
	from, err := parseUint("from", q.Get("from"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	to, err := a.sizeParam(r, "to")
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if to > a.l.Checkpoint().Size || from > to {
		writeError(w, http.StatusBadRequest, "need from <= to <= %d (the published size), got from=%d to=%d", a.l.Checkpoint().Size, from, to)
		return
	}
	p, err := a.l.ConsistencyProof(r.Context(), from, to)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, struct {
		From  uint64   `json:"from"`
		To    uint64   `json:"to"`
		Proof [][]byte `json:"proof"`
	}{from, to, nonNil(p)})
}

// EntryJSON is an entry as the JSON endpoints show it.
type EntryJSON struct {
	Index    uint64          `json:"index"`
	LeafHash []byte          `json:"leaf_hash"`
	Entry    []byte          `json:"entry"`
	Event    json.RawMessage `json:"event"`
}

func entryJSON(e store.Entry) EntryJSON {
	return EntryJSON{Index: e.Index, LeafHash: e.LeafHash[:], Entry: e.Data, Event: e.Data}
}

func (a *api) entry(w http.ResponseWriter, r *http.Request) {
	i, err := parseUint("index", r.PathValue("index"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	es, err := a.l.Entries(r.Context(), i, i+1)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if len(es) == 0 {
		writeError(w, http.StatusNotFound, "no entry %d: the published tree has size %d", i, a.l.Checkpoint().Size)
		return
	}
	writeJSON(w, entryJSON(es[0]))
}

// MaxSamplePage is the most events one GET /v1/samples/{sample} answer
// holds; the rest are on the pages its "next" field links to.
const MaxSamplePage = 1000

// SamplePage is one page of GET /v1/samples/{sample}: the sample's
// published events with index > After (if given) and < Size, in log order,
// at most MaxSamplePage of them. Next, if set, is the path and query of the
// following page (the same Size, so that the pages together are the
// sample's events in one tree); it is absent on the last page.
type SamplePage struct {
	Sample string      `json:"sample"`
	Size   uint64      `json:"size"`
	Events []EntryJSON `json:"events"`
	Next   string      `json:"next,omitempty"`
}

// SamplePath is the path of a sample's events in the API, with the ID
// escaped as one path segment ("." and ".." included, which URL
// resolution would otherwise remove).
func SamplePath(sample string) string {
	return "/v1/samples/" + PathSegment(sample)
}

// PathSegment escapes s as one URL path segment: url.PathEscape, and the
// dot segments "." and ".." written as %2E so that neither clients nor
// servers resolve them away.
func PathSegment(s string) string {
	if s == "." || s == ".." {
		return strings.Repeat("%2E", len(s))
	}
	return url.PathEscape(s)
}

func (a *api) sample(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("sample")
	if err := record.CheckSample(id); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	q := r.URL.Query()
	published := a.l.Checkpoint().Size
	size, err := a.sizeParam(r, "size")
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if size > published {
		writeError(w, http.StatusBadRequest, "size %d is beyond the published tree of size %d", size, published)
		return
	}
	var after uint64
	hasAfter := q.Has("after")
	if hasAfter {
		if after, err = parseUint("after", q.Get("after")); err != nil {
			writeError(w, http.StatusBadRequest, "%v", err)
			return
		}
	}
	idx, err := a.l.SampleIndexes(r.Context(), id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		a.fail(w, r, err)
		return
	}
	// The sample's events in [0, size), then those after the cursor.
	idx = idx[:sort.Search(len(idx), func(i int) bool { return idx[i] >= size })]
	if len(idx) == 0 {
		writeError(w, http.StatusNotFound, "no events of sample %q in the tree of size %d", id, size)
		return
	}
	if hasAfter {
		idx = idx[sort.Search(len(idx), func(i int) bool { return idx[i] > after }):]
	}
	out := SamplePage{Sample: id, Size: size, Events: make([]EntryJSON, 0, min(len(idx), MaxSamplePage))}
	if len(idx) > MaxSamplePage {
		idx = idx[:MaxSamplePage]
		out.Next = fmt.Sprintf("%s?after=%d&size=%d", SamplePath(id), idx[len(idx)-1], size)
	}
	// Read runs of consecutive indexes with one query each.
	for len(idx) > 0 {
		n := 1
		for n < len(idx) && idx[n] == idx[n-1]+1 {
			n++
		}
		es, err := a.l.Entries(r.Context(), idx[0], idx[0]+uint64(n))
		if err != nil || len(es) != n {
			a.fail(w, r, fmt.Errorf("reading entries %d to %d of sample %q: got %d: %v", idx[0], idx[0]+uint64(n), id, len(es), err))
			return
		}
		for _, e := range es {
			out.Events = append(out.Events, entryJSON(e))
		}
		idx = idx[n:]
	}
	writeJSON(w, out)
}

func (a *api) stats(w http.ResponseWriter, r *http.Request) {
	// Counted may trail size just after start-up, while existing entries
	// are counted in the background.
	writeJSON(w, struct {
		Size    uint64                       `json:"size"`
		Counted uint64                       `json:"counted"`
		Counts  map[string]map[string]uint64 `json:"counts"`
	}{a.l.Checkpoint().Size, a.l.stats.Counted(), a.l.stats.Counts()})
}

func (a *api) healthz(w http.ResponseWriter, r *http.Request) {
	a.l.mu.RLock()
	closed := a.l.closed
	a.l.mu.RUnlock()
	if closed {
		writeError(w, http.StatusServiceUnavailable, "shutting down")
		return
	}
	writeJSON(w, map[string]any{"status": "ok", "size": a.l.Checkpoint().Size})
}

// authorized checks the bearer token in constant time against every
// configured token (comparing SHA-256 digests, so lengths do not leak). It
// returns the token's digest, the key of its rate limit; the token itself is
// never stored or logged.
func (a *api) authorized(r *http.Request) ([32]byte, bool) {
	auth := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || tok == "" {
		return [32]byte{}, false
	}
	got := sha256.Sum256([]byte(tok))
	match := 0
	for i := range a.tokens {
		match |= subtle.ConstantTimeCompare(got[:], a.tokens[i][:])
	}
	return got, match == 1
}

func (a *api) events(w http.ResponseWriter, r *http.Request) {
	// An answer given before the body is read to its end closes the
	// connection: otherwise the server would go on reading (and
	// discarding) the rest of the body, which a trickling client never
	// ends.
	refuse := func(code int, format string, args ...any) {
		w.Header().Set("Connection", "close")
		writeError(w, code, format, args...)
	}
	key, ok := a.authorized(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="custody"`)
		refuse(http.StatusUnauthorized, "missing or wrong bearer token (Authorization: Bearer <token>)")
		return
	}
	// Slots first (one token may hold only some of them), then the rate:
	// a refused request is answered without reading its body.
	if !a.tokenSlots.tryAcquire(key) {
		w.Header().Set("Retry-After", "1")
		refuse(http.StatusTooManyRequests, "this token already has %d write requests in flight, the most one token may have; retry shortly", a.tokenSlots.max)
		return
	}
	defer a.tokenSlots.release(key)
	if !a.slots.tryAcquire() {
		w.Header().Set("Retry-After", "1")
		refuse(http.StatusTooManyRequests, "too many write requests in flight; retry shortly")
		return
	}
	defer a.slots.release()
	if a.limiter != nil {
		if ok, wait := a.limiter.admit(key); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(wait)))
			refuse(http.StatusTooManyRequests, "rate limit: this token may send %g events per second (bursts of %g); retry later", a.limiter.rate, a.limiter.burst)
			return
		}
	}

	// The body must arrive within bodyTimeout, whatever the server's own
	// read timeout: a slowly trickled body holds a slot only that long.
	rc := http.NewResponseController(w)
	deadline := rc.SetReadDeadline(time.Now().Add(a.bodyTimeout)) == nil
	var body io.Reader = http.MaxBytesReader(w, r.Body, a.maxBody)
	var raw *bytes.Buffer // the body as sent, kept only to forward it
	if a.leader != nil {
		raw = new(bytes.Buffer)
		body = io.TeeReader(body, raw)
	}
	limit := a.maxEvents
	if a.limiter != nil && a.limiter.burst < float64(limit) {
		limit = int(a.limiter.burst)
	}
	evs, received, err := a.readEvents(body, limit)
	if deadline {
		rc.SetReadDeadline(time.Time{})
	}
	if a.limiter != nil && received > 0 {
		// Every event received is charged, duplicates and rejected
		// requests included.
		a.limiter.charge(key, received)
	}
	if err != nil {
		var mbe *http.MaxBytesError
		var ne net.Error
		switch {
		case errors.Is(err, errTooMany) && received > a.maxEvents:
			refuse(http.StatusRequestEntityTooLarge, "more than %d events in one request: split the batch", a.maxEvents)
		case errors.Is(err, errTooMany):
			refuse(http.StatusRequestEntityTooLarge, "more than %g events in one request, this token's burst: split the batch", a.limiter.burst)
		case errors.As(err, &mbe):
			refuse(http.StatusRequestEntityTooLarge, "request body is larger than %d bytes: send fewer events per request", a.maxBody)
		case errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
			refuse(http.StatusRequestTimeout, "the request body did not arrive within %s: send the whole body at once", a.bodyTimeout)
		case errors.Is(err, errBadBody):
			refuse(http.StatusBadRequest, "%v", err)
		default:
			refuse(http.StatusBadRequest, "reading request body: %v", err)
		}
		return
	}
	if a.leader != nil {
		if addr, self := a.leader(); !self {
			a.forwardEvents(w, r, addr, raw.Bytes())
			return
		}
		raw = nil
	}
	rs, err := a.l.Submit(r.Context(), evs)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	evs = nil // the receipts need only rs from here on
	a.writeReceipts(w, r, rs)
}

// writeReceipts sends one receipt per line (NDJSON), building each as it
// goes, so a request holds one receipt at a time, not all of them. If a
// receipt other than the first cannot be built, the response is aborted
// (the client sees a broken connection, never a short list) and may be
// retried.
func (a *api) writeReceipts(w http.ResponseWriter, r *http.Request, rs *Receipts) {
	ctx := r.Context()
	if rs.Len() == 0 {
		writeError(w, http.StatusBadRequest, "empty request: send one JSON event, or JSON lines")
		return
	}
	first, err := rs.Receipt(ctx, 0)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	bw := bufio.NewWriterSize(w, 32<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(first); err != nil {
		return
	}
	for i := 1; i < rs.Len(); i++ {
		rc, err := rs.Receipt(ctx, i)
		if err != nil {
			a.logger.Error("aborting a receipt stream", "receipt", i, "of", rs.Len(), "err", err)
			panic(http.ErrAbortHandler)
		}
		if err := enc.Encode(rc); err != nil {
			return // the client is gone
		}
	}
	bw.Flush()
}

// forwardEvents passes a checked write to the server that holds the
// sequencer lease, and its answer back.
func (a *api) forwardEvents(w http.ResponseWriter, r *http.Request, addr string, body []byte) {
	if addr == "" || r.Header.Get(forwardedHeader) != "" {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "no server holds the sequencer lease right now (failover in progress); retry shortly")
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, strings.TrimSuffix(addr, "/")+"/v1/events", bytes.NewReader(body))
	if err != nil {
		writeError(w, http.StatusInternalServerError, "forwarding to the sequencer: %v", err)
		return
	}
	req.Header.Set("Authorization", r.Header.Get("Authorization"))
	req.Header.Set("Content-Type", r.Header.Get("Content-Type"))
	req.Header.Set(forwardedHeader, "1")
	resp, err := a.forward.Do(req)
	if err != nil {
		a.logger.Warn("forwarding a write to the sequencer", "addr", addr, "err", err)
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "the sequencer did not answer (failover in progress?); retry shortly")
		return
	}
	defer resp.Body.Close()
	for _, h := range []string{"Content-Type", "Cache-Control", "Retry-After", "WWW-Authenticate"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

// Bounds of reading a POST /v1/events body.
const (
	// peekBody: a body up to this size is parsed whole (one JSON event,
	// possibly pretty-printed, or JSON lines); a longer one is JSON lines,
	// read and decoded one line at a time.
	peekBody = 64 << 10
	// maxLine bounds one line of JSON lines (white space included).
	maxLine = 64 << 10
)

// errTooMany is readEvents' error for a body with more events than its limit.
var errTooMany = errors.New("too many events in one request")

// errBadBody marks readEvents' errors about the body's content (400).
var errBadBody = errors.New("bad request body")

// badBody is an error about the body's content: it wraps errBadBody and
// says only what is wrong.
type badBody struct{ err error }

func (e badBody) Error() string        { return e.err.Error() }
func (e badBody) Is(target error) bool { return target == errBadBody }
func (e badBody) Unwrap() error        { return e.err }

// readEvents decodes a POST /v1/events body as it reads it, without
// holding the body: a body of at most peekBody bytes is parsed whole by
// parseEvents; a longer one is JSON lines, decoded line by line. It stops
// reading at the first bad line, or once more than limit events arrived
// (errTooMany). received is the number of events received (non-blank
// lines, the bad one included), whatever the outcome: the rate limit
// charges them all.
func (a *api) readEvents(body io.Reader, limit int) (evs []record.Event, received int, err error) {
	br := bufio.NewReaderSize(body, peekBody+1)
	head, err := br.Peek(peekBody + 1)
	if len(head) <= peekBody {
		if err != io.EOF {
			return nil, 0, err
		}
		evs, code, err := a.parseEvents(head)
		switch {
		case code == http.StatusRequestEntityTooLarge:
			return nil, a.maxEvents + 1, errTooMany
		case err != nil:
			// Charge every line that may have been an event.
			n := 0
			for l := range bytes.Lines(head) {
				if len(bytes.TrimSpace(l)) > 0 {
					n++
				}
			}
			return nil, max(n, 1), badBody{err}
		case len(evs) > limit:
			return nil, len(evs), errTooMany
		}
		return evs, len(evs), nil
	}
	now := a.l.cfg.Now()
	var line []byte
	for n := 1; ; n++ {
		line = line[:0]
		for {
			chunk, err := br.ReadSlice('\n')
			if len(line)+len(chunk) > maxLine {
				return nil, received + 1, badBody{fmt.Errorf("line %d is longer than %d bytes: one event per line", n, maxLine)}
			}
			line = append(line, chunk...)
			if err == bufio.ErrBufferFull {
				continue
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, received, err
			}
			break
		}
		if b := bytes.TrimSpace(line); len(b) > 0 {
			received++
			if received > limit {
				return nil, received, errTooMany
			}
			ev, err := record.DecodeSubmission(b, now)
			if err != nil {
				return nil, received, badBody{fmt.Errorf("line %d: %w", n, err)}
			}
			evs = append(evs, ev)
		}
		if _, err := br.Peek(1); err == io.EOF {
			break
		} else if err != nil {
			return nil, received, err
		}
	}
	if len(evs) == 0 {
		return nil, 0, badBody{errors.New("empty request: send one JSON event, or JSON lines")}
	}
	return evs, received, nil
}

// parseEvents splits a body holding one JSON event or JSON lines, and decodes
// every event strictly. Any bad event rejects the whole request.
func (a *api) parseEvents(body []byte) ([]record.Event, int, error) {
	now := a.l.cfg.Now()
	var evs []record.Event
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 64<<10), len(body)+1)
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, http.StatusBadRequest, errors.New("empty request: send one JSON event, or JSON lines")
	}
	// A single (possibly pretty-printed) event: one JSON value.
	if !bytes.Contains(trimmed, []byte("\n")) || json.Valid(trimmed) {
		ev, err := record.DecodeSubmission(trimmed, now)
		if err != nil {
			return nil, http.StatusBadRequest, fmt.Errorf("event 1: %w", err)
		}
		return []record.Event{ev}, 0, nil
	}
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		if len(evs) == a.maxEvents {
			return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("more than %d events in one request: split the batch", a.maxEvents)
		}
		ev, err := record.DecodeSubmission(b, now)
		if err != nil {
			return nil, http.StatusBadRequest, fmt.Errorf("line %d: %w", line, err)
		}
		evs = append(evs, ev)
	}
	if err := sc.Err(); err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("reading JSON lines: %v", err)
	}
	return evs, 0, nil
}
