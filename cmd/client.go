package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/custodylog/custody/httpapi"
	"github.com/custodylog/custody/verify"
)

// client talks to a custody server's HTTP API.
type client struct {
	base  string // without trailing slash
	token string
	http  *http.Client
}

func newClient(base, token string) (*client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageError("pass the server's base URL, e.g. --log http://127.0.0.1:8080", "bad --log URL %q", base)
	}
	return &client{
		base:  strings.TrimSuffix(base, "/"),
		token: token,
		http:  &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
	}, nil
}

// readToken returns the first token of a token file, or $CUSTODY_TOKEN.
func readToken(path string) (string, error) {
	if path == "" {
		if t := os.Getenv("CUSTODY_TOKEN"); t != "" {
			return t, nil
		}
		return "", usageError("pass --token-file F (the file given to 'custody serve') or set CUSTODY_TOKEN", "no token to authenticate with")
	}
	ts, err := loadTokens(path)
	if err != nil {
		return "", err
	}
	return ts[0], nil
}

// loadTokens reads a token file with httpapi.LoadTokens, adding the fix to the
// error: 'chmod 600 FILE' for a file group or others may access, else how
// to write a token file.
func loadTokens(path string) ([]string, error) {
	ts, err := httpapi.LoadTokens(path)
	var me *httpapi.TokenFileModeError
	switch {
	case errors.As(err, &me):
		return nil, withHint(err, "chmod 600 %s", path)
	case err != nil:
		return nil, withHint(err, "write one random token per line, readable only by you, e.g. '(umask 077; openssl rand -hex 32 > %s)'", path)
	}
	return ts, nil
}

// maxErrorText bounds how much of a server's error text an error quotes.
const maxErrorText = 1024

// httpError is a non-2xx answer from the server.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return fmt.Sprintf("server answered %d: %s", e.code, e.msg) }

// retryable reports whether a request may be sent again as is.
func retryable(err error) bool {
	var he *httpError
	if errors.As(err, &he) {
		return he.code == http.StatusServiceUnavailable || he.code == http.StatusTooManyRequests || he.code >= 500
	}
	return !errors.Is(err, context.Canceled)
}

func (c *client) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if c.token != "" && method == http.MethodPost {
		req.Header.Set("Authorization", "Bearer "+c.token)
		req.Header.Set("Content-Type", "application/x-ndjson")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("reading answer to %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Error string }
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		if len(e.Error) > maxErrorText {
			// The server's text is quoted in an error: not all of it.
			e.Error = strings.ToValidUTF8(e.Error[:maxErrorText], "") + fmt.Sprintf("… (%d bytes in all)", len(e.Error))
		}
		return nil, &httpError{code: resp.StatusCode, msg: e.Error}
	}
	return b, nil
}

// postEvents sends JSON lines and returns the receipts, retrying transient
// failures (appends are idempotent, so a retry never duplicates an event).
func (c *client) postEvents(ctx context.Context, lines [][]byte, retries int) ([]verify.Receipt, error) {
	b, err := c.postEventsRaw(ctx, lines, retries)
	if err != nil {
		return nil, err
	}
	return parseReceipts(b, len(lines))
}

// postEventsRaw is postEvents without decoding: the JSON lines as sent.
func (c *client) postEventsRaw(ctx context.Context, lines [][]byte, retries int) ([]byte, error) {
	body := bytes.Join(lines, []byte("\n"))
	body = append(body, '\n')
	delay := 250 * time.Millisecond
	for attempt := 0; ; attempt++ {
		b, err := c.do(ctx, http.MethodPost, "/v1/events", body)
		if err == nil {
			return b, nil
		}
		if !retryable(err) || attempt >= retries {
			return nil, err
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		delay = min(2*delay, 10*time.Second)
	}
}

func parseReceipts(b []byte, want int) ([]verify.Receipt, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	var out []verify.Receipt
	for {
		var r verify.Receipt
		if err := dec.Decode(&r); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("server sent a malformed receipt: %w", err)
		}
		out = append(out, r)
	}
	if len(out) != want {
		return nil, fmt.Errorf("server sent %d receipts for %d events", len(out), want)
	}
	return out, nil
}

func (c *client) getJSON(ctx context.Context, path string, v any) error {
	b, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }
