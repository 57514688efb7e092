package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/custodylog/custody/verify"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

type auditOptions struct {
	trust              trustOptions
	log, policy, state string
	noState, asJSON    bool
	full               bool
}

func (o *auditOptions) flags(c *cobra.Command) {
	o.trust.flags(c)
	c.Flags().StringVar(&o.log, "log", "", "the log: base URL or a directory with the tlog-tiles layout")
	c.Flags().StringVar(&o.policy, "policy", "", "the routing policy (YAML) to check every event against")
	c.Flags().StringVar(&o.state, "state", "", "directory for the audit state and evidence (default: the user config dir, custody/audit/<origin>)")
	c.Flags().BoolVar(&o.noState, "no-state", false, "neither read nor write state: audit from scratch, trust the current checkpoint")
	c.Flags().BoolVar(&o.asJSON, "json", false, "print the report as JSON")
	c.Flags().BoolVar(&o.full, "full", false, "re-read and re-check every entry, not only those after the stored state")
}

// stateDir returns the state directory for a log origin.
func (o *auditOptions) stateDir(origin string) (string, error) {
	if o.state != "" {
		return o.state, nil
	}
	base, err := os.UserConfigDir()
	if err != nil {
		return "", usageErr(err, "pass --state DIR")
	}
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, origin)
	return filepath.Join(base, "custody", "audit", safe), nil
}

func readState(dir string) (*verify.AuditState, error) {
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st verify.AuditState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("audit state %s: %w", dir, err)
	}
	return &st, nil
}

