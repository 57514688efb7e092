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

	"github.com/custodylog/custody/internal/termprogress"
	"github.com/custodylog/custody/internal/termtext"
	"github.com/spf13/cobra"
)

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
	var f fixer
	if !errors.As(err, &ce) && errors.As(err, &f) && (f.Hint() != "" || f.ExitCode() != exitFailure) {
		ce = &cliError{err: err, hint: f.Hint(), code: f.ExitCode()}
	}
	if ce != nil {
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

// print prints v as JSON (printJSON) if asJSON, else as text (a report's
// WriteText).
func (e *env) print(asJSON bool, v any, text func(io.Writer)) {
	if asJSON {
		printJSON(e.stdout, v)
	} else {
		text(e.stdout)
	}
}

// printJSON prints v as indented JSON, with every terminal control
// character escaped (termtext.CleanJSON): the values come from the log.
func printJSON(w interface{ Write([]byte) (int, error) }, v any) {
	b, _ := json.MarshalIndent(v, "", "  ")
	w.Write(append(termtext.CleanJSON(b), '\n'))
}

// progress is a progress bar over entries on stderr (copy, prefill,
// audit, mirror, demo): nothing when stderr is not a terminal.
type progress struct{ *termprogress.Bar }

func (e *env) progress(what string) progress { return progress{termprogress.New(e.stderr, what)} }

// set shows done of total entries (the libraries' Progress callbacks).
func (p progress) set(done, total uint64) { p.Set(done, total) }
func (p progress) finish()                { p.Finish() }
