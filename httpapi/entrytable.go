package httpapi

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/custodylog/custody/internal/termtext"
)

// WriteEntryTable writes entries as a table for people (custody get): a
// header line, then one line per entry with its index and its event's
// time, action, location, destination ("-" if none), region and sample.
// Every field is the server's text: its control characters are escaped
// (termtext.Clean). An entry whose event does not decode shows empty
// fields.
func WriteEntryTable(w io.Writer, es []EntryJSON) {
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
		c := termtext.Clean
		fmt.Fprintf(w, "%-8d %-20s %-12s %-12s %-12s %-6s %s\n", e.Index, c(ev.Time), c(ev.Action), c(ev.Location), c(to), c(ev.Region), c(ev.Sample))
	}
}
