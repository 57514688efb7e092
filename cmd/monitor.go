package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/internal/termtext"
	"github.com/spf13/cobra"
)

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
