package client

import (
	"errors"

	"github.com/custodylog/custody/verify"
)

// Hint says what to do about a line AppendStream could not read, in the
// words of `custody append`: fix it and run again ("" when the input
// itself could not be read).
func (e *InputError) Hint() string {
	if e.Line > 0 {
		return "nothing after the events before this line was sent; fix the line and run again"
	}
	return ""
}

// ExitCode is custody's exit code for the error: 3, the input is at fault.
func (e *InputError) ExitCode() int { return 3 }

// BadReceipt reports whether the batch failed because the log handed out
// a receipt that does not verify (a *verify.VerificationError or
// verify.ErrMalformedReceipt in the chain): evidence to keep, not a
// failure to retry.
func (e *BatchError) BadReceipt() bool {
	_, bad := verify.IsVerificationError(e.Err)
	return bad || errors.Is(e.Err, verify.ErrMalformedReceipt)
}

// Hint says what to do about the error: keep a bad receipt as evidence,
// else fix the input or the server and append again (appending is
// idempotent).
func (e *BatchError) Hint() string {
	if e.BadReceipt() {
		return "the server handed out a bad receipt: keep it as evidence"
	}
	return "fix the input or the server and run the same command again: events already logged are not added twice"
}

// ExitCode is custody's exit code for the error: 2 for a bad receipt
// (the log failed verification), else 1.
func (e *BatchError) ExitCode() int {
	if e.BadReceipt() {
		return 2
	}
	return 1
}
