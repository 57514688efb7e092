// Package client is how a data centre's software submits events to a
// custody log: it batches events, retries what is safe to retry, honours
// the server's back-pressure, and verifies every receipt before handing it
// back, so a caller never holds a receipt that would not stand up to an
// auditor.
//
// Appending is idempotent on the server (an event already in the log gets
// its original index), so Append retries a batch after a network error, a
// 5xx answer or a 429 without risk of logging an event twice.
//
//	c, err := client.New("https://log.example", token, verifier)
//	receipts, err := c.Append(ctx, events)
//
// Every receipt Append returns has been checked with [verify.CheckReceipt]
// against the log's key (and the witness trust policy, with [WithTrust]),
// and its event is the one submitted: same identity, only logged added.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

// Defaults for the options.
const (
	// DefaultBatch is how many events one request carries.
	DefaultBatch = 1000
	// MaxBatch is the most events the server accepts in one request.
	MaxBatch = 10000
	// DefaultRetries is how many times a batch is retried.
	DefaultRetries = 8
	// DefaultMaxBackoff caps the wait between retries (and a Retry-After).
	DefaultMaxBackoff = 10 * time.Second
	// maxAnswer bounds the bytes read from one answer: 10,000 receipts
	// of a few KiB each.
	maxAnswer = 256 << 20
)

