package loadgen

import (
	"fmt"
	"time"

	"github.com/custodylog/custody/record"
)

// LifecycleRegions and LifecycleEdges are the regions of the Lifecycle
// workload and the edge data centres their samples are collected at;
// LifecycleLabs the data centres samples are transferred to. Each region
// may use its edges and the labs of its own jurisdiction (the policy of a
// Lifecycle log allows exactly that); every LifecycleRerouteEvery-th sample
// is transferred to a lab its region may not use.
var (
	LifecycleRegions = []string{"EU", "US", "UK", "CH", "JP", "ROW"}
	LifecycleEdges   = map[string][]string{
		"EU":  {"de-fra-1", "fr-par-1", "nl-ams-1", "ie-dub-1"},
		"US":  {"us-va-1", "us-or-1", "us-tx-1"},
		"UK":  {"uk-lon-1", "uk-man-1"},
		"CH":  {"ch-gva-1"},
		"JP":  {"jp-tyo-1", "jp-osa-1"},
		"ROW": {"sg-sin-1", "au-syd-1", "br-sao-1", "in-bom-1"},
	}
	LifecycleLabs = map[string]string{"EU": "de-lab-1", "US": "us-lab-1", "UK": "uk-lab-1", "CH": "ch-zrh-1", "JP": "jp-lab-1", "ROW": "sg-lab-1"}
)

// LifecycleRerouteEvery is how often a Lifecycle sample is rerouted: sent
// to the next region's lab instead of its own.
const LifecycleRerouteEvery = 10007

// LifecycleSpan is how far back the Lifecycle workload's event times reach.
const LifecycleSpan = 365 * 24 * time.Hour

// Lifecycle returns a Prefill workload of n entries of whole sample
// lifecycles over the year before now: each sample is collected at an edge
// of its region, transferred to a lab, stored, analysed and deleted at the
// lab (five events, at most a few hours apart), the samples' start times
// spread evenly over LifecycleSpan in index order. About 23 data centres,
// six regions, transfers on some 30 flows, one in LifecycleRerouteEvery of
// them to a lab the region may not use: the shape of the dashboard's
// flows and timeline at scale (docs/performance.md).
func Lifecycle(n uint64) func(run string, idx uint64, now time.Time) record.Event {
	return func(run string, idx uint64, now time.Time) record.Event {
		s, step := idx/5, idx%5
		region := LifecycleRegions[s%uint64(len(LifecycleRegions))]
		edges := LifecycleEdges[region]
		edge := edges[(s/uint64(len(LifecycleRegions)))%uint64(len(edges))]
		lab := LifecycleLabs[region]
		if s%LifecycleRerouteEvery == LifecycleRerouteEvery-1 {
			lab = LifecycleLabs[LifecycleRegions[(s+1)%uint64(len(LifecycleRegions))]]
		}
		start := now.Add(-LifecycleSpan).Add(time.Duration(float64(LifecycleSpan-6*time.Hour) * float64(s*5) / float64(max(n, 1))))
		ev := record.Event{Sample: fmt.Sprintf("life-%s-%d", run, s), Region: region, Actor: "custody-lifecycle", Location: lab}
		switch step {
		case 0:
			ev.Action, ev.Location = record.Collected, edge
		case 1:
			ev.Action, ev.Location, ev.To = record.Transferred, edge, lab
		case 2:
			ev.Action = record.Stored
		case 3:
			ev.Action = record.Analysed
		case 4:
			ev.Action = record.Deleted
		}
		ev.Time = start.Add(time.Duration(step) * 40 * time.Minute).UTC().Truncate(time.Second)
		return ev
	}
}

// LifecyclePolicy is the routing policy of a Lifecycle log (YAML): each
// region may use its edges and its lab.
func LifecyclePolicy() string {
	countries := map[string]string{"de": "DE", "fr": "FR", "nl": "NL", "ie": "IE", "us": "US", "uk": "GB", "ch": "CH", "jp": "JP", "sg": "SG", "au": "AU", "br": "BR", "in": "IN"}
	b := []byte("locations:\n")
	regions := []byte("regions:\n")
	for _, r := range LifecycleRegions {
		all := append(append([]string{}, LifecycleEdges[r]...), LifecycleLabs[r])
		for _, l := range all {
			b = fmt.Appendf(b, "  %s: {country: %s}\n", l, countries[l[:2]])
		}
		regions = fmt.Appendf(regions, "  %s: {allowed: [", r)
		for i, l := range all {
			if i > 0 {
				regions = append(regions, ", "...)
			}
			regions = append(regions, l...)
		}
		regions = append(regions, "]}\n"...)
	}
	return string(b) + string(regions)
}
