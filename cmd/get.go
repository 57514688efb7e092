package cmd

import (
	"strconv"

	"github.com/custodylog/custody/httpapi"
	"github.com/custodylog/custody/internal/termtext"
	"github.com/custodylog/custody/record"
	"github.com/spf13/cobra"
)

func (e *env) getCmd() *cobra.Command {
	var logURL, sample string
	var asJSON bool
	c := &cobra.Command{
		Use:   "get --log URL (INDEX | --sample ID)",
		Short: "Show an entry by index, or a sample's whole custody chain",
		Long: `get fetches one entry (GET /v1/entries/<i>) or every event of a sample in log
order (GET /v1/samples/<id>, following its pages of at most 1000 events,
all in the tree size of the first page). This is a convenience view that
trusts the server; to check what it says, verify a receipt or run an audit.
Control characters in what the server sends (event fields, error
messages) are printed as visible escapes (\x1b, \u009b), never sent to the
terminal as they are.`,
		Example: `  custody get --log http://127.0.0.1:8080 0
  custody get --log http://127.0.0.1:8080 --sample s-0001 --json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if logURL == "" {
				return usageError("pass the server's base URL, e.g. --log http://127.0.0.1:8080", "missing --log")
			}
			if (len(args) == 1) == (sample != "") {
				return usageError("give either an index or --sample ID", "need exactly one of INDEX and --sample")
			}
			cl, err := newAPIClient(logURL)
			if err != nil {
				return err
			}
			var entries []httpapi.EntryJSON
			var raw any
			if sample != "" {
				if err := record.CheckSample(sample); err != nil {
					return usageError("a sample ID is 1–128 characters of A-Z a-z 0-9 : . _ -", "bad --sample %q: %v", sample, err)
				}
				out, err := httpapi.ReadSample(c.Context(), cl.GetJSON, sample)
				if err != nil {
					return termtext.Error(err) // it may quote the server
				}
				entries, raw = out.Events, out
			} else {
				i, err := strconv.ParseUint(args[0], 10, 64)
				if err != nil {
					return usageError("INDEX is a decimal entry number, from 0", "bad index %q", args[0])
				}
				var out httpapi.EntryJSON
				if err := cl.GetJSON(c.Context(), "/v1/entries/"+itoa(i), &out); err != nil {
					return termtext.Error(err) // it may quote the server
				}
				entries, raw = []httpapi.EntryJSON{out}, out
			}
			if asJSON {
				printJSON(e.stdout, raw)
				return nil
			}
			httpapi.WriteEntryTable(e.stdout, entries)
			return nil
		},
	}
	c.Flags().StringVar(&logURL, "log", "", "base URL of the custody server")
	c.Flags().StringVar(&sample, "sample", "", "show this sample's custody chain")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}
