package httpapi

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/custodylog/custody/internal/termtext"
)

// WriteEntryTable writes entries as a table for people (custody get): a
// header line, then one line per entry with its index and its event's
// time, action, location, destination ("-" if none), region and sample.
// Every field is the server's text: its control characters are escaped
// (termtext.Clean). A site attestation shows as such, with its site, key
// and the number of entries it covers. An entry whose event does not
// decode shows empty fields.
func WriteEntryTable(w io.Writer, es []EntryJSON) {
	fmt.Fprintf(w, "%-8s %-20s %-12s %-12s %-12s %-6s %s\n", "INDEX", "TIME (UTC)", "ACTION", "LOCATION", "TO", "REGION", "SAMPLE")
	for _, e := range es {
		if a := e.Attestation; a != nil {
			c := termtext.Clean
			fmt.Fprintf(w, "%-8d %-20s %-12s %-12s %-12s %-6s %s\n", e.Index, a.Time.Format(time.RFC3339), "attestation", c(a.Site), "-", "-", fmt.Sprintf("(site %s key %s: the %d entries before it)", c(a.Site), c(a.Key), a.Count))
			continue
		}
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
