package cmd

import (
	"errors"
	"fmt"
	"path/filepath"

	logserver "github.com/custodylog/custody/server"
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
// to evidenceDir, if not empty) and anything else into exit 3.
func (e *env) checkErr(err error, evidenceDir string) error {
	if err == nil {
		return nil
	}
	var ce *cliError
	if errors.As(err, &ce) {
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

// listenErr adds the fix to an error of a server that could not listen on
// addr.
func listenErr(err error, addr string) error {
	if le := (*logserver.ListenError)(nil); errors.As(err, &le) {
		return withHint(le.Err, "is another server on %s? pick another --listen address", addr)
	}
	return err
}

// serveFixes are the exit codes and fixes of server.Open's errors that
// need nothing but their kind; serveErr explains the others.
var serveFixes = map[logserver.ErrorKind]struct {
	code int
	hint string
}{
	logserver.KindQuorum:            {exitUsageIO, "pass how many witnesses must cosign, e.g. --quorum 2"},
	logserver.KindTrustConflict:     {exitUsageIO, "the policy file names the witnesses and the quorum"},
	logserver.KindWitness:           {exitUsageIO, "use --witness URL=VKEY, e.g. --witness https://witness.example/=./wit.pub"},
	logserver.KindWitnessURL:        {exitUsageIO, "the witness URL must be an absolute http(s) URL"},
	logserver.KindQuorumTooLarge:    {exitUsageIO, "pass at most as many as there are --witness flags"},
	logserver.KindPolicy:            {exitFailure, "see testdata/policy.yaml for the format"},
	logserver.KindMaxWrites:         {exitUsageIO, "pass a positive number, e.g. --max-concurrent-writes 64"},
	logserver.KindMaxWritesPerToken: {exitUsageIO, "pass a positive number, e.g. --max-concurrent-writes-per-token 16, or 0 for a quarter of --max-concurrent-writes"},
	logserver.KindBodyTimeout:       {exitUsageIO, "pass a positive duration, e.g. --body-timeout 10s"},
	logserver.KindTokenRate:         {exitUsageIO, "pass --token-rate >= 0 events per second and --token-burst >= 0 events"},
}

// serverErr returns the kind and the cause of a *server.Error in err, or 0
// and err.
func serverErr(err error) (logserver.ErrorKind, error) {
	if se := (*logserver.Error)(nil); errors.As(err, &se) {
		return se.Kind, se.Err
	}
	return 0, err
}

// serveErr adds the exit code and the fix to an error of server.Open.
func serveErr(err error, o logserver.Options) error {
	kind, cause := serverErr(err)
	if f, ok := serveFixes[kind]; ok {
		return &cliError{err: err, hint: f.hint, code: f.code}
	}
	switch {
	case kind == logserver.KindNoLog:
		return withHint(err, "create one with 'custody init --dir %s --origin NAME'", o.Dir)
	case kind == logserver.KindSigner:
		return keyErr(cause, filepath.Join(o.Dir, logserver.KeyFile), "create one with 'custody keygen' or 'custody init'")
	case kind == logserver.KindTrust && errors.Is(err, verify.ErrPrivateKey):
		return withHint(err, "%s", keyHint("a trust policy", err, ""))
	case kind == logserver.KindWitnessKey:
		return usageErr(err, keyHint("--witness URL=KEY", err, "KEY is the witness's cosignature verifier key (type 0x04) or a file holding it, e.g. wit.pub"))
	case kind == logserver.KindTokens:
		return tokenErr(cause, o.TokenFile)
	case kind == logserver.KindHold:
		return storeErr(cause, o.DSN)
	}
	return err
}
