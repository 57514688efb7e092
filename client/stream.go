package client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/custodylog/custody/record"
)

// InputError is AppendStream's error when its input is not events: a line
// that is not a valid event (Line is its number, from 1; nothing from it
// on was sent), or a failure to read the input (Line is 0). Its text names
// the input and the line.
type InputError struct {
	Line int
	Err  error
}

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// BatchError is AppendStream's error when the log did not take a batch or
// its receipts did not verify: First and Last number the batch's events in
// the whole input, from 1. Its text names them and the input; a refusal of
// the log is quoted as it was sent (an *HTTPError). It wraps a
// *verify.VerificationError (or verify.ErrMalformedReceipt) when a receipt
// failed.
type BatchError struct {
	First, Last int
	Err         error
}

func (e *BatchError) Error() string { return e.Err.Error() }
func (e *BatchError) Unwrap() error { return e.Err }

// AppendStream reads events from r as JSON lines (blank lines skipped,
// each line checked with record.Decode before anything of its batch is
// sent), appends them with AppendJSON a batch (WithBatch) at a time, and
// calls emit with each batch's receipts, in input order, before reading
// on. name names r in errors. It returns the number of events appended.
// On error, the events before the failing batch are appended and emitted;
// appending is idempotent, so running it again on the same input is safe.
// Errors are an *InputError, a *BatchError or emit's.
func (c *Client) AppendStream(ctx context.Context, r io.Reader, name string, emit func([]Receipt) error) (int, error) {
	var lines [][]byte
	var lineNo, sent int
	flush := func() error {
		if len(lines) == 0 {
			return nil
		}
		rs, err := c.AppendJSON(ctx, lines)
		if err != nil {
			// AppendJSON numbers the events of this call from 0; a
			// refusal is quoted as the server sent it.
			cause := errors.Unwrap(err)
			if se := (*StatusError)(nil); errors.As(err, &se) {
				cause = &HTTPError{Code: se.Code, Message: se.Message}
			}
			return &BatchError{First: sent + 1, Last: sent + len(lines),
				Err: fmt.Errorf("appending events %d to %d of %s: %w", sent+1, sent+len(lines), name, cause)}
		}
		sent += len(lines)
		lines = lines[:0]
		return emit(rs)
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), record.MaxEventSize+1)
	for sc.Scan() {
		lineNo++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		if _, err := record.Decode(b); err != nil {
			return sent, &InputError{Line: lineNo, Err: fmt.Errorf("%s line %d: %w", name, lineNo, err)}
		}
		lines = append(lines, bytes.Clone(b))
		if len(lines) == c.batch {
			if err := flush(); err != nil {
				return sent, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		if err == bufio.ErrTooLong {
			err = fmt.Errorf("line %d is longer than %d bytes", lineNo+1, record.MaxEventSize)
		}
		return sent, &InputError{Err: fmt.Errorf("reading %s: %w", name, err)}
	}
	return sent, flush()
}
