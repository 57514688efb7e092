package audit

import (
	"fmt"
	"io"
	"time"

	"github.com/custodylog/custody/internal/termtext"
)

// WriteSampleReport writes rep as `custody verify sample` prints it for
// people: the sample's proven chain (index, time, action, location,
// region), "complete as of checkpoint N", and with a policy the chain's
// findings. Text from the log is written with terminal control
// characters escaped.
func WriteSampleReport(w io.Writer, rep *SampleReport) {
	sample := termtext.Clean(rep.Sample)
	switch {
	case rep.Absent:
		fmt.Fprintf(w, "sample %s: no events in log %s (verified absence)\n", sample, termtext.Clean(rep.Origin))
	case rep.Since > 0:
		fmt.Fprintf(w, "sample %s: %d events in log %s, %d of them since checkpoint %d\n", sample, rep.ListSize, termtext.Clean(rep.Origin), len(rep.Events), rep.Since)
	default:
		fmt.Fprintf(w, "sample %s: %d events in log %s\n", sample, rep.ListSize, termtext.Clean(rep.Origin))
	}
	if len(rep.Events) > 0 {
		fmt.Fprintf(w, "%-8s %-20s %-12s %-21s %s\n", "INDEX", "TIME", "ACTION", "LOCATION", "REGION")
		for _, e := range rep.Events {
			loc := e.Event.Location
			if e.Event.To != "" {
				loc += " -> " + e.Event.To
			}
			fmt.Fprintf(w, "%-8d %-20s %-12s %-21s %s\n", e.Index, e.Event.Time.UTC().Format(time.RFC3339),
				termtext.Clean(string(e.Event.Action)), termtext.Clean(loc), termtext.Clean(e.Event.Region))
		}
	}
	fmt.Fprintf(w, "complete as of checkpoint %d\n", rep.Size)
	if rep.Findings == nil {
		return
	}
	if len(rep.Findings) == 0 {
		fmt.Fprintln(w, "no findings for this sample")
		return
	}
	fmt.Fprintf(w, "%d findings:\n", len(rep.Findings))
	fmt.Fprintf(w, "%-8s %-17s %s\n", "INDEX", "KIND", "DETAIL")
	for _, f := range rep.Findings {
		fmt.Fprintf(w, "%-8d %-17s %s\n", f.Index, termtext.Clean(string(f.Kind)), termtext.Clean(f.Detail))
	}
}
