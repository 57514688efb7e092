package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

// ValidReceipt is a receipt CheckReceiptFile found valid: its entry's
// index, the size of the checkpoint it is proved against, and the event's
// sample and action.
type ValidReceipt struct {
	Index  uint64 `json:"index"`
	Size   uint64 `json:"size"`
	Sample string `json:"sample"`
	Action string `json:"action"`
}

// ReceiptFileProblem says what is wrong with a receipts file.
type ReceiptFileProblem int

// The problems of a ReceiptFileError.
const (
	NoEntry     ReceiptFileProblem = iota + 1 // a tlog-proof without the entry's bytes
	EntryUnread                               // the entry's bytes could not be read
	NotJSON                                   // a line is not JSON
	NotReceipt                                // a line is JSON but not a receipt (verify.ErrMalformedReceipt)
	NoReceipt                                 // no receipt in the file
	ReadFailed                                // the file could not be read (a line too long)
)

// ReceiptFileError is an error of CheckReceiptFile about its input, not
// the log: nothing was checked against the log when it was found. Its text
// is Err's.
type ReceiptFileError struct {
	Problem ReceiptFileProblem
	Err     error
}

func (e *ReceiptFileError) Error() string { return e.Err.Error() }
func (e *ReceiptFileError) Unwrap() error { return e.Err }

// CheckReceiptFile checks every receipt in data, the file name, with
// CheckReceipt: data holds receipts as `custody append` prints them (one
// JSON object a line; blank lines are skipped), or is a bare
// c2sp.org/tlog-proof, checked with CheckTLogProof against the entry bytes
// that entry returns (a final newline dropped; entry is only called then).
// It returns a ValidReceipt for every receipt, in file order, or stops at
// the first error: a *ReceiptFileError for bad input, else the failed
// receipt's *verify.VerificationError (for a receipts line, wrapped with
// its number and index).
func CheckReceiptFile(name string, data []byte, entry func() ([]byte, error), origin string, vs note.Verifiers, tp *verify.TrustPolicy) ([]ValidReceipt, error) {
	if bytes.HasPrefix(data, []byte(verify.TLogProofHeader+"\n")) {
		if entry == nil {
			return nil, &ReceiptFileError{NoEntry, errors.New("a tlog-proof holds no entry: its bytes are needed")}
		}
		e, err := entry()
		if err != nil {
			return nil, &ReceiptFileError{EntryUnread, err}
		}
		cp, index, ev, err := CheckTLogProof(data, bytes.TrimSuffix(e, []byte("\n")), origin, vs, tp)
		if err != nil {
			return nil, err
		}
		return []ValidReceipt{{index, cp.Size, ev.Sample, string(ev.Action)}}, nil
	}
	var valid []ValidReceipt
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var r verify.Receipt
		if err := json.Unmarshal(line, &r); err != nil {
			return nil, &ReceiptFileError{NotJSON, fmt.Errorf("%s: receipt %d is not JSON: %v", name, n, err)}
		}
		cp, ev, err := CheckReceipt(r, origin, vs, tp)
		if errors.Is(err, verify.ErrMalformedReceipt) {
			return nil, &ReceiptFileError{NotReceipt, fmt.Errorf("%s: receipt %d: %w", name, n, err)}
		}
		if err != nil {
			return nil, fmt.Errorf("receipt %d (index %d): %w", n, r.Index, err)
		}
		valid = append(valid, ValidReceipt{r.Index, cp.Size, ev.Sample, string(ev.Action)})
		n++
	}
	if err := sc.Err(); err != nil {
		return nil, &ReceiptFileError{ReadFailed, err}
	}
	if len(valid) == 0 {
		return nil, &ReceiptFileError{NoReceipt, fmt.Errorf("%s holds no receipt", name)}
	}
	return valid, nil
}
