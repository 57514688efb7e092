package cmd

import (
	"errors"
	"fmt"
	"os"

	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/internal/termtext"
	"github.com/spf13/cobra"
)

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
			results, err := audit.CheckReceiptFile(args[0], data, entry, origin, vs, tp)
			var fe *audit.ReceiptFileError
			if errors.As(err, &fe) && fe.Problem == audit.NoEntry {
				return usageError("a tlog-proof holds no entry: pass --entry FILE with the exact entry bytes", "missing --entry")
			} else if fe != nil {
				return usageErr(err, receiptFileHints[fe.Problem])
			} else if err != nil {
				return e.checkErr(err, o.evidence)
			}
			sites, bad, err := receiptSites(policy, data, origin)
			if err != nil {
				return err
			}
			if o.asJSON {
				out := map[string]any{"valid": true, "origin": origin, "receipts": results}
				if policy != "" {
					out["sites"] = sites
				}
				printJSON(e.stdout, out)
			} else {
				for _, r := range results {
					fmt.Fprintf(e.stdout, "valid: entry %d (%s %s) is in %s at size %d\n", r.Index, termtext.Clean(r.Sample), termtext.Clean(r.Action), termtext.Clean(origin), r.Size)
				}
				audit.WriteReceiptSites(e.stdout, sites)
			}
			if bad > 0 {
				return &cliError{err: fmt.Errorf("%d of %d receipts fail the policy's site signatures", bad, len(results)), code: exitFailure}
			}
			return nil
		},
	}
	o.flags(c, "a receipt fails")
	c.Flags().StringVar(&entryFile, "entry", "", "with a bare tlog-proof: the file holding the exact entry bytes")
	c.Flags().StringVar(&policy, "policy", "", "routing policy whose sites section the events' site signatures are checked against")
	return c
}

// receiptFileHints are the fixes of audit.CheckReceiptFile's input errors.
var receiptFileHints = map[audit.ReceiptFileProblem]string{
	audit.EntryUnread: "pass the exact entry bytes",
	audit.NotJSON:     "pass receipts as 'custody append' prints them",
	audit.NotReceipt:  "pass receipts as 'custody append' prints them (one JSON object per line) or a .tlog-proof file with --entry; nothing was checked against the log",
	audit.NoReceipt:   "pass a file with at least one receipt",
}
