package cmd

import (
	"context"
	"errors"
	"fmt"

	"github.com/custodylog/custody/demo"
	"github.com/spf13/cobra"
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
	logger, _ := e.logger("warn")
	bar := e.progress("auditing entries")
	d, err := demo.Run(ctx, demo.Options{Dir: o.dir, Listen: o.listen, Events: o.events, Violations: o.violations, Seed: o.seed, Logger: logger,
		Progress: func(format string, args ...any) { fmt.Fprintf(e.stderr, "custody demo: "+format+"\n", args...) }, AuditProgress: bar.set})
	bar.finish()
	if ae := (*demo.AuditError)(nil); errors.As(err, &ae) {
		return e.checkErr(ae.Err, ".")
	} else if errors.Is(err, demo.ErrDirUsed) {
		return withHint(err, "pick a new --dir, or leave it out for a temporary one")
	} else if err != nil {
		return err
	}
	d.WriteIntro(e.stdout)
	if o.reported != nil {
		o.reported(d.Base)
	}
	return d.Wait(ctx)
}
