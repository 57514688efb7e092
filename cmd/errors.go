package cmd

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/custodylog/custody/client"
	"github.com/custodylog/custody/httpapi"
	"github.com/custodylog/custody/verify"
)

// Exit codes shared by every command (verify and audit refine 1 and 2).
const (
	exitOK      = 0
	exitFailure = 1
	exitInvalid = 2
	exitUsageIO = 3
)

// cliError carries an exit code and an optional hint for the user.
type cliError struct {
	err  error
	hint string
	code int
}

func (e *cliError) Error() string { return e.err.Error() }
func (e *cliError) Unwrap() error { return e.err }

// fixer is an error of a library that says what to do about it (Hint, in
// the words of custody's flags) and custody's exit code for it: 1 a
// failure, 2 the data failed verification, 3 usage or I/O. Main prints the
// hint of the first fixer in an error's chain that is not a *cliError.
type fixer interface {
	Hint() string
	ExitCode() int
}

// withHint wraps err with a hint line printed after it.
func withHint(err error, format string, args ...any) error {
	return &cliError{err: err, hint: fmt.Sprintf(format, args...), code: exitFailure}
}

// usageError is a usage mistake (exit 3) with a hint.
func usageError(hint string, format string, args ...any) error {
	return &cliError{err: fmt.Errorf(format, args...), hint: hint, code: exitUsageIO}
}

// ioError is an I/O error (exit 3).
func ioError(err error) error { return &cliError{err: err, code: exitUsageIO} }

// usageErr wraps an I/O or usage error (exit 3).
func usageErr(err error, hint string) error {
	return &cliError{err: err, hint: hint, code: exitUsageIO}
}

// evidenceHints are the fixes of verification failures of some kinds.
var evidenceHints = map[string]string{
	verify.EvidenceBadSignature: "first make sure --key is the log's real key and the checkpoint file is unaltered; if so, the log signed badly",
	verify.EvidenceBadReceipt:   "the receipt was altered, damaged or is for another log; only its checkpoint is signed by the log",
	verify.EvidenceRollback:     "the log (or a stale mirror or cache in front of it) served an older tree than one it signed before",
}

// checkErr turns a verification failure into exit 2 (writing the evidence
// to evidenceDir, if not empty) and anything else without its own fix into
// exit 3.
func (e *env) checkErr(err error, evidenceDir string) error {
	var ce *cliError
	var f fixer
	if err == nil || errors.As(err, &ce) || errors.As(err, &f) && f.Hint() != "" {
		return err
	}
	if ve, ok := verify.IsVerificationError(err); ok {
		hint, ok := evidenceHints[ve.Evidence.Kind]
		if !ok {
			hint = "the log failed verification: keep the evidence and report it"
		}
		if evidenceDir != "" {
			if p, werr := verify.WriteEvidence(evidenceDir, ve.Evidence); werr == nil {
				fmt.Fprintf(e.stderr, "custody: evidence written to %s\n", p)
				hint += "; the evidence holds the signed data: publish or send " + p
			} else {
				fmt.Fprintf(e.stderr, "custody: could not write evidence: %v\n", werr)
			}
		}
		return &cliError{err: err, hint: hint, code: exitInvalid}
	}
	return &cliError{err: err, code: exitUsageIO, hint: "this is a network, disk or input problem, not a verdict on the log; fix it and run again"}
}

// newAPIClient returns a reader of the server at base (custody get),
// refusing anything but an http(s) base URL. Writes go through the client
// package.
var newAPIClient = client.OpenReader

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

// loadTokens reads a token file (its errors say what to do).
var loadTokens = httpapi.LoadTokens

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }
