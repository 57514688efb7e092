package cmd

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/verify"
	"github.com/spf13/cobra"
)

func (e *env) verifySampleCmd() *cobra.Command {
	var o verifyOptions
	var logArg, policy, since string
	c := &cobra.Command{
		Use:   "sample ID --log URL --key K [--trust POLICY] [--policy FILE] [--since CHECKPOINT]",
		Short: "Prove a sample's whole chain of events complete, from the log's sample index",
		Long: `sample fetches and verifies the log's checkpoint, then the proof of sample
ID's chain (GET /v1/samples/ID/proof) against the map root the checkpoint
commits: the events printed are all of the sample's events in the log as of
that checkpoint, or none (a verified absence). With --since, only the events
after a checkpoint you kept are printed (the log must extend it). With
--policy, the chain is checked against the routing policy, as a full audit
checks it. Sample proofs need the log's URL: a directory log carries no
sample index (audit it instead). Exit codes: 0 complete and clean,
1 policy findings, 2 the proof failed (evidence written), 3 usage or I/O.`,
		Example: `  custody verify sample smp-eu-1111 --log http://127.0.0.1:8080 --key mylog/log.pub --policy testdata/policy.yaml`,
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if !strings.HasPrefix(logArg, "http://") && !strings.HasPrefix(logArg, "https://") {
				return usageError("sample proofs need the log's URL: a mirror directory holds no sample index (run custody audit on it instead)", "--log %q is not an http(s) URL", logArg)
			}
			opts := audit.SampleOptions{Sample: args[0]}
			var err error
			if policy != "" {
				if opts.Policy, err = audit.LoadPolicy(policy); err != nil {
					return usageErr(err, "fix the policy file; see testdata/policy.yaml for an example")
				}
			}
			if since != "" {
				if opts.SinceNote, err = os.ReadFile(since); err != nil {
					return usageErr(err, "pass a checkpoint of this log you kept earlier")
				}
			}
			cl, err := e.client(&o.trustOptions, logArg)
			if err != nil {
				return err
			}
			rep, err := audit.VerifySample(c.Context(), cl, audit.HTTPSampleProofs(logArg, &http.Client{Timeout: 2 * time.Minute}), opts)
			if err != nil {
				return e.checkErr(err, o.evidence)
			}
			if o.asJSON {
				printJSON(e.stdout, rep)
			} else {
				audit.WriteSampleReport(e.stdout, rep)
			}
			if len(rep.Findings) > 0 {
				return &cliError{err: fmt.Errorf("%d findings for sample %s", len(rep.Findings), rep.Sample), code: exitFailure}
			}
			return nil
		},
	}
	o.flags(c, "the proof fails")
	c.Flags().StringVar(&logArg, "log", "", "the log's base URL")
	c.Flags().StringVar(&policy, "policy", "", "routing policy (YAML) to check the chain against")
	c.Flags().StringVar(&since, "since", "", "a checkpoint of this log kept earlier: print only the events after it")
	return c
}

// sampleRound returns monitor's round for --sample and --sample-file:
// audit.SampleWatch on the samples, evidence written to the state
// directory.
func (e *env) sampleRound(o *auditOptions, samples []string, file string) (func(context.Context) (*audit.AuditReport, error), error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, usageErr(err, "pass a file of sample IDs, one per line")
		}
		more, err := audit.ReadSampleFile(b)
		if err != nil {
			return nil, usageErr(fmt.Errorf("%s: %w", file, err), "one sample ID per line; # starts a comment")
		}
		samples = append(samples, more...)
	}
	if !strings.HasPrefix(o.log, "http://") && !strings.HasPrefix(o.log, "https://") || len(samples) == 0 {
		return nil, usageError("pass --log URL (sample proofs need the log's URL) and the samples to watch", "missing --log URL or samples")
	}
	w := &audit.SampleWatch{Proofs: audit.HTTPSampleProofs(o.log, nil), Samples: samples}
	var err error
	if o.policy != "" {
		if w.Policy, err = audit.LoadPolicy(o.policy); err != nil {
			return nil, usageErr(err, "fix the policy file; see testdata/policy.yaml for an example")
		}
	}
	if w.Client, err = e.client(&o.trust, o.log); err != nil {
		return nil, err
	}
	if w.StateDir = o.state; w.StateDir == "" {
		if w.StateDir, err = audit.DefaultStateDir(w.Client.Origin()); err != nil {
			return nil, usageErr(err, "pass --state DIR")
		}
	}
	return func(ctx context.Context) (*audit.AuditReport, error) {
		rep, err := w.Round(ctx)
		if _, ok := verify.IsVerificationError(err); ok {
			return nil, e.checkErr(err, w.StateDir)
		}
		return rep, err
	}, nil
}