// Client submits events to one custody log. It is safe for concurrent use.
type Client struct {
	base      string
	token     string
	origin    string
	verifiers note.Verifiers
	trust     *verify.TrustPolicy
	hc        *http.Client
	batch     int
	retries   int
	maxWait   time.Duration
	sleep     func(context.Context, time.Duration) error
	// unverified is set by NewUnverified: receipts are not checked.
	unverified bool
	site       *siteSigner // WithSiteSigner (sign.go)
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client (default: one with a 2-minute
// timeout per request).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithTrust also requires every receipt's checkpoint to carry the witness
// cosignatures the trust policy asks for.
func WithTrust(p *verify.TrustPolicy) Option { return func(c *Client) { c.trust = p } }

// WithBatch sets how many events go in one request (1 to MaxBatch).
func WithBatch(n int) Option { return func(c *Client) { c.batch = n } }

// WithRetries sets how many times a batch is retried after a transient
// failure (0 means never).
func WithRetries(n int) Option { return func(c *Client) { c.retries = n } }

// WithMaxBackoff caps the wait between retries, including a server's
// Retry-After.
func WithMaxBackoff(d time.Duration) Option { return func(c *Client) { c.maxWait = d } }

// New returns a Client for the log at baseURL (its URL prefix, e.g.
// https://log.example), authenticating with token, whose receipts must
// verify with the log's key. It fails on a URL that is not http(s), an
// empty token or a nil key, or an option out of range.
func New(baseURL, token string, logKey note.Verifier, opts ...Option) (*Client, error) {
	if logKey == nil {
		return nil, errors.New("client: no log key: receipts cannot be verified without it")
	}
	c, err := build(baseURL, token, opts)
	if err != nil {
		return nil, err
	}
	c.origin, c.verifiers = logKey.Name(), note.VerifierList(logKey)
	return c, nil
}

// NewUnverified returns a Client that does NOT verify receipts: Append and
// AppendJSON check only that the log answered one receipt per event, and
// return receipts whose Checked and Logged fields are zero. It is for
// tools that pass receipts on to be verified elsewhere (custody append
// without --key) and for load generators (see Send); software that relies
// on its receipts uses New.
func NewUnverified(baseURL, token string, opts ...Option) (*Client, error) {
	c, err := build(baseURL, token, opts)
	if err != nil {
		return nil, err
	}
	c.unverified = true
	return c, nil
}

func build(baseURL, token string, opts []Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: log URL %q is not an http(s) URL with a host", baseURL)
	}
	if token == "" {
		return nil, errors.New("client: no token: appends need the bearer token the log was started with")
	}
	c := &Client{
		base:    strings.TrimRight(baseURL, "/"),
		token:   token,
		hc:      &http.Client{Timeout: 2 * time.Minute},
		batch:   DefaultBatch,
		retries: DefaultRetries,
		maxWait: DefaultMaxBackoff,
		sleep:   sleepCtx,
	}
	for _, o := range opts {
		o(c)
	}
	switch {
	case c.batch < 1 || c.batch > MaxBatch:
		return nil, fmt.Errorf("client: batch of %d events is outside 1 to %d", c.batch, MaxBatch)
	case c.retries < 0:
		return nil, fmt.Errorf("client: %d retries is negative", c.retries)
	case c.hc == nil:
		return nil, errors.New("client: nil HTTP client")
	}
	return c, nil
}

// Receipt is a verified receipt: the log's proof that Event is entry Index
// of the tree its Checkpoint signs.
type Receipt struct {
	verify.Receipt
	// Checked is the receipt's checkpoint, verified.
	Checked verify.Checkpoint `json:"-"`
	// Logged is the event as logged: the submitted one with logged set.
	Logged record.Event `json:"-"`
}

// Append submits events in batches and returns one verified receipt per
// event, in order. Each event must pass record's Validate and must not set
// Logged. On error, the receipts of the batches that succeeded are returned
// with it (the rest may or may not be logged: calling Append again with the
// same events is safe and returns their receipts). A receipt that does not
// verify is an error wrapping a *verify.VerificationError: keep its
// evidence.
func (c *Client) Append(ctx context.Context, events []record.Event) ([]Receipt, error) {
	lines := make([][]byte, len(events))
	ids := make([][32]byte, len(events))
	for i, e := range events {
		if !e.Logged.IsZero() {
			return nil, fmt.Errorf("client: event %d sets logged, which only the log may set", i)
		}
		if err := e.Validate(); err != nil {
			return nil, fmt.Errorf("client: event %d: %w", i, err)
		}
		lines[i] = e.Canonical()
		ids[i] = e.Identity()
	}
	return c.appendLines(ctx, lines, ids)
}

// AppendJSON is Append for events already encoded as JSON (one object per
// element, as record.Decode accepts): they are sent byte for byte.
func (c *Client) AppendJSON(ctx context.Context, events [][]byte) ([]Receipt, error) {
	ids := make([][32]byte, len(events))
	for i, b := range events {
		e, err := record.Decode(b)
		if err != nil {
			return nil, fmt.Errorf("client: event %d: %w", i, err)
		}
		if !e.Logged.IsZero() {
			return nil, fmt.Errorf("client: event %d sets logged, which only the log may set", i)
		}
		ids[i] = e.Identity()
	}
	return c.appendLines(ctx, events, ids)
}

func (c *Client) appendLines(ctx context.Context, lines [][]byte, ids [][32]byte) ([]Receipt, error) {
	out := make([]Receipt, 0, len(lines))
	for start := 0; start < len(lines); start += c.batch {
		end := min(start+c.batch, len(lines))
		body, atts, err := c.sign(lines[start:end], ids[start:end])
		if err != nil {
			return out, err
		}
		rs, err := c.post(ctx, body)
		if err == nil {
			err = c.check(rs, ids[start:end], start, &out)
		}
		if err == nil {
			err = checkSigned(out[len(out)-len(rs):], ids[start:end], atts, start)
		}
		if err != nil {
			return out, fmt.Errorf("appending events %d to %d: %w", start, end-1, err)
		}
	}
	return out, nil
}

// check verifies a batch's receipts and, if all verify, appends them to out.
func (c *Client) check(rs []verify.Receipt, ids [][32]byte, offset int, out *[]Receipt) error {
	if len(rs) != len(ids) {
		return fmt.Errorf("the log sent %d receipts for %d events", len(rs), len(ids))
	}
	checked := make([]Receipt, 0, len(rs))
	for i, r := range rs {
		if c.unverified {
			checked = append(checked, Receipt{Receipt: r})
			continue
		}
		cp, entry, err := verify.CheckReceipt(r, c.origin, c.verifiers, c.trust)
		if err != nil {
			return fmt.Errorf("receipt for event %d: %w", offset+i, err)
		}
		ev, err := record.DecodeEntry(entry)
		if err != nil {
			return fmt.Errorf("receipt for event %d: %w", offset+i, verify.ReceiptError(r, c.origin, "the entry is not a valid canonical event", err))
		}
		if ev.Identity() != ids[i] {
			return &verify.VerificationError{Evidence: verify.Evidence{
				Kind:          verify.EvidenceBadReceipt,
				What:          fmt.Sprintf("the receipt for event %d proves a different event", offset+i),
				Origin:        c.origin,
				NewCheckpoint: r.Checkpoint,
				Index:         &rs[i].Index,
				Time:          time.Now().UTC(),
			}}
		}
		checked = append(checked, Receipt{Receipt: r, Checked: cp, Logged: ev})
	}
	*out = append(*out, checked...)
	return nil
}

// StatusError is an answer other than 200 from the log.
type StatusError struct {
	Code       int
	Message    string        // the server's error text, at most 1 KiB
	RetryAfter time.Duration // from a Retry-After header, 0 if none
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("log answered %d %s: %s", e.Code, http.StatusText(e.Code), e.Message)
}

// Temporary reports whether sending the same request again may succeed:
// 429 and 5xx answers.
func (e *StatusError) Temporary() bool {
	return e.Code == http.StatusTooManyRequests || e.Code >= 500
}

// Send posts events (JSON lines, sent byte for byte, at most MaxBatch) in
// one request, retrying transient failures as Append does, and returns how
// many receipt lines the log answered, without decoding or verifying them.
// It is for load generators, which measure the server and must not spend
// the client's CPU on receipts: a receipt Send counts proves nothing.
// Anything that keeps or relies on receipts uses Append.
func (c *Client) Send(ctx context.Context, lines [][]byte) (int, error) {
	if len(lines) == 0 || len(lines) > MaxBatch {
		return 0, fmt.Errorf("client: %d events in one request, want 1 to %d", len(lines), MaxBatch)
	}
	return post(c, ctx, lines, func(r io.Reader) (int, error) {
		b, err := io.ReadAll(io.LimitReader(r, maxAnswer))
		if err != nil {
			return 0, fmt.Errorf("reading the receipts: %w", err)
		}
		return bytes.Count(b, []byte("\n")), nil
	})
}

// post sends one batch, retrying transient failures.
func (c *Client) post(ctx context.Context, lines [][]byte) ([]verify.Receipt, error) {
	return post(c, ctx, lines, func(r io.Reader) ([]verify.Receipt, error) { return readReceipts(r, len(lines)) })
}

// post sends one batch, retrying transient failures, and reads a 200
// answer's body with read.
func post[T any](c *Client, ctx context.Context, lines [][]byte, read func(io.Reader) (T, error)) (T, error) {
	var zero T
	body := append(bytes.Join(lines, []byte("\n")), '\n')
	backoff := 250 * time.Millisecond
	for attempt := 0; ; attempt++ {
		rs, err := postOnce(c, ctx, body, read)
		if err == nil {
			return rs, nil
		}
		var se *StatusError
		transient := ctx.Err() == nil && (!errors.As(err, &se) || se.Temporary())
		if !transient || attempt >= c.retries {
			if attempt > 0 {
				err = fmt.Errorf("after %d attempts: %w", attempt+1, err)
			}
			return zero, err
		}
		wait := backoff/2 + rand.N(backoff/2+1) // jitter
		if se != nil && se.RetryAfter > 0 {
			wait = se.RetryAfter
		}
		if err := c.sleep(ctx, min(wait, c.maxWait)); err != nil {
			return zero, err
		}
		backoff = min(2*backoff, c.maxWait)
	}
}

func postOnce[T any](c *Client, ctx context.Context, body []byte, read func(io.Reader) (T, error)) (T, error) {
	var zero T
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/v1/events", bytes.NewReader(body))
	if err != nil {
		return zero, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := c.hc.Do(req)
	if err != nil {
		return zero, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		var e struct{ Error string }
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		se := &StatusError{Code: resp.StatusCode, Message: msg}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
			se.RetryAfter = time.Duration(s) * time.Second
		}
		return zero, se
	}
	return read(resp.Body)
}

// readReceipts decodes the n receipts of an answer.
func readReceipts(body io.Reader, n int) ([]verify.Receipt, error) {
	dec := json.NewDecoder(io.LimitReader(body, maxAnswer))
	out := make([]verify.Receipt, 0, n)
	for {
		var r verify.Receipt
		if err := dec.Decode(&r); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("reading receipt %d of %d: %w", len(out)+1, n, err)
		}
		if len(out) == n {
			return nil, fmt.Errorf("the log sent more than %d receipts for %d events", n, n)
		}
		out = append(out, r)
	}
	return out, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
