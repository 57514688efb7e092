package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/internal/termtext"
	"github.com/custodylog/custody/report"
	"github.com/custodylog/custody/verify"
	"github.com/spf13/cobra"
)

type auditOptions struct {
	trust              trustOptions
	log, policy, state string
	noState, asJSON    bool
	full, requireSites bool
	memory             string
	report             string         // --report FILE.html (audit only)
	cl                 *verify.Client // the client of the last runAudit

	// stateShown is set once the state directory was named on stderr
	// (monitor names it once, not every round).
	stateShown bool
}

func (o *auditOptions) flags(c *cobra.Command) {
	o.trust.flags(c)
	c.Flags().StringVar(&o.log, "log", "", "the log: base URL or a directory with the tlog-tiles layout")
	c.Flags().StringVar(&o.policy, "policy", "", "the routing policy (YAML) to check every event against")
	c.Flags().StringVar(&o.state, "state", "", "directory for the audit state and evidence (default: the user config dir, custody/audit/<origin>)")
	c.Flags().BoolVar(&o.noState, "no-state", false, "neither read nor write state: audit from scratch, trust the current checkpoint")
	c.Flags().BoolVar(&o.asJSON, "json", false, "print the report as JSON")
	c.Flags().BoolVar(&o.full, "full", false, "re-read and re-check every entry, not only those after the stored state")
	c.Flags().BoolVar(&o.requireSites, "require-site-signatures", false, "every event must be covered by a valid site attestation (docs/site-signing.md), not only those at a site's location")
	c.Flags().StringVar(&o.memory, "memory", "512MiB", "memory for per-sample state; beyond it samples spill to files in the state dir (or $TMPDIR); 0: no limit")
}

// runAudit runs one audit (audit.Auditor): it reads and writes state and
// evidence.
func (e *env) runAudit(ctx context.Context, o *auditOptions, progress bool) (*audit.AuditReport, error) {
	pol, cl, err := e.auditSource(o)
	if err != nil {
		return nil, err
	}
	o.cl = cl
	dir := o.state
	if dir == "" {
		if dir, err = audit.DefaultStateDir(cl.Origin()); err != nil {
			return nil, usageErr(err, "pass --state DIR")
		}
	}
	a := audit.Auditor{Client: cl, Policy: pol, Full: o.full, RequireSignatures: o.requireSites}
	if a.Memory, err = audit.ParseMemory(o.memory); err != nil {
		return nil, usageErr(err, "pass --memory 512MiB, 2GB, or 0 for no limit")
	}
	if a.Memory == 0 {
		a.Memory = -1 // no limit (0 is the default in audit)
	}
	if !o.noState {
		if !o.stateShown {
			fmt.Fprintf(e.stderr, "custody: audit state in %s\n", termtext.Clean(dir))
			o.stateShown = true
		}
		a.StateDir = dir
	}
	bar := e.progress("auditing entries")
	if progress {
		a.Progress = bar.set
	}
	rep, err := a.Run(ctx)
	bar.finish()
	switch {
	case err == nil:
		return rep, nil
	case errors.Is(err, audit.ErrStateOtherKey):
		return nil, usageErr(fmt.Errorf("audit state in %s: %w", dir, err),
			fmt.Sprintf("if this is another log with the same origin, or the log changed its key, keep a separate state with --state DIR, audit without state with --no-state, or remove %s to start over (this log is then trusted on first use); if the key should not have changed, check --key", dir))
	case o.noState:
		return nil, e.checkErr(err, ".")
	}
	return nil, e.checkErr(err, dir)
}

// auditSource checks --log and --policy and loads the policy and the log's
// client.
func (e *env) auditSource(o *auditOptions) (*audit.Policy, *verify.Client, error) {
	if o.log == "" || o.policy == "" {
		return nil, nil, usageError("pass --log URL|DIR, --key K and --policy FILE", "missing --log or --policy")
	}
	pol, err := audit.LoadPolicy(o.policy)
	if err != nil {
		return nil, nil, usageErr(err, "fix the policy file; see testdata/policy.yaml for an example")
	}
	cl, err := e.client(&o.trust, o.log)
	return pol, cl, err
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
			if _, failed := verify.IsVerificationError(err); o.report != "" && (err == nil || failed) {
				_, _, tp, _ := o.trust.load()
				switch rerr := report.WriteAudit(c.Context(), o.report, o.cl, o.trust.key, rep, err, o.policy, tp); {
				case rerr != nil && err == nil:
					return usageErr(fmt.Errorf("--report %s: %w", o.report, rerr), "fix the problem and run the audit again")
				case rerr != nil:
					fmt.Fprintf(e.stderr, "custody: report not written: %s\n", termtext.Clean(rerr.Error()))
				default:
					fmt.Fprintf(e.stderr, "custody: report written to %s\n", termtext.Clean(o.report))
				}
			}
			if err != nil {
				return err
			}
			if o.asJSON {
				printJSON(e.stdout, rep)
			} else {
				audit.WriteReport(e.stdout, rep)
			}
			if len(rep.Findings) > 0 {
				return &cliError{err: fmt.Errorf("%d findings in %d entries of %s", len(rep.Findings), rep.Size, rep.Origin), code: exitFailure}
			}
			return nil
		},
	}
	o.flags(c)
	c.Flags().StringVar(&o.report, "report", "", "also write the regulator's report to FILE.html: one self-contained HTML file with every finding's entry and inclusion proof (docs/report.md)")
	return c
}

