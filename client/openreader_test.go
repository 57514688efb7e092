package client

import (
	"errors"
	"strings"
	"testing"
)

// TestOpenReader: http and https base URLs give a Reader; anything else
// is refused, quoting what was given, with the fix and exit 3.
func TestOpenReader(t *testing.T) {
	for _, ok := range []string{"http://127.0.0.1:8080", "https://log.example/custody/"} {
		if r, err := OpenReader(ok); r == nil || err != nil {
			t.Errorf("OpenReader(%q) = %v, %v", ok, r, err)
		}
	}
	for _, bad := range []string{"", "127.0.0.1:8080", "ftp://log.example", "http://", "./mirror", "http://%zz"} {
		r, err := OpenReader(bad)
		var f interface {
			Hint() string
			ExitCode() int
		}
		if r != nil || !errors.As(err, &f) || f.ExitCode() != 3 || !strings.Contains(f.Hint(), "--log http://") || !strings.Contains(err.Error(), "bad --log URL") {
			t.Errorf("OpenReader(%q) = %v, %v; want a refusal with the fix and exit 3", bad, r, err)
		}
	}
}
