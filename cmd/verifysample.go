package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
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
			opts, err := audit.LoadSampleOptions(args[0], policy, since)
			if err != nil {
				return err
			}
			cl, err := e.client(&o.trustOptions, logArg)
			if err != nil {
				return err
			}
			rep, err := audit.VerifySample(c.Context(), cl, audit.HTTPSampleProofs(logArg, &http.Client{Timeout: 2 * time.Minute}), opts)
			if err != nil {
				return e.checkErr(err, o.evidence)
			}
			e.print(o.asJSON, rep, func(w io.Writer) { audit.WriteSampleReport(w, rep) })
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
	w, err := audit.OpenSampleWatch(audit.WatchOptions{Log: o.log, Samples: samples, SampleFile: file, PolicyFile: o.policy, StateDir: o.state},
		func(log string) (*verify.Client, error) { return e.client(&o.trust, log) })
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (*audit.AuditReport, error) {
		rep, err := w.Round(ctx)
		if _, ok := verify.IsVerificationError(err); ok {
			return nil, e.checkErr(err, w.StateDir)
		}
		return rep, err
	}, nil
}

func (e *env) verifyReceiptCmd() *cobra.Command {
	var o verifyOptions
	var entryFile, policy string
	c := &cobra.Command{
		Use:   "receipt FILE --key K [--trust POLICY] [--entry ENTRY] [--policy FILE]",
		Short: "Check receipts offline: signature, inclusion proof, entry",
		Long: `receipt verifies, with nothing but the log's public key (and optionally a
witness trust policy), that each receipt's event is in the log: the
checkpoint's signature, the inclusion proof of the exact entry bytes at the
receipt's index against the signed root, and that the receipt's views agree.
FILE holds receipts as 'custody append' prints them (one JSON per line), or
is a bare c2sp.org/tlog-proof file, in which case --entry names the file
with the exact entry bytes. No network is used.

A valid receipt proves the log committed, under its key, to this event at
this index. It does not prove the event is true, nor that nothing else
about the sample was logged: run an audit for that.

With --policy, each event's site signature is also checked against the
policy's sites (docs/site-signing.md): its attestation's signature, key
window and site, and the event's path to the signed root; an event a site
should have signed but did not is unsigned. A failure exits 1.`,
		Example: `  custody verify receipt receipts.jsonl --key mylog/log.pub
  custody verify receipt proof.tlog-proof --entry entry.json --key mylog/log.pub --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			origin, vs, tp, err := o.load()
			if err != nil {
				return err
			}
			data, err := os.ReadFile(args[0])
			if err != nil {
				return usageErr(err, "pass a receipts file (from 'custody append') or a .tlog-proof file")
			}
			var entry func() ([]byte, error)
			if entryFile != "" {
				entry = func() ([]byte, error) { return os.ReadFile(entryFile) }
			}
			rep, err := audit.VerifyReceiptFile(args[0], data, entry, origin, vs, tp, policy)
			var fe *audit.ReceiptFileError
			switch {
			case errors.As(err, &fe) && fe.Problem == audit.NoEntry:
				return usageError("a tlog-proof holds no entry: pass --entry FILE with the exact entry bytes", "missing --entry")
			case fe != nil:
				return err // says what to do, exit 3
			case err != nil:
				return e.checkErr(err, o.evidence) // a policy's error says what to do itself
			}
			e.print(o.asJSON, rep, rep.WriteText)
			if rep.Bad > 0 {
				return &cliError{err: fmt.Errorf("%d of %d receipts fail the policy's site signatures", rep.Bad, len(rep.Receipts)), code: exitFailure}
			}
			return nil
		},
	}
	o.flags(c, "a receipt fails")
	c.Flags().StringVar(&entryFile, "entry", "", "with a bare tlog-proof: the file holding the exact entry bytes")
	c.Flags().StringVar(&policy, "policy", "", "routing policy whose sites section the events' site signatures are checked against")
	return c
}
