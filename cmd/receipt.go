package cmd

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/internal/termtext"
	"github.com/custodylog/custody/verify"
	"github.com/spf13/cobra"
)

func (e *env) verifyReceiptCmd() *cobra.Command {
	var o trustOptions
	var entryFile, evidence string
	var asJSON bool
	c := &cobra.Command{
		Use:   "receipt FILE --key K [--trust POLICY] [--entry ENTRY]",
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
about the sample was logged: run an audit for that.`,
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
			type result struct {
				Index  uint64 `json:"index"`
				Size   uint64 `json:"size"`
				Sample string `json:"sample"`
				Action string `json:"action"`
			}
			var results []result
			if bytes.HasPrefix(data, []byte(verify.TLogProofHeader+"\n")) {
				if entryFile == "" {
					return usageError("a tlog-proof holds no entry: pass --entry FILE with the exact entry bytes", "missing --entry")
				}
				entry, err := os.ReadFile(entryFile)
				if err != nil {
					return usageErr(err, "pass the exact entry bytes")
				}
				entry = bytes.TrimSuffix(entry, []byte("\n"))
				cp, index, ev, err := audit.CheckTLogProof(data, entry, origin, vs, tp)
				if err != nil {
					return e.checkErr(err, evidence)
				}
				results = append(results, result{index, cp.Size, ev.Sample, string(ev.Action)})
			} else {
				sc := bufio.NewScanner(bytes.NewReader(data))
				sc.Buffer(nil, 1<<20)
				n := 0
				for sc.Scan() {
					line := bytes.TrimSpace(sc.Bytes())
					if len(line) == 0 {
						continue
					}
					n++
					var r verify.Receipt
					if err := json.Unmarshal(line, &r); err != nil {
						return usageErr(fmt.Errorf("%s: receipt %d is not JSON: %v", args[0], n, err), "pass receipts as 'custody append' prints them")
					}
					cp, ev, err := audit.CheckReceipt(r, origin, vs, tp)
					if errors.Is(err, verify.ErrMalformedReceipt) {
						// Not a receipt at all: an input error, not evidence.
						return usageErr(fmt.Errorf("%s: receipt %d: %w", args[0], n, err), "pass receipts as 'custody append' prints them (one JSON object per line) or a .tlog-proof file with --entry; nothing was checked against the log")
					}
					if err != nil {
						return e.checkErr(fmt.Errorf("receipt %d (index %d): %w", n, r.Index, err), evidence)
					}
					results = append(results, result{r.Index, cp.Size, ev.Sample, string(ev.Action)})
				}
				if err := sc.Err(); err != nil {
					return usageErr(err, "")
				}
				if n == 0 {
					return usageError("pass a file with at least one receipt", "%s holds no receipt", args[0])
				}
			}
			if asJSON {
				printJSON(e.stdout, map[string]any{"valid": true, "origin": origin, "receipts": results})
				return nil
			}
			for _, r := range results {
				fmt.Fprintf(e.stdout, "valid: entry %d (%s %s) is in %s at size %d\n", r.Index, termtext.Clean(r.Sample), termtext.Clean(r.Action), termtext.Clean(origin), r.Size)
			}
			return nil
		},
	}
	o.flags(c)
	c.Flags().StringVar(&entryFile, "entry", "", "with a bare tlog-proof: the file holding the exact entry bytes")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.Flags().StringVar(&evidence, "evidence-dir", ".", "where to write evidence when a receipt fails")
	return c
}
