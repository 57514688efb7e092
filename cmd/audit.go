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
	"sync"
	"syscall"
	"time"

	"github.com/custodylog/custody/internal/termtext"
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
		if !o.stateShown {
			fmt.Fprintf(e.stderr, "custody: audit state in %s\n", termtext.Clean(dir))
			o.stateShown = true
		}
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
	if errors.Is(err, verify.ErrStateOtherKey) {
		return nil, usageErr(fmt.Errorf("audit state in %s: %w", dir, err),
			fmt.Sprintf("if this is another log with the same origin, or the log changed its key, keep a separate state with --state DIR, audit without state with --no-state, or remove %s to start over (this log is then trusted on first use); if the key should not have changed, check --key", dir))
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
// events per region × location, then the findings. Text from the log
// (regions, locations, findings) is printed with terminal controls escaped.
func printReport(w io.Writer, rep *verify.AuditReport) {
	fmt.Fprintf(w, "log %s: %d entries verified (root %s)", termtext.Clean(rep.Origin), rep.Size, rep.Root)
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
		fmt.Fprintf(w, " %10s", termtext.Clean(l))
	}
	fmt.Fprintf(w, " %10s\n", "TOTAL")
	for _, r := range regions {
		fmt.Fprintf(w, "%-8s", termtext.Clean(r))
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
		fmt.Fprintf(w, "%-8d %-20s %-17s %s\n", f.Index, termtext.Clean(f.Sample), termtext.Clean(f.Kind), termtext.Clean(f.Detail))
	}
}

// Defaults of monitor's webhook delivery.
const (
	// defaultWebhookBudget is how long the posts of one round may take in
	// all (--webhook-budget).
	defaultWebhookBudget = 30 * time.Second
	// webhookPostTimeout bounds one post (and the budget bounds it too).
	webhookPostTimeout = 10 * time.Second
	// webhookQueue is how many rounds' posts may wait for delivery; a
	// round finding the queue full drops its posts (and says so).
	webhookQueue = 4
	// webhookGrace is the most monitor waits at exit for posts in flight.
	webhookGrace = 5 * time.Second
)

