package cmd

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/client"
	"github.com/custodylog/custody/demo"
	"github.com/custodylog/custody/httpapi"
	"github.com/custodylog/custody/loadgen"
	"github.com/custodylog/custody/log"
	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"
)

const (
	demoOrigin  = "demo.custody.local/log"
	demoWitness = "witness.demo.custody.local"
	demoBatch   = 256
	demoRetries = 5
)

type demoOptions struct {
	dir, listen string
	events      int
	violations  bool
	seed        uint64
	// reported, if set, is called with the log's base URL once the audit
	// report and the URLs are printed (tests use it to stop the demo).
	reported func(base string)
}

func (e *env) demoCmd() *cobra.Command {
	var o demoOptions
	c := &cobra.Command{
		Use:   "demo [--dir DIR] [--listen ADDR] [--events N] [--violations] [--seed S]",
		Short: "Run a self-contained demo: a log, a witness, a workload and an audit",
		Long: `demo needs no set-up: it creates a log (in a temporary directory unless
--dir), starts the log server and one local witness (the log publishes a
checkpoint only once the witness cosigned it), generates a realistic
workload following testdata/policy.yaml and appends it through the HTTP
API (every receipt goes to DIR/receipts.jsonl, one a line), audits the log
and prints the report. Then it keeps serving, and prints the URLs and
example commands, until Ctrl-C (or SIGTERM). A temporary directory is then
removed; a --dir is kept.

The workload: samples of customers in the US, EU, UK and ROW regions,
collected at their region's edge data centre, transferred to ch-zrh-1,
stored and analysed there, then deleted at both. With --violations a few
EU samples are also analysed in a data centre their region does not allow
(ru-mow-1) without any logged transfer there, and one sample is stored at
ch-zrh-1 with no logged transfer: the audit reports them (reroute and
continuity findings). The same --seed gives the same workload (apart from
the times, which are within the last hour).`,
		Example: `  custody demo
  custody demo --violations --dir ./demo --listen 127.0.0.1:8080`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return e.demo(c.Context(), o)
		},
	}
	c.Flags().StringVar(&o.dir, "dir", "", "directory for the log, witness, tokens, policy and receipts, kept on exit (default: a new temporary directory, removed on exit)")
	c.Flags().StringVar(&o.listen, "listen", "127.0.0.1:8080", "address for the log server")
	c.Flags().IntVar(&o.events, "events", 2000, "number of events to generate")
	c.Flags().BoolVar(&o.violations, "violations", false, "inject policy violations the audit must find")
	c.Flags().Uint64Var(&o.seed, "seed", 1, "seed of the workload generator")
	return c
}

