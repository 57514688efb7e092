package cmd

import (
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
)

// apiClient reads a custody server's HTTP API (custody get). Writes go
// through the client package.
type apiClient struct {
	base string // without trailing slash
	http *http.Client
}

func newAPIClient(base string) (*apiClient, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageError("pass the server's base URL, e.g. --log http://127.0.0.1:8080", "bad --log URL %q", base)
	}
	return &apiClient{base: strings.TrimSuffix(base, "/"), http: &http.Client{Timeout: 2 * time.Minute}}, nil
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

// get returns the body of a GET of path.
func (c *apiClient) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("reading answer to GET %s: %w", path, err)
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

func (c *apiClient) getJSON(ctx context.Context, path string, v any) error {
	b, err := c.get(ctx, path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }
