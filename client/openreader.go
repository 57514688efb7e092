package client

import (
	"fmt"
	"net/url"
)

// OpenReader is NewReader for a base URL a user typed (custody get
// --log): anything but an absolute http(s) URL is refused with an error
// that says what to pass (Hint) and custody's exit code for it, 3
// (ExitCode).
func OpenReader(base string) (*Reader, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &baseURLError{base}
	}
	return NewReader(base), nil
}

// baseURLError is OpenReader's error.
type baseURLError struct{ base string }

func (e *baseURLError) Error() string { return fmt.Sprintf("bad --log URL %q", e.base) }

// Hint says what to pass instead.
func (e *baseURLError) Hint() string {
	return "pass the server's base URL, e.g. --log http://127.0.0.1:8080"
}

// ExitCode is custody's exit code for the error: 3, a usage mistake.
func (e *baseURLError) ExitCode() int { return 3 }