// demo runs the whole demo until ctx is done.
func (e *env) demo(ctx context.Context, o demoOptions) error {
	if o.events <= 0 {
		return usageError("pass a positive number of events, e.g. --events 2000", "bad --events %d", o.events)
	}
	temporary := o.dir == ""
	if temporary {
		d, err := os.MkdirTemp("", "custody-demo-")
		if err != nil {
			return fmt.Errorf("creating a temporary directory for the demo: %w", err)
		}
		o.dir = d
		// Registered first, so it runs last: after the server and the
		// witness have stopped and closed their files.
		defer func() {
			if err := os.RemoveAll(d); err != nil {
				e.progress("could not remove the temporary directory %s: %v", d, err)
				return
			}
			e.progress("removed the temporary directory %s", d)
		}()
	}
	f := logFiles{o.dir}
	for _, p := range []string{f.key(), f.pub(), f.db()} {
		if exists(p) {
			return withHint(fmt.Errorf("%s already exists: the demo needs a fresh directory", p), "pick a new --dir, or leave it out for a temporary one")
		}
	}
	if err := os.MkdirAll(o.dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", o.dir, err)
	}
	e.progress("creating the log in %s", o.dir)

	// The log: keys and the signed size-0 checkpoint.
	if _, err := writeKeyPair(strings.TrimSuffix(f.key(), ".key"), demoOrigin); err != nil {
		return err
	}
	logVerifier, err := demo.CreateLog(ctx, o.dir)
	if err != nil {
		return err
	}

	// Files: tokens and policy.
	tokenFile := filepath.Join(o.dir, "tokens.txt")
	token, err := demo.WriteToken(tokenFile)
	if err != nil {
		return err
	}
	policyFile := filepath.Join(o.dir, "policy.yaml")
	if err := os.WriteFile(policyFile, []byte(loadgen.DemoPolicy), 0o644); err != nil {
		return err
	}

	// The witness, served in this process.
	e.progress("starting a local witness")
	wPrefix := filepath.Join(o.dir, "witness")
	wvkey, err := writeWitnessKeyPair(wPrefix, demoWitness)
	if err != nil {
		return err
	}
	wsigner, _, err := loadCosigner(wPrefix + ".key")
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	witnessURL, stopWitness, err := demo.StartWitness(o.dir, wsigner, []note.Verifier{logVerifier}, logger)
	if err != nil {
		return err
	}
	defer stopWitness()

	// The log server, with the witness and a quorum of 1.
	e.progress("starting the log server (witness %s, quorum 1)", witnessURL)
	so := serveOptions{dir: o.dir, tokenFile: tokenFile, logLevel: "warn", policy: policyFile,
		witnesses: []string{witnessURL + "=" + wvkey}, quorum: 1}
	so.cfg.Listen, so.cfg.API.MaxConcurrentWrites = o.listen, httpapi.DefaultMaxConcurrentWrites
	so.cfg.Log = log.Config{MaxBatch: log.DefaultMaxBatch, MaxWait: log.DefaultMaxWait, WitnessTimeout: log.DefaultWitnessTimeout}
	srv, addr, err := demo.Start(ctx, func(ctx context.Context, ready chan<- string) error { return e.serve(ctx, so, ready) })
	if err != nil {
		return err
	}
	base := "http://" + addr
	// From here on, stop the server and wait for it before returning.
	wait := srv.Stop

	// The workload, through the HTTP API, every receipt verified (client).
	events, injected := loadgen.Demo(o.seed, o.events, o.violations, time.Now())
	cl, err := client.New(base, token, logVerifier, client.WithBatch(demoBatch), client.WithRetries(demoRetries))
	if err != nil {
		return wait(err)
	}
	receiptsFile := filepath.Join(o.dir, "receipts.jsonl")
	err = demo.AppendAll(ctx, cl, events, demoBatch, receiptsFile, func(done int) {
		e.progress("appended %d/%d events", done, len(events))
	})
	if err != nil {
		return wait(err)
	}
	e.progress("wrote %d receipts to %s", len(events), receiptsFile)
	if o.violations {
		e.progress("injected violations: %s", strings.Join(injected, "; "))
	}

	// The audit, over HTTP, trusting nothing the server says.
	e.progress("auditing the log")
	ao := auditOptions{trust: trustOptions{key: f.pub()}, log: base, policy: policyFile, noState: true}
	rep, err := e.runAudit(ctx, &ao, true)
	if err != nil {
		return wait(err)
	}
	audit.WriteReport(e.stdout, rep)
	fmt.Fprintf(e.stdout, "\ndashboard:  %s/   <- open this in a browser\n", base)
	fmt.Fprintf(e.stdout, "log:        %s\n", base)
	fmt.Fprintf(e.stdout, "checkpoint: %s/checkpoint\n", base)
	fmt.Fprintf(e.stdout, "witness:    %s (%s)\n", witnessURL, wvkey)
	if temporary {
		fmt.Fprintf(e.stdout, "directory:  %s (temporary: removed on Ctrl-C; pass --dir to keep the files)\n\n", o.dir)
	} else {
		fmt.Fprintf(e.stdout, "directory:  %s\n\n", o.dir)
	}
	fmt.Fprintf(e.stdout, "try:\n")
	fmt.Fprintf(e.stdout, "  curl -s %s/v1/stats\n", base)
	fmt.Fprintf(e.stdout, "  custody audit --log %s --key %s --policy %s --no-state\n", base, f.pub(), policyFile)
	fmt.Fprintf(e.stdout, "  custody verify receipt %s --key %s\n", receiptsFile, f.pub())
	fmt.Fprintf(e.stdout, "  custody append --log %s --token-file %s < events.jsonl\n\n", base, tokenFile)
	fmt.Fprintf(e.stdout, "serving until Ctrl-C\n")
	if o.reported != nil {
		o.reported(base)
	}
	return srv.Wait(ctx)
}

// progress prints one progress line on stderr.
func (e *env) progress(format string, args ...any) {
	fmt.Fprintf(e.stderr, "custody demo: "+format+"\n", args...)
}
