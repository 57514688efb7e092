package report

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/custodylog/custody/internal/termtext"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

// Result is what Verify found in a report whose proofs all hold.
type Result struct {
	// Origin, Size and Root are the verified checkpoint's (Root base64).
	Origin string `json:"origin"`
	Size   uint64 `json:"size"`
	Root   string `json:"root"`
	// Status is the report's status: StatusClean, StatusFindings or
	// StatusFailed (the report records that the log failed verification;
	// Failure holds the evidence).
	Status string `json:"status"`
	// Findings is the number of findings the report says the audit
	// reported; Rows of them are listed, each checked against its entry.
	Findings uint64 `json:"findings"`
	Rows     int    `json:"rows"`
	// Entries are the proved entries, in report order.
	Entries []Entry `json:"entries"`
	// Witnesses are the trust policy's witnesses that cosigned the
	// checkpoint (only with a trust policy).
	Witnesses []string `json:"witnesses,omitempty"`
	// Failure is the evidence of a failed audit, as the report holds it
	// (not re-checked: see docs/report.md).
	Failure *verify.Evidence `json:"failure,omitempty"`
}

// Entry is one entry whose inclusion proof Verify checked.
type Entry struct {
	Index  uint64 `json:"index"`
	Sample string `json:"sample,omitempty"`
	Action string `json:"action,omitempty"`
	// Hashes is the length of its inclusion proof.
	Hashes int `json:"proof_hashes"`
}

// Problem says whether an Error is about input that is not a report or a
// report that does not verify.
type Problem int

// The problems of an Error.
const (
	// NotReport: the file is not a custody report (no format element);
	// nothing was checked. custody's exit code 3.
	NotReport Problem = iota + 1
	// Invalid: the file is a report, and something in it does not verify
	// or is malformed (edited, damaged, or made for another log).
	// custody's exit code 2.
	Invalid
)

