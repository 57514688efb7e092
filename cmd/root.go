// Package cmd holds the custody command line: one file per command family.
// Libraries take Config structs; flags, files and exit codes live here.
package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/custodylog/custody/internal/termtext"
	"github.com/custodylog/custody/verify"
	"github.com/spf13/cobra"
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

type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// Main runs the custody command line and returns the process exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "custody",
		Short: "A verifiable chain-of-custody log for file samples",
		Long: `custody records every handling of every sample (collected, transferred,
stored, analysed, released, deleted) with the data centre where it happened,
in an append-only Merkle tree with signed checkpoints (C2SP tlog-tiles,
tlog-checkpoint). Anyone can verify it without trusting the server.

Operators: keygen, init, serve. Submitters: append. Readers: get.
Auditors and regulators: verify, audit, monitor (they trust nothing the
server says: every proof is recomputed here from tiles and entries).
See docs/ for the architecture, API and guides.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetArgs(args)
	root.AddCommand(
		e.keygenCmd(),
		e.initCmd(),
		e.serveCmd(),
		e.appendCmd(),
		e.signCmd(),
		e.getCmd(),
		e.benchCmd(),
		e.prefillCmd(),
		e.verifyCmd(),
		e.auditCmd(),
		e.monitorCmd(),
		e.witnessCmd(),
		e.fsckCmd(),
		e.mirrorCmd(),
		e.copyCmd(),
		e.demoCmd(),
	)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "custody: error: %s\n", cleanMessage(err.Error()))
	var ce *cliError
	if errors.As(err, &ce) {
		if ce.hint != "" {
			fmt.Fprintf(stderr, "custody: hint: %s\n", cleanMessage(ce.hint))
		}
		return ce.code
	}
	if isUsage(err) {
		fmt.Fprintf(stderr, "custody: hint: run 'custody %s --help'\n", strings.Join(commandPath(root, args), " "))
		return exitUsageIO
	}
	return exitFailure
}

// cleanMessage makes an error or hint safe to print: errors carry text from
// servers, log directories and files (reason phrases, error bodies, event
// fields), so every terminal control character is escaped (termtext) and
// each line after the first is indented, so that nothing in an error can
// pass for another "custody: …" line.
func cleanMessage(s string) string {
	return strings.ReplaceAll(termtext.CleanLines(s), "\n", "\n  ")
}

// isUsage reports whether err came from cobra's flag or argument parsing.
func isUsage(err error) bool {
	s := err.Error()
	for _, p := range []string{"unknown flag", "unknown command", "unknown shorthand", "flag needs an argument", "invalid argument", "accepts ", "requires ", "required flag"} {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

func commandPath(root *cobra.Command, args []string) []string {
	c, _, err := root.Find(args)
	if err != nil || c == root {
		return nil
	}
	return strings.Fields(strings.TrimPrefix(c.CommandPath(), "custody"))
}

// usageErr wraps an I/O or usage error (exit 3).
func usageErr(err error, hint string) error {
	return &cliError{err: err, hint: hint, code: exitUsageIO}
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
		hint := "the log failed verification: keep the evidence and report it"
		switch ve.Evidence.Kind {
		case verify.EvidenceBadSignature:
			hint = "first make sure --key is the log's real key and the checkpoint file is unaltered; if so, the log signed badly"
		case verify.EvidenceBadReceipt:
			hint = "the receipt was altered, damaged or is for another log; only its checkpoint is signed by the log"
		case verify.EvidenceRollback:
			hint = "the log (or a stale mirror or cache in front of it) served an older tree than one it signed before"
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

// emit prints v as JSON (printJSON) if asJSON, else the text of format
// and args.
func (e *env) emit(asJSON bool, v any, format string, args ...any) error {
	if asJSON {
		printJSON(e.stdout, v)
	} else {
		fmt.Fprintf(e.stdout, format, args...)
	}
	return nil
}

// printJSON prints v as indented JSON, with every terminal control
// character escaped (termtext.CleanJSON): the values come from the log.
func printJSON(w interface{ Write([]byte) (int, error) }, v any) {
	b, _ := json.MarshalIndent(v, "", "  ")
	w.Write(append(termtext.CleanJSON(b), '\n'))
}
