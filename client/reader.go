package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// MaxErrorText bounds how much of a server's error text a Reader's
// HTTPError quotes, in bytes.
const MaxErrorText = 1024

// Reader reads a custody server's HTTP API as the server answers it, with
// no verification: for views (custody get) and tools, never for evidence
// (receipts and audits verify what they read).
type Reader struct {
	base string // without trailing slash
	hc   *http.Client
}

// NewReader returns a Reader of the server at base, an http(s) base URL
// (a trailing slash is dropped; the caller checks its form), with a
// two-minute timeout per request.
func NewReader(base string) *Reader {
	return &Reader{base: strings.TrimSuffix(base, "/"), hc: &http.Client{Timeout: 2 * time.Minute}}
}

// HTTPError is an answer other than 2xx to a Reader: the status code and
// the server's error text (its JSON "error" field, else the body),
// truncated to MaxErrorText bytes of valid UTF-8.
type HTTPError struct {
	Code    int
	Message string
}

func (e *HTTPError) Error() string { return fmt.Sprintf("server answered %d: %s", e.Code, e.Message) }

// Get returns the body (at most 256 MiB) of a 2xx answer to a GET of path
// (with its query), or an *HTTPError.
func (r *Reader) Get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("reading answer to GET %s: %w", path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Error string }
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		if len(e.Error) > MaxErrorText {
			// The server's text is quoted in an error: not all of it.
			e.Error = strings.ToValidUTF8(e.Error[:MaxErrorText], "") + fmt.Sprintf("… (%d bytes in all)", len(e.Error))
		}
		return nil, &HTTPError{Code: resp.StatusCode, Message: e.Error}
	}
	return b, nil
}

// GetJSON decodes the body of Get(ctx, path) into v.
func (r *Reader) GetJSON(ctx context.Context, path string, v any) error {
	b, err := r.Get(ctx, path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
