package cmd

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/custodylog/custody/internal/termtext"
	"github.com/custodylog/custody/verify"
	"github.com/spf13/cobra"
)

func (e *env) verifyCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "verify (checkpoint | inclusion | consistency | receipt | sample)",
		Short: "Check a checkpoint, a proof or a receipt without trusting the log",
		Long: `verify checks what a custody log published, recomputing every proof on this
machine from the log's tiles and entries (or, for receipts, from the receipt
alone) against keys you chose. Exit codes: 0 valid, 2 invalid (the reason is
printed, and evidence written where there is any), 3 usage or I/O error.`,
	}
	c.AddCommand(e.verifyCheckpointCmd(), e.verifyInclusionCmd(), e.verifyConsistencyCmd(), e.verifyReceiptCmd(), e.verifySampleCmd())
	return c
}

func (e *env) verifyCheckpointCmd() *cobra.Command {
	var o verifyOptions
	c := &cobra.Command{
		Use:   "checkpoint (FILE | URL) --key K [--trust POLICY]",
		Short: "Check a signed checkpoint's signature (and witness quorum)",
		Example: `  custody verify checkpoint checkpoint.txt --key mylog/log.pub
  custody verify checkpoint http://127.0.0.1:8080 --key mylog/log.pub --trust witnesses.policy --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			origin, vs, tp, err := o.load()
			if err != nil {
				return err
			}
			var signed []byte
			if strings.HasPrefix(args[0], "http://") || strings.HasPrefix(args[0], "https://") {
				src, err := verify.OpenSource(args[0], &http.Client{Timeout: time.Minute})
				if err != nil {
					return usageErr(err, "pass a checkpoint file or the log's base URL")
				}
				if signed, err = src.ReadCheckpoint(c.Context()); err != nil {
					return e.checkErr(err, "")
				}
			} else if signed, err = os.ReadFile(args[0]); err != nil {
				return usageErr(err, "pass a checkpoint file or the log's base URL")
			}
			cp, err := verify.NewClient(nil, origin, vs, tp).OpenCheckpoint(signed)
			if err != nil {
				return e.checkErr(err, o.evidence)
			}
			out := map[string]any{"valid": true, "origin": cp.Origin, "size": cp.Size, "root": base64.StdEncoding.EncodeToString(cp.Root[:])}
			text := fmt.Sprintf("valid checkpoint: origin %s, size %d, root %s\n", termtext.Clean(cp.Origin), cp.Size, out["root"])
			if tp != nil {
				if res, err := tp.Evaluate(signed, cp, time.Now()); err == nil {
					out["witnesses"] = res.Witnesses
					text += fmt.Sprintf("cosigned by: %s\n", termtext.Clean(strings.Join(res.Witnesses, ", ")))
				}
			}
			return e.emit(o.asJSON, out, "%s", text)
		},
	}
	o.flags(c, "the checkpoint fails")
	return c
}

func (e *env) verifyConsistencyCmd() *cobra.Command {
	var o verifyOptions
	var logArg, oldFile string
	c := &cobra.Command{
		Use:   "consistency --log URL|DIR --key K --old CHECKPOINT",
		Short: "Prove the log's current tree extends a checkpoint you kept",
		Example: `  curl -s http://127.0.0.1:8080/checkpoint > yesterday.txt
  custody verify consistency --log http://127.0.0.1:8080 --key mylog/log.pub --old yesterday.txt`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if logArg == "" || oldFile == "" {
				return usageError("pass --log URL|DIR and --old CHECKPOINT_FILE", "missing --log or --old")
			}
			cl, err := e.client(&o.trustOptions, logArg)
			if err != nil {
				return err
			}
			oldNote, err := os.ReadFile(oldFile)
			if err != nil {
				return usageErr(err, "pass a checkpoint you saved earlier")
			}
			old, err := cl.OpenCheckpoint(oldNote)
			if err != nil {
				return e.checkErr(err, o.evidence)
			}
			cp, _, err := cl.Checkpoint(c.Context())
			if err != nil {
				return e.checkErr(err, o.evidence)
			}
			proof, err := cl.CheckExtends(c.Context(), old, oldNote, cp)
			if err != nil {
				return e.checkErr(err, o.evidence)
			}
			return e.emit(o.asJSON, map[string]any{"valid": true, "old_size": old.Size, "size": cp.Size, "proof_hashes": len(proof)},
				"the tree of size %d extends the checkpoint of size %d (proof of %d hashes checked)\n", cp.Size, old.Size, len(proof))
		},
	}
	o.flags(c, "the log fails")
	c.Flags().StringVar(&logArg, "log", "", "the log: base URL or a directory with the tlog-tiles layout")
	c.Flags().StringVar(&oldFile, "old", "", "a signed checkpoint of this log you kept earlier")
	return c
}
