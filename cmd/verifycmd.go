package cmd

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/custodylog/custody/internal/termtext"
	"github.com/custodylog/custody/report"
	"github.com/custodylog/custody/verify"
	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"
)

func (e *env) verifyCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "verify (checkpoint | inclusion | consistency | receipt | sample | report)",
		Short: "Check a checkpoint, a proof or a receipt without trusting the log",
		Long: `verify checks what a custody log published, recomputing every proof on this
machine from the log's tiles and entries (or, for receipts, from the receipt
alone) against keys you chose. Exit codes: 0 valid, 2 invalid (the reason is
printed, and evidence written where there is any), 3 usage or I/O error.`,
	}
	c.AddCommand(e.verifyCheckpointCmd(), e.verifyInclusionCmd(), e.verifyConsistencyCmd(), e.verifyReceiptCmd(), e.verifySampleCmd(), e.verifyReportCmd())
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

func (e *env) verifyInclusionCmd() *cobra.Command {
	var o verifyOptions
	var logArg, entryFile string
	var index int64
	c := &cobra.Command{
		Use:   "inclusion --log URL|DIR --key K --index I [--entry FILE]",
		Short: "Prove entry I is in the log's current tree, from its tiles",
		Long: `inclusion fetches and verifies the log's checkpoint, builds the inclusion proof
of entry I from the log's hash tiles (each tile authenticated against the
signed root), and checks it. With --entry, the entry must also be exactly
the bytes in FILE; without it, the entry is read from its authenticated
entry bundle and printed.`,
		Example: `  custody verify inclusion --log http://127.0.0.1:8080 --key mylog/log.pub --index 42`,
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if logArg == "" || index < 0 {
				return usageError("pass --log URL|DIR and --index I", "missing --log or --index")
			}
			cl, err := e.client(&o.trustOptions, logArg)
			if err != nil {
				return err
			}
			ctx := c.Context()
			cp, _, err := cl.Checkpoint(ctx)
			if err != nil {
				return e.checkErr(err, o.evidence)
			}
			i := uint64(index)
			if i >= cp.Size {
				return &cliError{err: fmt.Errorf("entry %d is not in the log's tree of size %d", i, cp.Size), code: exitInvalid}
			}
			var entry []byte
			if err := cl.Entries(ctx, i, i+1, cp, func(_ uint64, b []byte) error { entry = b; return nil }); err != nil {
				return e.checkErr(err, o.evidence)
			}
			if entryFile != "" {
				want, err := os.ReadFile(entryFile)
				if err != nil {
					return usageErr(err, "pass the exact entry bytes (e.g. a receipt's entry, base64-decoded)")
				}
				if !bytes.Equal(bytes.TrimSuffix(want, []byte("\n")), entry) {
					return &cliError{err: fmt.Errorf("entry %d of the log is not the bytes in %s", i, entryFile), code: exitInvalid}
				}
			}
			proof, err := cl.ProveEntry(ctx, i, entry, cp)
			if err != nil {
				return e.checkErr(err, o.evidence)
			}
			return e.emit(o.asJSON, map[string]any{"valid": true, "index": i, "size": cp.Size, "entry": json.RawMessage(entry)},
				"entry %d is in the tree of size %d (proof of %d hashes checked)\n%s\n", i, cp.Size, len(proof), termtext.Clean(string(entry)))
		},
	}
	o.flags(c, "the log fails")
	c.Flags().StringVar(&logArg, "log", "", "the log: base URL or a directory with the tlog-tiles layout")
	c.Flags().Int64Var(&index, "index", -1, "entry index")
	c.Flags().StringVar(&entryFile, "entry", "", "file with the exact entry bytes to check")
	return c
}

func (e *env) verifyReportCmd() *cobra.Command {
	var o verifyOptions
	c := &cobra.Command{
		Use:     "report FILE.html --key K [--trust POLICY] [--json]",
		Short:   "Re-check offline the checkpoint, every proof and every finding row in a report of 'custody audit --report' (docs/report.md)",
		Example: `  custody verify report audit.html --key mylog/log.pub`,
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			origin, vs, tp, err := o.load()
			if err != nil {
				return err
			}
			data, err := os.ReadFile(args[0])
			if err != nil {
				return usageErr(err, "pass a report written by 'custody audit --report FILE.html'")
			}
			res, err := report.Verify(data, origin, vs, tp)
			if err != nil {
				return err
			}
			return e.emit(o.asJSON, res, "%s", res)
		},
	}
	o.trustOptions.flags(c)
	c.Flags().BoolVar(&o.asJSON, "json", false, "print JSON")
	return c
}

// trustOptions are the key and trust-policy flags shared by verify, audit
// and monitor.
type trustOptions struct {
	key, trust string
}

func (o *trustOptions) flags(c *cobra.Command) {
	c.Flags().StringVar(&o.key, "key", "", "the log's verifier key (name+hash+base64), or a file holding it")
	c.Flags().StringVar(&o.trust, "trust", "", "C2SP tlog-policy file: witnesses whose cosignatures (quorum) a checkpoint must carry")
}

// verifyOptions are the flags of the verify commands: the keys, --json
// and --evidence-dir.
type verifyOptions struct {
	trustOptions
	asJSON   bool
	evidence string
}

// flags adds the flags; fails ends the help of --evidence-dir.
func (o *verifyOptions) flags(c *cobra.Command, fails string) {
	o.trustOptions.flags(c)
	c.Flags().BoolVar(&o.asJSON, "json", false, "print JSON")
	c.Flags().StringVar(&o.evidence, "evidence-dir", ".", "where to write evidence when "+fails)
}

// load returns the log's origin, verifiers and trust policy.
func (o *trustOptions) load() (string, note.Verifiers, *verify.TrustPolicy, error) {
	var tp *verify.TrustPolicy
	if o.trust != "" {
		b, err := os.ReadFile(o.trust)
		if err != nil {
			return "", nil, nil, usageErr(err, "pass a C2SP tlog-policy file to --trust")
		}
		if tp, err = verify.ParseTrustPolicy(b); err != nil {
			return "", nil, nil, usageErr(fmt.Errorf("%s: %w", o.trust, err), keyHint("a trust policy", err, "see docs/auditor-guide.md for the policy format"))
		}
	}
	if o.key == "" {
		if tp != nil && len(tp.Logs()) > 0 {
			logs := tp.Logs()
			return logs[0].Name(), note.VerifierList(logs...), tp, nil
		}
		return "", nil, nil, usageError("pass the log's public key: --key mylog/log.pub (or the key string)", "missing --key")
	}
	v, err := loadVerifier(o.key)
	if err != nil {
		return "", nil, nil, usageErr(fmt.Errorf("--key: %w", err), keyHint("--key", err, "pass the log's verifier key string or the log.pub file"))
	}
	return v.Name(), note.VerifierList(v), tp, nil
}

// client opens the log at logArg (URL or directory) with the keys of o.
func (e *env) client(o *trustOptions, logArg string) (*verify.Client, error) {
	origin, vs, tp, err := o.load()
	if err != nil {
		return nil, err
	}
	src, err := verify.OpenSource(logArg, &http.Client{Timeout: 2 * time.Minute})
	if err != nil {
		return nil, usageErr(err, "pass the log's base URL (http://…) or a directory holding its checkpoint and tile/ tree")
	}
	return verify.NewClient(src, origin, vs, tp), nil
}
