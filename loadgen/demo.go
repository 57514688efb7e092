package loadgen

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/custodylog/custody/record"
)

// DemoPolicy is testdata/policy.yaml: the routing policy the Demo workload
// follows (but for its injected violations).
const DemoPolicy = `# Example routing policy (the auditor's file; see docs/ and DESIGN.md).
locations:                 # every data centre and its jurisdiction
  us-ash-1: {country: US}
  de-fra-1: {country: DE}
  uk-lon-1: {country: GB}
  sg-sin-1: {country: SG}
  ch-zrh-1: {country: CH}
  ru-mow-1: {country: RU}
regions:                   # where each customer region's samples may be handled
  US:  {allowed: [us-ash-1, ch-zrh-1]}
  EU:  {allowed: [de-fra-1, ch-zrh-1]}
  UK:  {allowed: [uk-lon-1, ch-zrh-1]}
  ROW: {allowed: [sg-sin-1, ch-zrh-1, ru-mow-1]}
max_log_delay: 1h          # an event logged later than this after it happened is a finding
`

const (
	demoLab  = "ch-zrh-1"
	demoSpan = 50 * time.Minute // events happen within this long before now
)

// demoRegions are the customer regions with their edge data centres and
// their share of the samples (in percent).
var demoRegions = []struct {
	region, edge string
	weight       int
}{
	{"US", "us-ash-1", 35},
	{"EU", "de-fra-1", 35},
	{"UK", "uk-lon-1", 15},
	{"ROW", "sg-sin-1", 15},
}

// demoEv is a generated event with its generation order (the tie-break
// between events of the same second).
type demoEv struct {
	ev  record.Event
	seq int
}

// Demo generates the n events of custody demo's workload, sorted by time,
// all before now and after now−50 min: samples of customers in the US, EU,
// UK and ROW regions, collected at their region's edge data centre,
// transferred to ch-zrh-1, stored and analysed there, then deleted at
// both. With violations a few EU samples are also analysed at ru-mow-1
// with no transfer there, one is transferred to ru-mow-1 (not ch-zrh-1)
// and handled there (a forbidden flow), and one sample is stored at
// ch-zrh-1 with no logged transfer; it then also returns a description of each injected
// violation. The same seed gives the same events (but for their times).
func Demo(seed uint64, n int, violations bool, now time.Time) ([]record.Event, []string) {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	now = now.UTC().Truncate(time.Second)
	start := now.Add(-demoSpan)
	var out []demoEv
	var injected []string
	counts := map[string]int{}
	euBad, noTransfer := 0, false
	add := func(ev record.Event) {
		if len(out) < n {
			out = append(out, demoEv{ev, len(out)})
		}
	}
	for s := 0; len(out) < n; s++ {
		pick := r.IntN(100)
		reg := demoRegions[len(demoRegions)-1]
		for _, c := range demoRegions {
			if pick < c.weight {
				reg = c
				break
			}
			pick -= c.weight
		}
		counts[reg.region]++
		sample := fmt.Sprintf("smp-%s-%05d", strings.ToLower(reg.region), counts[reg.region])
		cust := sha256.Sum256(fmt.Appendf(nil, "customer %s-%03d", reg.region, r.IntN(200)))
		base := record.Event{Sample: sample, Region: reg.region, Customer: hex.EncodeToString(cust[:])}
		// The lifecycle takes at most about 9 minutes and starts in the
		// first 40 of the span, so every event is at least a minute old.
		t := start.Add(time.Duration(r.IntN(40*60)) * time.Second)
		step := func(lo, hi int) time.Time {
			t = t.Add(time.Duration(lo+r.IntN(hi-lo+1)) * time.Second)
			return t
		}
		ev := func(a record.Action, loc, to, actor string, at time.Time) record.Event {
			e := base
			e.Action, e.Location, e.To, e.Actor, e.Time = a, loc, to, actor, at
			return e
		}
		skipTransfer, badLab, lab := false, "", demoLab
		if violations {
			switch {
			case reg.region == "EU" && euBad < 3:
				euBad++
				badLab = "ru-mow-1"
				injected = append(injected, sample+" analysed at ru-mow-1 with no transfer there")
			case reg.region == "EU" && euBad == 3:
				euBad++
				lab = "ru-mow-1"
				injected = append(injected, sample+" transferred to ru-mow-1 and handled there")
			case reg.region != "EU" && !noTransfer:
				noTransfer, skipTransfer = true, true
				injected = append(injected, sample+" stored at "+demoLab+" with no logged transfer")
			}
		}
		add(ev(record.Collected, reg.edge, "", "collector/1.4", step(0, 0)))
		tt := step(10, 60)
		if !skipTransfer {
			add(ev(record.Transferred, reg.edge, lab, "mover/2.1", tt))
		}
		add(ev(record.Stored, lab, "", "vault/3.0", step(5, 30)))
		at := step(30, 240)
		add(ev(record.Analysed, lab, "", "analyser/5.2", at))
		if badLab != "" {
			add(ev(record.Analysed, badLab, "", "analyser/5.2", at.Add(time.Second)))
		}
		add(ev(record.Deleted, reg.edge, "", "janitor/1.0", step(30, 120)))
		add(ev(record.Deleted, lab, "", "janitor/1.0", step(30, 120)))
	}
	slices.SortStableFunc(out, func(a, b demoEv) int {
		if c := a.ev.Time.Compare(b.ev.Time); c != 0 {
			return c
		}
		return a.seq - b.seq
	})
	evs := make([]record.Event, len(out))
	for i, d := range out {
		evs[i] = d.ev
	}
	return evs, injected
}
