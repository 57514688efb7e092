package client

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/custodylog/custody/verify"
)

// TestErrorHints: custody append's exit codes and fixes come from the
// errors: a bad line exits 3 and says nothing after it was sent; a batch
// whose receipt does not verify exits 2 (evidence); any other failed batch
// exits 1 and says re-running is safe.
func TestErrorHints(t *testing.T) {
	bad := &verify.VerificationError{Evidence: verify.Evidence{Kind: verify.EvidenceBadReceipt, Origin: "log.example"}}
	for _, tc := range []struct {
		name string
		err  error
		exit int
		hint string
	}{
		{"bad line", &InputError{Line: 4, Err: errors.New("line 4: bad")}, 3, "before this line was sent"},
		{"unreadable input", &InputError{Err: errors.New("reading: too long")}, 3, ""},
		{"receipt fails verification", &BatchError{1, 2, fmt.Errorf("appending events 1 to 2: %w", bad)}, 2, "keep it as evidence"},
		{"malformed receipt", &BatchError{1, 2, fmt.Errorf("receipt 0: %w", verify.ErrMalformedReceipt)}, 2, "keep it as evidence"},
		{"server refused", &BatchError{1, 2, &HTTPError{Code: 400, Message: "no"}}, 1, "events already logged are not added twice"},
	} {
		var f interface {
			Hint() string
			ExitCode() int
		}
		if !errors.As(fmt.Errorf("append: %w", tc.err), &f) {
			t.Fatalf("%s: no Hint and ExitCode", tc.name)
		}
		if f.ExitCode() != tc.exit || tc.hint == "" && f.Hint() != "" || !strings.Contains(f.Hint(), tc.hint) {
			t.Errorf("%s: exit %d, hint %q; want %d and %q", tc.name, f.ExitCode(), f.Hint(), tc.exit, tc.hint)
		}
	}
}
