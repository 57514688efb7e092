package cmd

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"

	"github.com/custodylog/custody/log"
	"github.com/spf13/cobra"
)

func (e *env) getCmd() *cobra.Command {
	var logURL, sample string
	var asJSON bool
	c := &cobra.Command{
		Use:   "get --log URL (INDEX | --sample ID)",
		Short: "Show an entry by index, or a sample's whole custody chain",
		Long: `get fetches one entry (GET /v1/entries/<i>) or every event of a sample in log
order (GET /v1/samples/<id>). This is a convenience view that trusts the
server; to check what it says, verify a receipt or run an audit.`,
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
			cl, err := newClient(logURL, "")
			if err != nil {
				return err
			}
			var entries []log.EntryJSON
			var raw any
			if sample != "" {
				var out struct {
					Sample string          `json:"sample"`
					Size   uint64          `json:"size"`
					Events []log.EntryJSON `json:"events"`
				}
				if err := cl.getJSON(c.Context(), "/v1/samples/"+url.PathEscape(sample), &out); err != nil {
					return err
				}
				entries, raw = out.Events, out
			} else {
				i, err := strconv.ParseUint(args[0], 10, 64)
				if err != nil {
					return usageError("INDEX is a decimal entry number, from 0", "bad index %q", args[0])
				}
				var out log.EntryJSON
				if err := cl.getJSON(c.Context(), "/v1/entries/"+itoa(i), &out); err != nil {
					return err
				}
				entries, raw = []log.EntryJSON{out}, out
			}
			if asJSON {
				b, _ := json.MarshalIndent(raw, "", "  ")
				fmt.Fprintf(e.stdout, "%s\n", b)
				return nil
			}
			printEntries(e.stdout, entries)
			return nil
		},
	}
	c.Flags().StringVar(&logURL, "log", "", "base URL of the custody server")
	c.Flags().StringVar(&sample, "sample", "", "show this sample's custody chain")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

// printEntries prints entries as a table, one line each.
func printEntries(w io.Writer, es []log.EntryJSON) {
	fmt.Fprintf(w, "%-8s %-20s %-12s %-12s %-12s %-6s %s\n", "INDEX", "TIME (UTC)", "ACTION", "LOCATION", "TO", "REGION", "SAMPLE")
	for _, e := range es {
		var ev struct {
			Sample, Action, Location, To, Region, Time string
		}
		json.Unmarshal(e.Event, &ev)
		to := ev.To
		if to == "" {
			to = "-"
		}
		fmt.Fprintf(w, "%-8d %-20s %-12s %-12s %-12s %-6s %s\n", e.Index, ev.Time, ev.Action, ev.Location, to, ev.Region, ev.Sample)
	}
}