// writeState replaces dir/state.json atomically (write, fsync, rename).
func writeState(dir string, st *verify.AuditState) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(st, "", " ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "state-*.json")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	tmp.Close()
	if err := os.Rename(tmp.Name(), filepath.Join(dir, "state.json")); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// runAudit runs one audit: it reads and writes state and evidence.
func (e *env) runAudit(ctx context.Context, o *auditOptions, progress bool) (*verify.AuditReport, error) {
	if o.log == "" || o.policy == "" {
		return nil, usageError("pass --log URL|DIR, --key K and --policy FILE", "missing --log or --policy")
	}
	pol, err := verify.LoadPolicy(o.policy)
	if err != nil {
		return nil, usageErr(err, "fix the policy file; see testdata/policy.yaml for an example")
	}
	cl, err := e.client(&o.trust, o.log)
	if err != nil {
		return nil, err
	}
	dir, err := o.stateDir(cl.Origin())
	if err != nil {
		return nil, err
	}
	var st *verify.AuditState
	if !o.noState {
		if st, err = readState(dir); err != nil {
			return nil, usageErr(err, "move the state directory away to start over (the log is then trusted on first use again)")
		}
	}
	opts := verify.AuditOptions{Policy: pol, State: st, Full: o.full}
	var bar *progressbar.ProgressBar
	if progress && isTerminal(e.stderr) {
		opts.Progress = func(done, total uint64) {
			if bar == nil {
				bar = progressbar.NewOptions64(int64(total), progressbar.OptionSetWriter(e.stderr),
					progressbar.OptionSetDescription("auditing entries"), progressbar.OptionShowCount(),
					progressbar.OptionShowIts(), progressbar.OptionSetItsString("entries"),
					progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
			}
			bar.Set64(int64(done))
		}
	}
	rep, next, err := verify.Audit(ctx, cl, opts)
	if bar != nil {
		bar.Finish()
	}
	if err != nil {
		evDir := dir
		if o.noState {
			evDir = "."
		}
		return nil, e.checkErr(err, evDir)
	}
	if !o.noState {
		if err := writeState(dir, next); err != nil {
			return nil, usageErr(fmt.Errorf("writing audit state: %w", err), "check that --state is writable")
		}
	}
	return rep, nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (e *env) auditCmd() *cobra.Command {
	var o auditOptions
	c := &cobra.Command{
		Use:   "audit --log URL|DIR --key K --policy FILE [--state DIR] [--trust POLICY] [--json]",
		Short: "Download and recompute the whole log; check every event against the policy",
		Long: `audit verifies the log without trusting it: it verifies the signed checkpoint
(and the witness quorum with --trust), reads every entry from the log's
entry bundles (each checked against the authenticated hash tiles),
recomputes the tree root from the entries and compares it with the signed
one, and checks every event against the routing policy and for unbroken
custody: reroute, unknown-location, unknown-region, continuity,
region-change and late findings.

The first run trusts the current checkpoint and keeps it in the state
directory; every later run proves the new checkpoint extends the stored one
(a rollback, a fork or a rewritten history is caught) and continues from
the last audited entry.

Exit codes: 0 clean, 1 policy findings, 2 the log failed verification (an
evidence file is written to the state directory and its path printed),
3 usage or I/O error.`,
		Example: `  custody audit --log http://127.0.0.1:8080 --key mylog/log.pub --policy testdata/policy.yaml
  custody audit --log ./mirror --key log.pub --policy policy.yaml --state ./audit-state --json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			rep, err := e.runAudit(c.Context(), &o, true)
			if err != nil {
				return err
			}
			if o.asJSON {
				printJSON(e.stdout, rep)
			} else {
				printReport(e.stdout, rep)
			}
			if len(rep.Findings) > 0 {
				return &cliError{err: fmt.Errorf("%d findings in %d entries of %s", len(rep.Findings), rep.Size, rep.Origin), code: exitFailure}
			}
			return nil
		},
	}
	o.flags(c)
	return c
}

// printReport prints the human audit report: the checkpoint, a table of
// events per region × location, then the findings.
func printReport(w io.Writer, rep *verify.AuditReport) {
	fmt.Fprintf(w, "log %s: %d entries verified (root %s)", rep.Origin, rep.Size, rep.Root)
	if rep.From > 0 {
		fmt.Fprintf(w, "; continued from %d", rep.From)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w)
	var regions []string
	locSet := map[string]bool{}
	for r, m := range rep.Counts {
		regions = append(regions, r)
		for l := range m {
			locSet[l] = true
		}
	}
	slices.Sort(regions)
	var locs []string
	for l := range locSet {
		locs = append(locs, l)
	}
	slices.Sort(locs)
	fmt.Fprintf(w, "%-8s", "REGION")
	for _, l := range locs {
		fmt.Fprintf(w, " %10s", l)
	}
	fmt.Fprintf(w, " %10s\n", "TOTAL")
	for _, r := range regions {
		fmt.Fprintf(w, "%-8s", r)
		var t uint64
		for _, l := range locs {
			n := rep.Counts[r][l]
			t += n
			if n == 0 {
				fmt.Fprintf(w, " %10s", "-")
			} else {
				fmt.Fprintf(w, " %10d", n)
			}
		}
		fmt.Fprintf(w, " %10d\n", t)
	}
	fmt.Fprintln(w)
	if len(rep.Findings) == 0 {
		fmt.Fprintln(w, "no findings")
		return
	}
	fmt.Fprintf(w, "%d findings:\n", len(rep.Findings))
	printFindings(w, rep.Findings)
}

func printFindings(w io.Writer, fs []verify.Finding) {
	fmt.Fprintf(w, "%-8s %-20s %-17s %s\n", "INDEX", "SAMPLE", "KIND", "DETAIL")
	for _, f := range fs {
		fmt.Fprintf(w, "%-8d %-20s %-17s %s\n", f.Index, f.Sample, f.Kind, f.Detail)
	}
}

func (e *env) monitorCmd() *cobra.Command {
	var o auditOptions
	var every time.Duration
	var webhook string
	c := &cobra.Command{
		Use:   "monitor --log URL|DIR --key K --policy FILE --every DURATION [--webhook URL]",
		Short: "Audit again and again; report only what is new",
		Long: `monitor runs the audit every DURATION, continuing from its state each time,
and prints only new findings and new verification failures. With --webhook,
each new finding or failure is also POSTed there as JSON:
{"kind": "finding"|"failure", "time", "origin", "size", "finding"|"error",
"evidence"} (evidence with failures of verification). With --json, the
same objects are printed, one per line.
It stops cleanly on SIGINT or SIGTERM.`,
		Example: `  custody monitor --log http://127.0.0.1:8080 --key mylog/log.pub --policy testdata/policy.yaml --every 1m`,
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if every <= 0 {
				return usageError("pass how often to audit, e.g. --every 1m", "missing --every")
			}
			if o.noState {
				return usageError("monitor needs state to know what is new", "--no-state is not allowed here")
			}
			ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			lastFailure := ""
			for {
				rep, err := e.runAudit(ctx, &o, false)
				switch {
				case ctx.Err() != nil:
					return nil
				case err != nil:
					if msg := err.Error(); msg != lastFailure {
						lastFailure = msg
						ev := map[string]any{"kind": "failure", "time": now(), "error": msg}
						if ve, ok := verify.IsVerificationError(err); ok {
							ev["origin"], ev["size"], ev["evidence"] = ve.Evidence.Origin, ve.Evidence.NewSize, ve.Evidence
						}
						e.report(o.asJSON, ev, fmt.Sprintf("%s failure: %v", now(), err))
						e.postWebhook(ctx, webhook, ev)
					}
				default:
					lastFailure = ""
					for _, f := range rep.New {
						ev := map[string]any{"kind": "finding", "time": now(), "origin": rep.Origin, "size": rep.Size, "finding": f}
						e.report(o.asJSON, ev, fmt.Sprintf("%s finding: %s", now(), f))
						e.postWebhook(ctx, webhook, ev)
					}
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(every):
				}
			}
		},
	}
	o.flags(c)
	c.Flags().DurationVar(&every, "every", 0, "time between audits, e.g. 30s or 5m")
	c.Flags().StringVar(&webhook, "webhook", "", "URL to POST each new finding or failure to (JSON)")
	return c
}

func now() string { return time.Now().UTC().Format(time.RFC3339) }

// report prints one monitor event: a JSON line, or a line for people.
func (e *env) report(asJSON bool, v any, line string) {
	if asJSON {
		b, _ := json.Marshal(v)
		fmt.Fprintf(e.stdout, "%s\n", b)
		return
	}
	fmt.Fprintln(e.stdout, line)
}

func (e *env) postWebhook(ctx context.Context, url string, v any) {
	if url == "" {
		return
	}
	b, _ := json.Marshal(v)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		fmt.Fprintf(e.stderr, "custody: webhook: %v\n", err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		fmt.Fprintf(e.stderr, "custody: webhook: %v\n", err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		fmt.Fprintf(e.stderr, "custody: webhook answered %s\n", resp.Status)
	}
}
