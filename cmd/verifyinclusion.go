package cmd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"github.com/custodylog/custody/internal/termtext"
	"github.com/spf13/cobra"
)

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
