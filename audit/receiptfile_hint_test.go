package audit

import (
	"errors"
	"strings"
	"testing"
)

// TestReceiptFileErrorHint: every input problem exits 3 (the file, not
// the log, is at fault) and says what to pass instead, except a file that
// could not be read, whose error says why.
func TestReceiptFileErrorHint(t *testing.T) {
	for _, tc := range []struct {
		problem ReceiptFileProblem
		hint    string
	}{
		{NoEntry, "--entry FILE"},
		{EntryUnread, "exact entry bytes"},
		{NotJSON, "as 'custody append' prints them"},
		{NotReceipt, "nothing was checked against the log"},
		{NoReceipt, "at least one receipt"},
		{ReadFailed, ""},
	} {
		var err error = &ReceiptFileError{Problem: tc.problem, Err: errors.New("bad")}
		var f interface {
			Hint() string
			ExitCode() int
		}
		if !errors.As(err, &f) || f.ExitCode() != 3 {
			t.Fatalf("problem %d: no exit code 3", tc.problem)
		}
		if h := f.Hint(); tc.hint == "" && h != "" || !strings.Contains(h, tc.hint) {
			t.Errorf("problem %d: hint %q, want one with %q", tc.problem, h, tc.hint)
		}
	}
}
