package cmd

import (
	"errors"
	"net/url"
	"os"
	"strconv"

	"github.com/custodylog/custody/client"
	"github.com/custodylog/custody/httpapi"
)

// newAPIClient returns a reader of the server at base (custody get),
// refusing anything but an http(s) base URL. Writes go through the client
// package.
func newAPIClient(base string) (*client.Reader, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageError("pass the server's base URL, e.g. --log http://127.0.0.1:8080", "bad --log URL %q", base)
	}
	return client.NewReader(base), nil
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

// loadTokens reads a token file with httpapi.LoadTokens, adding the fix to
// the error (tokenErr).
func loadTokens(path string) ([]string, error) {
	ts, err := httpapi.LoadTokens(path)
	return ts, tokenErr(err, path)
}

// tokenErr adds the fix to an error of httpapi.LoadTokens reading path:
// 'chmod 600 FILE' for a file group or others may access, else how to
// write a token file.
func tokenErr(err error, path string) error {
	var me *httpapi.TokenFileModeError
	switch {
	case errors.As(err, &me):
		return withHint(err, "chmod 600 %s", path)
	case err != nil:
		return withHint(err, "write one random token per line, readable only by you, e.g. '(umask 077; openssl rand -hex 32 > %s)'", path)
	}
	return nil
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }
