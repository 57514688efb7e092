package loadgen

import (
	"strings"
	"testing"
	"time"

	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/record"
)

// TestLifecycle: the Lifecycle workload's events are valid, distinct and
// in whole lifecycles; against LifecyclePolicy the only findings are the
// reroutes of every LifecycleRerouteEvery-th sample, and the event times
// span the year before now.
func TestLifecycle(t *testing.T) {
	pol, err := audit.ParsePolicy([]byte(LifecyclePolicy()))
	if err != nil {
		t.Fatalf("LifecyclePolicy does not parse: %v\n%s", err, LifecyclePolicy())
	}
	const n = 5 * (LifecycleRerouteEvery + 10)
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	w := Lifecycle(n)
	eng := audit.NewEngine(pol)
	ids := map[[32]byte]bool{}
	rerouted := map[string]bool{}
	var first, last time.Time
	for i := uint64(0); i < n; i++ {
		ev := w("r1", i, now)
		ev.Logged = now
		if err := ev.Validate(); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		id := ev.Identity()
		if ids[id] {
			t.Fatalf("event %d repeats an identity", i)
		}
		ids[id] = true
		if i == 0 || ev.Time.Before(first) {
			first = ev.Time
		}
		if ev.Time.After(last) {
			last = ev.Time
		}
		for _, f := range eng.Add(i, ev) {
			if f.Kind == audit.KindLate {
				continue // logged "now" for a year of events
			}
			if f.Kind != audit.KindReroute {
				t.Errorf("unexpected finding %v", f)
			}
			rerouted[f.Sample] = true
		}
		if ev.Action == record.Transferred && strings.HasSuffix(ev.Sample, "-10006") != (ev.To != LifecycleLabs[ev.Region]) {
			t.Errorf("event %d: transfer to %s for region %s", i, ev.To, ev.Region)
		}
	}
	if len(rerouted) != 1 || !rerouted["life-r1-10006"] {
		t.Errorf("rerouted samples %v, want life-r1-10006 only", rerouted)
	}
	if span := last.Sub(first); span < LifecycleSpan-12*time.Hour || last.After(now) {
		t.Errorf("event times from %v to %v (now %v), want about a year up to now", first, last, now)
	}
}