// Defaults of monitor's webhook delivery (see audit.Webhook).
const (
	// defaultWebhookBudget is how long the posts of one round may take in
	// all (--webhook-budget).
	defaultWebhookBudget = 30 * time.Second
	// webhookGrace is the most monitor waits at exit for posts in flight.
	webhookGrace = 5 * time.Second
)

func (e *env) monitorCmd() *cobra.Command {
	var o auditOptions
	var every, budget time.Duration
	var webhook, sampleFile string
	var samples []string
	c := &cobra.Command{
		Use:   "monitor --log URL|DIR --key K (--policy FILE | --sample ID | --sample-file FILE) --every DURATION [--webhook URL]",
		Short: "Audit again and again; report only what is new",
		Long: `monitor runs the audit every DURATION, continuing from its state each time,
and prints only new findings and new verification failures. With --webhook,
each new finding or failure is also POSTed there as JSON:
{"kind": "finding"|"failure", "time", "origin", "size", "finding"|"error",
"evidence"} (evidence with failures of verification). With --json, the
same objects are printed, one per line.

Webhook posts never hold up the audits: they are sent in the background,
in order, each round's within --webhook-budget (at most 10s per post).
Posts that fail, or are not sent within the budget, are dropped and
counted on stderr ("custody: webhook: …") after the round.
With --sample ID (repeatable) or --sample-file FILE it audits nothing: it
verifies those samples' chains from the log's sample index (--log URL) and
reports each new event once, as a finding of kind "event" (with --policy,
the chain's new findings too). It stops cleanly on SIGINT or SIGTERM.`,
		Example: `  custody monitor --log http://127.0.0.1:8080 --key mylog/log.pub --policy testdata/policy.yaml --every 1m`,
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if every <= 0 {
				return usageError("pass how often to audit, e.g. --every 1m", "missing --every")
			}
			if budget <= 0 {
				return usageError("pass how long one round's webhook posts may take, e.g. --webhook-budget 30s", "bad --webhook-budget %v", budget)
			}
			if o.noState {
				return usageError("monitor needs state to know what is new", "--no-state is not allowed here")
			}
			// Check the keys, the policy and the log argument once: a
			// mistake there is for the user, not for the webhook.
			round := func(ctx context.Context) (*audit.AuditReport, error) { return e.runAudit(ctx, &o, false) }
			var err error
			if len(samples) > 0 || sampleFile != "" {
				round, err = e.sampleRound(&o, samples, sampleFile)
			} else {
				_, _, err = e.auditSource(&o)
			}
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			cfg := audit.MonitorConfig{Every: every, Round: round,
				Report: func(ev audit.MonitorEvent) { e.report(o.asJSON, ev) }}
			if webhook != "" {
				cfg.Webhook = audit.NewWebhook(webhook, budget)
				cfg.EndRound = func() { e.reportWebhook(cfg.Webhook) }
				defer func() {
					cfg.Webhook.Close(min(budget, webhookGrace))
					e.reportWebhook(cfg.Webhook)
				}()
			}
			audit.Monitor(ctx, cfg)
			return nil
		},
	}
	o.flags(c)
	c.Flags().DurationVar(&every, "every", 0, "time between audits, e.g. 30s or 5m")
	c.Flags().StringVar(&webhook, "webhook", "", "URL to POST each new finding or failure to (JSON)")
	c.Flags().StringArrayVar(&samples, "sample", nil, "watch this sample's chain instead of auditing: report each new event once (repeatable; --policy optional)")
	c.Flags().StringVar(&sampleFile, "sample-file", "", "watch the samples listed in FILE, one per line")
	c.Flags().DurationVar(&budget, "webhook-budget", defaultWebhookBudget, "how long the webhook posts of one round may take in all; the rest are dropped and counted")
	return c
}

// report prints one monitor event: a JSON line, or a line for people.
func (e *env) report(asJSON bool, ev audit.MonitorEvent) {
	if asJSON {
		b, _ := json.Marshal(ev)
		fmt.Fprintf(e.stdout, "%s\n", termtext.CleanJSON(b))
		return
	}
	fmt.Fprintln(e.stdout, ev)
}

// reportWebhook prints, on stderr, what the webhook could not send since
// the last report: nothing if every post was delivered.
func (e *env) reportWebhook(h *audit.Webhook) {
	if msg := h.Take().Problems(h.Budget()); msg != "" {
		fmt.Fprintln(e.stderr, "custody: webhook: "+termtext.Clean(msg))
	}
}