// Error is Verify's error. Its text says what did not verify.
type Error struct {
	Problem Problem
	Err     error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Hint says what to do about the error.
func (e *Error) Hint() string {
	if e.Problem == NotReport {
		return "pass a report written by 'custody audit --report FILE.html'"
	}
	return "the report was edited or damaged after it was written, or it is for another log (check --key); only the checkpoint in it is signed by the log; ask whoever gave it to you for the original, or audit the log again"
}

// ExitCode is custody's exit code for the error: 3 for NotReport, 2 else.
func (e *Error) ExitCode() int {
	if e.Problem == NotReport {
		return 3
	}
	return 2
}

// Verify checks a report written by Write, offline: the signed checkpoint
// it embeds verifies with one of verifiers for origin (and, if trust is not
// nil, carries the policy's witness quorum); the origin, size, root and key
// it shows as audited are the checkpoint's and a key of verifiers; every
// entry proof block's inclusion proof leads from its entry at its index to
// the checkpoint's root; every finding row names an entry with a proof
// block, and an entry that is an event has the row's sample; the number
// of rows is the number the report says it lists; and every proof block is
// for a listed finding. It returns what it checked, or an *Error: Problem
// NotReport when file is not a report at all, Invalid naming the first
// thing that does not verify otherwise.
//
// Verify does not prove that the findings are complete or their kinds and
// details right (they are the auditor's judgement: audit the log again),
// nor anything about the flows, timeline and counts the report shows.
func Verify(file []byte, origin string, verifiers note.Verifiers, trust *verify.TrustPolicy) (*Result, error) {
	p, err := Parse(file)
	if errors.Is(err, ErrNotReport) {
		return nil, &Error{NotReport, err}
	}
	bad := func(format string, args ...any) (*Result, error) {
		return nil, &Error{Invalid, fmt.Errorf(format, args...)}
	}
	if err != nil {
		return bad("the report's data is malformed: %v", err)
	}
	res := &Result{Status: p.Status, Entries: []Entry{}}
	if p.Status == StatusFailed {
		var ev verify.Evidence
		if err := json.Unmarshal([]byte(p.Failure), &ev); err != nil {
			return bad("the report's failure evidence is not evidence JSON: %v", err)
		}
		res.Failure = &ev
		if p.Checkpoint == nil {
			res.Origin = ev.Origin
			return res, nil
		}
	}
	cp, _, err := verify.OpenCheckpoint(p.Checkpoint, origin, verifiers)
	if err != nil {
		return bad("the report's checkpoint does not verify with the log's key: %v", err)
	}
	if trust != nil {
		tr, err := trust.Evaluate(p.Checkpoint, cp, time.Now())
		if err != nil {
			return bad("the report's checkpoint: %v", err)
		}
		res.Witnesses = tr.Witnesses
	}
	res.Origin, res.Size, res.Root = cp.Origin, cp.Size, base64.StdEncoding.EncodeToString(cp.Root[:])
	if p.Status == StatusFailed {
		return res, nil
	}
	if p.Origin != cp.Origin || p.Size != strconv.FormatUint(cp.Size, 10) || p.Root != res.Root {
		return bad("the report shows origin %q, size %q and root %q as audited, but its signed checkpoint is origin %q, size %d, root %s", clip(p.Origin), clip(p.Size), clip(p.Root), cp.Origin, cp.Size, res.Root)
	}
	if !keyIn(p.Key, verifiers) {
		return bad("the report shows %q as the log's key, which is not the key it was verified with", clip(p.Key))
	}
	if res.Findings, err = parseDecimal(p.Findings); err != nil {
		return bad("the report's number of findings %q: %v", clip(p.Findings), err)
	}
	proved, err := parseDecimal(p.Proved)
	if err != nil || proved != uint64(len(p.Rows)) || proved > res.Findings {
		return bad("the report says it lists %q of its %d findings, but it has %d finding rows", clip(p.Proved), res.Findings, len(p.Rows))
	}
	if (res.Findings == 0) != (p.Status == StatusClean) {
		return bad("the report's status %q disagrees with its %d findings", p.Status, res.Findings)
	}
	events := map[uint64]*record.Event{}
	for _, pr := range p.Proofs {
		if _, dup := events[pr.Index]; dup {
			return bad("the report holds two proofs of entry %d", pr.Index)
		}
		if pr.Index >= cp.Size {
			return bad("the report holds a proof of entry %d, outside the signed tree of size %d", pr.Index, cp.Size)
		}
		if err := verify.CheckInclusion(pr.Index, cp.Size, verify.LeafHash(pr.Entry), pr.Hashes, cp.Root); err != nil {
			return bad("the inclusion proof of entry %d does not lead to the root of the signed tree of size %d: the entry or its proof was changed", pr.Index, cp.Size)
		}
		e := Entry{Index: pr.Index, Hashes: len(pr.Hashes)}
		var ev *record.Event
		if record.KindOf(pr.Entry) != record.EntryAttestation {
			dec, err := record.DecodeEntry(pr.Entry)
			if err != nil {
				return bad("entry %d, proved in the log, is not a valid canonical event: %v", pr.Index, err)
			}
			ev = &dec
			e.Sample, e.Action = dec.Sample, string(dec.Action)
		}
		events[pr.Index] = ev
		res.Entries = append(res.Entries, e)
	}
	used := map[uint64]bool{}
	for i, row := range p.Rows {
		ev, ok := events[row.Index]
		if !ok {
			return bad("finding row %d (entry %d, %s %s) has no proof of its entry in the report", i+1, row.Index, clip(row.Sample), clip(row.Kind))
		}
		if ev != nil && ev.Sample != row.Sample {
			return bad("finding row %d names sample %q at entry %d, but the proved entry %d is of sample %q", i+1, clip(row.Sample), row.Index, row.Index, ev.Sample)
		}
		used[row.Index] = true
	}
	for _, pr := range p.Proofs {
		if !used[pr.Index] {
			return bad("the report holds a proof of entry %d, which no finding row names", pr.Index)
		}
	}
	res.Rows = len(p.Rows)
	return res, nil
}

// keyIn reports whether vkey is the verifier key string of one of vs.
func keyIn(vkey string, vs note.Verifiers) bool {
	v, err := verify.NewVerifier(vkey)
	if err != nil {
		return false
	}
	got, err := vs.Verifier(v.Name(), v.KeyHash())
	if err != nil {
		return false
	}
	// The key hash is a hash of the name and the public key: the same
	// name and hash are the same key.
	return got.Name() == v.Name() && got.KeyHash() == v.KeyHash()
}

// String is the text WriteResult writes.
func (res *Result) String() string {
	var b strings.Builder
	WriteResult(&b, res)
	return b.String()
}

// WriteResult writes res as `custody verify report` prints it for people.
// Text from the report (origin, samples, actions) is written with terminal
// control characters escaped.
func WriteResult(w io.Writer, res *Result) {
	if res.Status == StatusFailed {
		fmt.Fprintf(w, "report of a FAILED audit of log %s: ", termtext.Clean(res.Origin))
		if res.Failure != nil {
			fmt.Fprintf(w, "the log failed verification (%s): %s\n", termtext.Clean(res.Failure.Kind), termtext.Clean(res.Failure.What))
		} else {
			fmt.Fprintln(w)
		}
		if res.Size > 0 {
			fmt.Fprintf(w, "its checkpoint of size %d is validly signed (root %s)\n", res.Size, res.Root)
		}
		fmt.Fprintln(w, "the evidence in the report is shown, not re-checked: see docs/report.md")
		return
	}
	fmt.Fprintf(w, "valid checkpoint: origin %s, size %d, root %s\n", termtext.Clean(res.Origin), res.Size, res.Root)
	if len(res.Witnesses) > 0 {
		fmt.Fprintf(w, "cosigned by: %s\n", termtext.Clean(strings.Join(res.Witnesses, ", ")))
	}
	for _, e := range res.Entries {
		what := "a site attestation"
		if e.Sample != "" {
			what = termtext.Clean(e.Sample) + " " + termtext.Clean(e.Action)
		}
		fmt.Fprintf(w, "valid: entry %d (%s) is in the tree (proof of %d hashes)\n", e.Index, what, e.Hashes)
	}
	switch {
	case res.Findings == 0:
		fmt.Fprintln(w, "the report records a clean audit: no findings")
	case uint64(res.Rows) == res.Findings:
		fmt.Fprintf(w, "all %d findings listed name their proved entries\n", res.Findings)
	default:
		fmt.Fprintf(w, "%d of %d findings listed, each naming its proved entry (the report lists no more)\n", res.Rows, res.Findings)
	}
}
