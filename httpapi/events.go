package httpapi

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/custodylog/custody/log"
	"github.com/custodylog/custody/record"
)

// forwardedHeader marks a write forwarded by a server that does not hold
// the sequencer lease; it is never forwarded again.
const forwardedHeader = "X-Custody-Forwarded"

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
	var marks []attMark
	evs, received, err := a.readEvents(body, limit, &marks)
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
	gs, err := groups(evs, marks)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	rs, err := a.l.SubmitGroups(r.Context(), gs)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	evs, gs = nil, nil // the receipts need only rs from here on
	a.writeReceipts(w, r, rs)
}

// writeReceipts sends one receipt per line (NDJSON), building each as it
// goes, so a request holds one receipt at a time, not all of them. If a
// receipt other than the first cannot be built, the response is aborted
// (the client sees a broken connection, never a short list) and may be
// retried.
func (a *api) writeReceipts(w http.ResponseWriter, r *http.Request, rs *log.Receipts) {
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
//
// Attestation lines (attest.go) go to marks (nil: dropped) and are not
// events.
func (a *api) readEvents(body io.Reader, limit int, marks *[]attMark) (evs []record.Event, received int, err error) {
	br := bufio.NewReaderSize(body, peekBody+1)
	head, err := br.Peek(peekBody + 1)
	if len(head) <= peekBody {
		if err != io.EOF {
			return nil, 0, err
		}
		evs, code, err := a.parseEvents(head, marks)
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
	now := a.now()
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
			if ok, err := addMark(marks, b, n, len(evs)); ok {
				if err != nil {
					return nil, received, badBody{err}
				}
				continue
			}
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
func (a *api) parseEvents(body []byte, marks *[]attMark) ([]record.Event, int, error) {
	now := a.now()
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
		if ok, err := addMark(marks, b, line, len(evs)); ok {
			if err != nil {
				return nil, http.StatusBadRequest, err
			}
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
		return nil, http.StatusBadRequest, fmt.Errorf("reading JSON lines: %w", err)
	}
	return evs, 0, nil
}