func (e *env) monitorCmd() *cobra.Command {
	var o auditOptions
	var every, budget time.Duration
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

Webhook posts never hold up the audits: they are sent in the background,
in order, each round's within --webhook-budget (at most 10s per post).
Posts that fail, or are not sent within the budget, are dropped and
counted on stderr ("custody: webhook: …") after the round.
It stops cleanly on SIGINT or SIGTERM.`,
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
			if o.log == "" || o.policy == "" {
				return usageError("pass --log URL|DIR, --key K and --policy FILE", "missing --log or --policy")
			}
			if _, err := verify.LoadPolicy(o.policy); err != nil {
				return usageErr(err, "fix the policy file; see testdata/policy.yaml for an example")
			}
			if _, err := e.client(&o.trust, o.log); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			var hook *webhookPoster
			if webhook != "" {
				hook = newWebhookPoster(webhook, budget)
				defer func() {
					hook.close(min(budget, webhookGrace))
					e.reportWebhook(hook)
				}()
			}
			post := func(v any) {
				if hook != nil {
					b, _ := json.Marshal(v)
					hook.add(b)
				}
			}
			lastFailure := ""
			for {
				rep, err := e.runAudit(ctx, &o, false)
				switch {
				case ctx.Err() != nil:
					return nil
				case err != nil:
					if msg := err.Error(); msg != lastFailure {
						lastFailure = msg
						ev := map[string]any{"kind": "failure", "time": now(), "error": termtext.Clean(msg)}
						if ve, ok := verify.IsVerificationError(err); ok {
							ev["origin"], ev["size"], ev["evidence"] = ve.Evidence.Origin, ve.Evidence.NewSize, ve.Evidence
						}
						e.report(o.asJSON, ev, fmt.Sprintf("%s failure: %s", now(), termtext.Clean(msg)))
						post(ev)
					}
				default:
					lastFailure = ""
					for _, f := range rep.New {
						ev := map[string]any{"kind": "finding", "time": now(), "origin": rep.Origin, "size": rep.Size, "finding": f}
						e.report(o.asJSON, ev, fmt.Sprintf("%s finding: %s", now(), termtext.Clean(f.String())))
						post(ev)
					}
				}
				if hook != nil {
					hook.endRound()
					e.reportWebhook(hook)
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
	c.Flags().DurationVar(&budget, "webhook-budget", defaultWebhookBudget, "how long the webhook posts of one round may take in all; the rest are dropped and counted")
	return c
}

func now() string { return time.Now().UTC().Format(time.RFC3339) }

// report prints one monitor event: a JSON line, or a line for people.
func (e *env) report(asJSON bool, v any, line string) {
	if asJSON {
		b, _ := json.Marshal(v)
		fmt.Fprintf(e.stdout, "%s\n", termtext.CleanJSON(b))
		return
	}
	fmt.Fprintln(e.stdout, line)
}

// reportWebhook prints, on stderr, what the webhook could not be sent
// since the last report: nothing if every post was delivered.
func (e *env) reportWebhook(h *webhookPoster) {
	st := h.take()
	if st.failed == 0 && st.dropped == 0 {
		return
	}
	msg := fmt.Sprintf("custody: webhook: %d posts delivered, %d failed, %d dropped unsent", st.delivered, st.failed, st.dropped)
	if st.lastErr != "" {
		msg += "; last failure: " + termtext.Clean(st.lastErr)
	}
	if st.dropped > 0 {
		msg += fmt.Sprintf(" (a round's posts get %v in all, and at most %d rounds wait; the findings are still in the audit state and on stdout)", h.budget, webhookQueue)
	}
	fmt.Fprintln(e.stderr, msg)
}

// webhookPoster posts monitor events to a webhook in the background, in
// order, so that a slow or hanging webhook never holds up the audits. The
// events of one round form a batch that must be delivered within the
// budget, counted from the end of the round; what is not delivered by then
// is dropped. At most webhookQueue batches wait; a round finding the queue
// full drops its batch. Every drop and failure is counted for
// reportWebhook.
type webhookPoster struct {
	url    string
	budget time.Duration
	client *http.Client

	ctx    context.Context // cancelled by close after the grace period
	cancel context.CancelFunc
	queue  chan webhookBatch
	done   chan struct{}

	pending [][]byte // the current round's bodies (monitor goroutine only)

	mu    sync.Mutex
	stats webhookStats
}

type webhookBatch struct {
	bodies   [][]byte
	deadline time.Time
}

type webhookStats struct {
	delivered, failed, dropped int
	lastErr                    string
}

func newWebhookPoster(url string, budget time.Duration) *webhookPoster {
	ctx, cancel := context.WithCancel(context.Background())
	h := &webhookPoster{
		url: url, budget: budget, client: &http.Client{},
		ctx: ctx, cancel: cancel,
		queue: make(chan webhookBatch, webhookQueue), done: make(chan struct{}),
	}
	go h.run()
	return h
}

// add queues body for the current round.
func (h *webhookPoster) add(body []byte) { h.pending = append(h.pending, body) }

// endRound hands the round's bodies to the background poster, or drops
// them if too many rounds are waiting. It never blocks.
func (h *webhookPoster) endRound() {
	if len(h.pending) == 0 {
		return
	}
	b := webhookBatch{bodies: h.pending, deadline: time.Now().Add(h.budget)}
	h.pending = nil
	select {
	case h.queue <- b:
	default:
		h.count(0, 0, len(b.bodies), "")
	}
}

// close stops accepting rounds, lets the posts in flight run for at most
// grace, then cancels the rest (counted as dropped) and waits for the
// background poster to finish.
func (h *webhookPoster) close(grace time.Duration) {
	h.endRound()
	close(h.queue)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-h.done:
	case <-t.C:
		h.cancel()
		<-h.done
	}
	h.cancel()
}

func (h *webhookPoster) run() {
	defer close(h.done)
	for b := range h.queue {
		ctx, cancel := context.WithDeadline(h.ctx, b.deadline)
		for i, body := range b.bodies {
			if ctx.Err() != nil {
				h.count(0, 0, len(b.bodies)-i, "")
				break
			}
			if err := h.post(ctx, body); err != nil {
				h.count(0, 1, 0, err.Error())
			} else {
				h.count(1, 0, 0, "")
			}
		}
		cancel()
	}
}

func (h *webhookPoster) post(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, webhookPostTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("the webhook answered %s", resp.Status)
	}
	return nil
}

func (h *webhookPoster) count(delivered, failed, dropped int, errText string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stats.delivered += delivered
	h.stats.failed += failed
	h.stats.dropped += dropped
	if errText != "" {
		h.stats.lastErr = errText
	}
}

// take returns the counts since the last take and resets them.
func (h *webhookPoster) take() webhookStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.stats
	h.stats = webhookStats{}
	return st
}
