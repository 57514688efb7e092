package audit

import (
	"fmt"
	"io"
	"slices"

	"github.com/custodylog/custody/internal/termtext"
)

// WriteReport writes rep as `custody audit` prints it for people: the
// verified checkpoint, a table of events per region × location, then the
// findings. Text that comes from the log (origin, regions, locations,
// samples, details) is written with terminal control characters escaped
// (internal/termtext), so a hostile log cannot drive the reader's terminal.
func WriteReport(w io.Writer, rep *AuditReport) {
	fmt.Fprintf(w, "log %s: %d entries verified (root %s)", termtext.Clean(rep.Origin), rep.Size, rep.Root)
	if rep.From > 0 {
		fmt.Fprintf(w, "; continued from %d", rep.From)
	}
	fmt.Fprintln(w)
	switch rep.SampleIndex {
	case SampleIndexVerified:
		fmt.Fprintln(w, "sample index: the map recomputed from the entries matches the checkpoint's custody-sample-index line")
	case SampleIndexNotCommitted:
		fmt.Fprintln(w, "sample index: not checked (the checkpoint has no custody-sample-index line)")
	}
	if st := rep.Sites; st != nil {
		fmt.Fprintf(w, "site signatures: %d of %d events covered by a valid site attestation (%d attestations, %d that do not hold)\n", st.Signed, st.Events, st.Attestations, st.Invalid)
	}
	fmt.Fprintln(w)
	var regions []string
	locSet := map[string]bool{}
	for r, m := range rep.Counts {
		regions = append(regions, r)
		for l := range m {
			locSet[l] = true
		}
	}
	slices.Sort(regions)
	var locs []string
	for l := range locSet {
		locs = append(locs, l)
	}
	slices.Sort(locs)
	fmt.Fprintf(w, "%-8s", "REGION")
	for _, l := range locs {
		fmt.Fprintf(w, " %10s", termtext.Clean(l))
	}
	fmt.Fprintf(w, " %10s\n", "TOTAL")
	for _, r := range regions {
		fmt.Fprintf(w, "%-8s", termtext.Clean(r))
		var t uint64
		for _, l := range locs {
			n := rep.Counts[r][l]
			t += n
			if n == 0 {
				fmt.Fprintf(w, " %10s", "-")
			} else {
				fmt.Fprintf(w, " %10d", n)
			}
		}
		fmt.Fprintf(w, " %10d\n", t)
	}
	fmt.Fprintln(w)
	if len(rep.Findings) == 0 {
		fmt.Fprintln(w, "no findings")
		return
	}
	fmt.Fprintf(w, "%d findings:\n", len(rep.Findings))
	fmt.Fprintf(w, "%-8s %-20s %-17s %s\n", "INDEX", "SAMPLE", "KIND", "DETAIL")
	for _, f := range rep.Findings {
		fmt.Fprintf(w, "%-8d %-20s %-17s %s\n", f.Index, termtext.Clean(f.Sample), termtext.Clean(string(f.Kind)), termtext.Clean(f.Detail))
	}
}
