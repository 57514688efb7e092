package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custodylog/custody/record"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// The generator test (TestAuditTestdata) rewrites ../testdata/audit from the
// tables below when run with -update. Other packages of this module use a
// flag of the same name; define it only if no other file of this package
// did, so that the test binary never panics on a redefined flag.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files from the tables in the tests")
	}
}

func updating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

const testPolicyYAML = `locations:
  us-ash-1: {country: US}
  de-fra-1: {country: DE}
  uk-lon-1: {country: GB}
  sg-sin-1: {country: SG}
  ch-zrh-1: {country: CH}
  ru-mow-1: {country: RU}
regions:
  US:  {allowed: [us-ash-1, ch-zrh-1]}
  EU:  {allowed: [de-fra-1, ch-zrh-1]}
  UK:  {allowed: [uk-lon-1, ch-zrh-1]}
  ROW: {allowed: [sg-sin-1, ch-zrh-1, ru-mow-1]}
max_log_delay: 1h
`

func testPolicy(t testing.TB) *Policy {
	t.Helper()
	p, err := ParsePolicy([]byte(testPolicyYAML))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var t0 = time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)

// ev builds an event from "SAMPLE ACTION LOCATION[>TO] REGION"; time and
// logged are both t0.
func ev(spec string) record.Event {
	f := strings.Fields(spec)
	if len(f) != 4 {
		panic("bad spec " + spec)
	}
	loc, to, _ := strings.Cut(f[2], ">")
	return record.Event{
		Sample: f[0], Action: record.Action(f[1]), Location: loc, To: to, Region: f[3],
		Time: t0, Logged: t0, Actor: "test",
	}
}

// run feeds events to a fresh engine and returns "INDEX KIND" for every
// finding, in order.
func run(t testing.TB, p *Policy, events []record.Event) []string {
	t.Helper()
	e := NewEngine(p)
	var got []string
	for i, x := range events {
		if err := x.Validate(); err != nil {
			t.Fatalf("event %d is invalid: %v", i, err)
		}
		for _, f := range e.Add(uint64(i), x) {
			if f.Index != uint64(i) || f.Sample != x.Sample {
				t.Errorf("finding %+v of event %d (sample %s)", f, i, x.Sample)
			}
			got = append(got, fmt.Sprintf("%d %s", f.Index, f.Kind))
		}
	}
	return got
}

func specs(ss ...string) []record.Event {
	out := make([]record.Event, len(ss))
	for i, s := range ss {
		out[i] = ev(s)
	}
	return out
}

func TestEngineRules(t *testing.T) {
	late := func(spec string, happened, logged time.Time) record.Event {
		e := ev(spec)
		e.Time, e.Logged = happened, logged
		return e
	}
	for _, tc := range []struct {
		name   string
		events []record.Event
		want   []string
	}{
		// reroute
		{"allowed locations only", specs(
			"s1 collected de-fra-1 EU",
			"s1 transferred de-fra-1>ch-zrh-1 EU",
			"s1 analysed ch-zrh-1 EU",
			"s2 collected ru-mow-1 ROW",
			"s2 transferred ru-mow-1>sg-sin-1 ROW",
		), nil},
		{"transfer to a not allowed location, then analysed there", specs(
			"s1 collected de-fra-1 EU",
			"s1 transferred de-fra-1>ru-mow-1 EU",
			"s1 analysed ru-mow-1 EU",
			"s1 deleted ru-mow-1 EU",
		), []string{"1 reroute", "2 reroute", "3 reroute"}},
		{"collected at a not allowed location", specs(
			"s1 collected us-ash-1 EU",
		), []string{"0 reroute"}},
		{"transfer from a not allowed location", specs(
			"s1 collected ru-mow-1 UK",
			"s1 transferred ru-mow-1>uk-lon-1 UK",
		), []string{"0 reroute", "1 reroute"}},
		{"transfer with both ends not allowed: one finding each", specs(
			"s1 collected us-ash-1 EU",
			"s1 transferred us-ash-1>ru-mow-1 EU",
		), []string{"0 reroute", "1 reroute", "1 reroute"}},
		{"reroute judged against the first region", specs(
			"s1 collected de-fra-1 EU",
			"s1 transferred de-fra-1>us-ash-1 US",
			"s1 analysed us-ash-1 US",
		), []string{"1 reroute", "1 region-change", "2 reroute", "2 region-change"}},
		{"unknown event region still checked against the sample's region", specs(
			"s1 collected de-fra-1 EU",
			"s1 transferred de-fra-1>ru-mow-1 XX",
		), []string{"1 unknown-region", "1 reroute", "1 region-change"}},
		{"sample region unknown: no reroute check, later regions neither", specs(
			"s1 collected ru-mow-1 XX",
			"s1 analysed ru-mow-1 EU",
		), []string{"0 unknown-region", "1 region-change"}},

		// unknown-location
		{"unknown location is not also a reroute", specs(
			"s1 collected fr-par-1 EU",
			"s1 analysed fr-par-1 EU",
		), []string{"0 unknown-location", "1 unknown-location"}},
		{"transfer to an unknown location makes the sample present there", specs(
			"s1 collected de-fra-1 EU",
			"s1 transferred de-fra-1>fr-par-1 EU",
			"s1 deleted fr-par-1 EU",
		), []string{"1 unknown-location", "2 unknown-location"}},
		{"transfer from an unknown to a not allowed location", specs(
			"s1 collected fr-par-1 EU",
			"s1 transferred fr-par-1>ru-mow-1 EU",
		), []string{"0 unknown-location", "1 unknown-location", "1 reroute"}},
		{"transfer between two unknown locations", specs(
			"s1 collected fr-par-1 EU",
			"s1 transferred fr-par-1>br-sao-1 EU",
		), []string{"0 unknown-location", "1 unknown-location", "1 unknown-location"}},

		// unknown-region
		{"unknown region", specs(
			"s1 collected sg-sin-1 LATAM",
			"s1 transferred sg-sin-1>ru-mow-1 LATAM",
		), []string{"0 unknown-region", "1 unknown-region"}},
		{"unknown region: continuity still checked", specs(
			"s1 analysed sg-sin-1 LATAM",
		), []string{"0 unknown-region", "0 continuity"}},
		{"unknown region and location", specs(
			"s1 collected fr-par-1 XX",
		), []string{"0 unknown-region", "0 unknown-location"}},

		// continuity
		{"first event is not a collection", specs(
			"s1 stored ch-zrh-1 EU",
		), []string{"0 continuity"}},
		{"first event is a transfer", specs(
			"s1 transferred de-fra-1>ch-zrh-1 EU",
			"s1 analysed ch-zrh-1 EU",
			"s1 deleted de-fra-1 EU",
		), []string{"0 continuity"}},
		{"transfer from where the sample is not present", specs(
			"s1 collected de-fra-1 EU",
			"s1 transferred ch-zrh-1>de-fra-1 EU",
		), []string{"1 continuity"}},
		{"action without a logged arrival: one finding, no cascade", specs(
			"s1 collected de-fra-1 EU",
			"s1 analysed ch-zrh-1 EU",
			"s1 released ch-zrh-1 EU",
			"s1 deleted ch-zrh-1 EU",
			"s1 analysed de-fra-1 EU",
		), []string{"1 continuity"}},
		{"a transfer copies: the source stays", specs(
			"s1 collected de-fra-1 EU",
			"s1 transferred de-fra-1>ch-zrh-1 EU",
			"s1 analysed de-fra-1 EU",
			"s1 analysed ch-zrh-1 EU",
			"s1 transferred ch-zrh-1>de-fra-1 EU",
		), nil},
		{"deleted ends presence there only", specs(
			"s1 collected de-fra-1 EU",
			"s1 transferred de-fra-1>ch-zrh-1 EU",
			"s1 deleted de-fra-1 EU",
			"s1 stored ch-zrh-1 EU",
			"s1 analysed de-fra-1 EU",
		), []string{"4 continuity"}},
		{"deleted where not present changes nothing", specs(
			"s1 collected de-fra-1 EU",
			"s1 deleted ch-zrh-1 EU",
			"s1 deleted ch-zrh-1 EU",
			"s1 stored de-fra-1 EU",
		), []string{"1 continuity", "2 continuity"}},
		{"deleted twice", specs(
			"s1 collected de-fra-1 EU",
			"s1 transferred de-fra-1>ch-zrh-1 EU",
			"s1 deleted ch-zrh-1 EU",
			"s1 deleted ch-zrh-1 EU",
		), []string{"3 continuity"}},
		{"deleted as the first event leaves the sample present nowhere", specs(
			"s1 deleted de-fra-1 EU",
			"s1 stored de-fra-1 EU",
			"s1 collected ch-zrh-1 EU",
		), []string{"0 continuity", "1 continuity"}},
		{"action after deletion everywhere", specs(
			"s1 collected de-fra-1 EU",
			"s1 transferred de-fra-1>ch-zrh-1 EU",
			"s1 deleted de-fra-1 EU",
			"s1 deleted ch-zrh-1 EU",
			"s1 analysed ch-zrh-1 EU",
			"s1 released ch-zrh-1 EU",
		), []string{"4 continuity"}},
		{"collected after deletion everywhere", specs(
			"s1 collected de-fra-1 EU",
			"s1 deleted de-fra-1 EU",
			"s1 collected de-fra-1 EU",
			"s1 stored de-fra-1 EU",
		), []string{"2 continuity"}},
		{"deleted after deletion everywhere stays deleted", specs(
			"s1 collected de-fra-1 EU",
			"s1 deleted de-fra-1 EU",
			"s1 deleted de-fra-1 EU",
			"s1 transferred de-fra-1>ch-zrh-1 EU",
			"s1 analysed ch-zrh-1 EU",
		), []string{"2 continuity", "3 continuity"}},
		{"collected again while present elsewhere is allowed", specs(
			"s1 collected de-fra-1 EU",
			"s1 collected ch-zrh-1 EU",
			"s1 collected ch-zrh-1 EU",
			"s1 deleted de-fra-1 EU",
			"s1 analysed ch-zrh-1 EU",
		), nil},
		{"samples are independent", specs(
			"s1 collected de-fra-1 EU",
			"s2 analysed de-fra-1 EU",
			"s1 deleted de-fra-1 EU",
			"s2 deleted de-fra-1 EU",
		), []string{"1 continuity"}},

		// region-change
		{"region change on every event under another region", specs(
			"s1 collected ch-zrh-1 EU",
			"s1 stored ch-zrh-1 US",
			"s1 analysed ch-zrh-1 US",
			"s1 released ch-zrh-1 EU",
			"s1 deleted ch-zrh-1 UK",
		), []string{"1 region-change", "2 region-change", "4 region-change"}},

		// late
		{"late", []record.Event{
			late("s1 collected de-fra-1 EU", t0, t0.Add(time.Hour)),
			late("s2 collected de-fra-1 EU", t0, t0.Add(time.Hour+time.Second)),
			late("s3 collected de-fra-1 EU", t0.Add(record.MaxFutureSkew), t0),
			late("s4 collected de-fra-1 EU", t0.Add(record.MaxFutureSkew+time.Second), t0),
			late("s5 collected de-fra-1 EU", t0, time.Time{}),
			late("s6 collected de-fra-1 EU", t0.Add(-24*time.Hour), time.Time{}),
		}, []string{"1 late", "3 late"}},

		// order of the kinds within one event
		{"every kind on one event, in the fixed order", []record.Event{
			ev("s1 collected de-fra-1 EU"),
			late("s1 transferred fr-par-1>ru-mow-1 XX", t0.Add(-2*time.Hour), t0),
		}, []string{"1 unknown-region", "1 unknown-location", "1 reroute", "1 continuity", "1 region-change", "1 late"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := run(t, testPolicy(t), tc.events)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEngineMaxLogDelay(t *testing.T) {
	p := testPolicy(t)
	p.MaxLogDelay = 10 * time.Minute
	a, b := ev("s1 collected de-fra-1 EU"), ev("s2 collected de-fra-1 EU")
	a.Time = t0.Add(-10 * time.Minute)
	b.Time = t0.Add(-10*time.Minute - time.Second)
	if diff := cmp.Diff([]string{"1 late"}, run(t, p, []record.Event{a, b})); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
}

// TestEngineDetails pins the wording of every kind of detail.
func TestEngineDetails(t *testing.T) {
	events := specs(
		"s1 collected de-fra-1 EU",            // 0
		"s1 transferred de-fra-1>ru-mow-1 EU", // 1 reroute to
		"s1 analysed ru-mow-1 EU",             // 2 reroute at
		"s1 transferred ru-mow-1>de-fra-1 EU", // 3 reroute from
		"s2 stored ch-zrh-1 US",               // 4 continuity, no earlier event
		"s1 stored ch-zrh-1 EU",               // 5 continuity, present at
		"s3 collected fr-par-1 LATAM",         // 6 unknown region and location
		"s3 transferred fr-par-1>br-sao-1 LATAM",
		"s4 collected uk-lon-1 UK", // 8
		"s4 deleted uk-lon-1 UK",   // 9
		"s4 released uk-lon-1 UK",  // 10 after deletion everywhere
		"s4 stored uk-lon-1 ROW",   // 11 region change
		"s5 deleted uk-lon-1 UK",   // 12 continuity, no earlier event
		"s5 deleted uk-lon-1 UK",   // 13 continuity, present nowhere
	)
	events = append(events, ev("s6 collected ch-zrh-1 EU"), ev("s6 collected ch-zrh-1 EU"))
	events[14].Time = t0.Add(-90 * time.Minute)
	events[15].Time = t0.Add(7*time.Minute + 30*time.Second)
	want := []Finding{
		{1, "s1", KindReroute, "transferred to ru-mow-1 (RU), not allowed for region EU (allowed: de-fra-1, ch-zrh-1)"},
		{2, "s1", KindReroute, "analysed at ru-mow-1 (RU), not allowed for region EU (allowed: de-fra-1, ch-zrh-1)"},
		{3, "s1", KindReroute, "transferred from ru-mow-1 (RU), not allowed for region EU (allowed: de-fra-1, ch-zrh-1)"},
		{4, "s2", KindContinuity, "stored at ch-zrh-1, where the sample is not present (no earlier event of the sample)"},
		{5, "s1", KindContinuity, "stored at ch-zrh-1, where the sample is not present (present at de-fra-1, ru-mow-1)"},
		{6, "s3", KindUnknownRegion, "region LATAM is not in the policy"},
		{6, "s3", KindUnknownLocation, "location fr-par-1 is not in the policy"},
		{7, "s3", KindUnknownRegion, "region LATAM is not in the policy"},
		{7, "s3", KindUnknownLocation, "location fr-par-1 is not in the policy"},
		{7, "s3", KindUnknownLocation, "transfer destination br-sao-1 is not in the policy"},
		{10, "s4", KindContinuity, "released at uk-lon-1 after deletion everywhere (deleted everywhere at index 9)"},
		{11, "s4", KindRegionChange, "logged under region ROW, but the sample's region is UK (first logged at index 8)"},
		{12, "s5", KindContinuity, "deleted at uk-lon-1, where the sample is not present (no earlier event of the sample)"},
		{13, "s5", KindContinuity, "deleted at uk-lon-1, where the sample is not present (present nowhere)"},
		{14, "s6", KindLate, "logged 1h30m0s after its time, more than max_log_delay 1h0m0s"},
		{15, "s6", KindLate, "time is 7m30s after it was logged, more than the allowed skew of 5m0s"},
	}
	e := NewEngine(testPolicy(t))
	var got []Finding
	for i, x := range events {
		got = append(got, e.Add(uint64(i), x)...)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
}

// TestEngineOddInput checks that events that do not validate, which Add is
// not meant to get, still give deterministic, quoted details.
func TestEngineOddInput(t *testing.T) {
	e := NewEngine(testPolicy(t))
	got := e.Add(0, record.Event{Sample: "x", Action: "teleported", Location: "Mars\n", Region: "eu"})
	want := []Finding{
		{0, "x", KindUnknownRegion, `region "eu" is not in the policy`},
		{0, "x", KindUnknownLocation, `location "Mars\n" is not in the policy`},
		{0, "x", KindContinuity, `"teleported" at "Mars\n", where the sample is not present (no earlier event of the sample)`},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
}

func TestEngineAddOutOfOrder(t *testing.T) {
	e := NewEngine(testPolicy(t))
	e.Add(0, ev("s1 collected de-fra-1 EU"))
	for _, i := range []uint64{0, 2} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Add(%d) after Add(0) did not panic", i)
				}
			}()
			e.Add(i, ev("s1 stored de-fra-1 EU"))
		}()
	}
	if e.Next() != 1 {
		t.Errorf("Next() = %d, want 1", e.Next())
	}
}

func TestEngineCounts(t *testing.T) {
	e := NewEngine(testPolicy(t))
	for i, x := range specs(
		"s1 collected de-fra-1 EU",
		"s1 transferred de-fra-1>ch-zrh-1 EU",
		"s1 analysed ch-zrh-1 EU",
		"s2 collected fr-par-1 XX",
		"s2 stored fr-par-1 XX",
		"s1 deleted ch-zrh-1 US",
	) {
		e.Add(uint64(i), x)
	}
	want := map[string]map[string]uint64{
		"EU": {"de-fra-1": 2, "ch-zrh-1": 1},
		"XX": {"fr-par-1": 2},
		"US": {"ch-zrh-1": 1},
	}
	got := e.Counts()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Counts (-want +got):\n%s", diff)
	}
	got["EU"]["de-fra-1"] = 99 // the caller's copy
	if diff := cmp.Diff(want, e.Counts()); diff != "" {
		t.Errorf("Counts changed by the caller (-want +got):\n%s", diff)
	}
	if e.Next() != 6 {
		t.Errorf("Next() = %d, want 6", e.Next())
	}
}

// randomEvents returns n valid events over a few samples, locations and
// regions, in log order, so that every kind of state occurs.
func randomEvents(seed uint64, n int) []record.Event {
	r := rand.New(rand.NewPCG(seed, 1))
	locs := []string{"de-fra-1", "ch-zrh-1", "ru-mow-1", "us-ash-1", "fr-par-1"}
	regions := []string{"EU", "EU", "US", "ROW", "XX"}
	actions := []record.Action{record.Collected, record.Transferred, record.Stored, record.Analysed, record.Released, record.Deleted, record.Deleted}
	out := make([]record.Event, n)
	for i := range out {
		e := record.Event{
			Sample:   fmt.Sprintf("s%d", r.IntN(6)),
			Action:   actions[r.IntN(len(actions))],
			Location: locs[r.IntN(len(locs))],
			Region:   regions[r.IntN(len(regions))],
			Actor:    "rand",
			Logged:   t0.Add(time.Duration(i) * time.Minute),
		}
		e.Time = e.Logged.Add(-time.Duration(r.IntN(80)) * time.Minute)
		if e.Action == record.Transferred {
			for e.To = locs[r.IntN(len(locs))]; e.To == e.Location; e.To = locs[r.IntN(len(locs))] {
			}
		}
		out[i] = e
	}
	return out
}

// TestEngineStateRoundTrip checks that stopping after any k events, saving
// the state and resuming in a fresh engine gives exactly what one pass
// gives: the same findings, counts and final state.
func TestEngineStateRoundTrip(t *testing.T) {
	p := testPolicy(t)
	sets := map[string][]record.Event{
		"random-1": randomEvents(1, 120),
		"random-2": randomEvents(2, 120),
	}
	for _, name := range []string{"clean", "dirty"} {
		sets[name] = readAuditEvents(t, name+".jsonl")
	}
	for name, events := range sets {
		t.Run(name, func(t *testing.T) {
			one := NewEngine(p)
			var want []Finding
			for i, x := range events {
				want = append(want, one.Add(uint64(i), x)...)
			}
			wantState, err := one.MarshalState()
			if err != nil {
				t.Fatal(err)
			}
			for k := 0; k <= len(events); k++ {
				a := NewEngine(p)
				var got []Finding
				for i := 0; i < k; i++ {
					got = append(got, a.Add(uint64(i), events[i])...)
				}
				state, err := a.MarshalState()
				if err != nil {
					t.Fatal(err)
				}
				b := NewEngine(p)
				if err := b.UnmarshalState(state); err != nil {
					t.Fatalf("k=%d: UnmarshalState: %v\n%s", k, err, state)
				}
				if again, _ := b.MarshalState(); !bytes.Equal(again, state) {
					t.Fatalf("k=%d: state does not round-trip:\n%s\n%s", k, state, again)
				}
				if b.Next() != uint64(k) {
					t.Fatalf("k=%d: Next() = %d after resuming", k, b.Next())
				}
				for i := k; i < len(events); i++ {
					got = append(got, b.Add(uint64(i), events[i])...)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Fatalf("k=%d: findings differ from one pass (-want +got):\n%s", k, diff)
				}
				if diff := cmp.Diff(one.Counts(), b.Counts()); diff != "" {
					t.Fatalf("k=%d: counts differ from one pass (-want +got):\n%s", k, diff)
				}
				if final, _ := b.MarshalState(); !bytes.Equal(final, wantState) {
					t.Fatalf("k=%d: final state differs from one pass:\n%s\n%s", k, wantState, final)
				}
			}
		})
	}
}

func TestEngineStateFormat(t *testing.T) {
	e := NewEngine(testPolicy(t))
	for i, x := range specs(
		"s2 collected de-fra-1 EU",
		"s2 transferred de-fra-1>ch-zrh-1 EU",
		"s1 collected us-ash-1 US",
		"s1 deleted us-ash-1 US",
	) {
		e.Add(uint64(i), x)
	}
	got, err := e.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"version":1,"next":4,"samples":{"s1":{"region":"US","first":2,"gone":3},"s2":{"region":"EU","first":0,"present":["ch-zrh-1","de-fra-1"]}},"counts":{"EU":{"de-fra-1":2},"US":{"us-ash-1":2}}}`
	if string(got) != want {
		t.Errorf("MarshalState =\n%s\nwant\n%s", got, want)
	}
	empty, _ := NewEngine(testPolicy(t)).MarshalState()
	if want := `{"version":1,"next":0,"samples":{},"counts":{}}`; string(empty) != want {
		t.Errorf("MarshalState of a new engine = %s, want %s", empty, want)
	}
}

func TestEngineUnmarshalStateRejects(t *testing.T) {
	for _, tc := range []struct{ name, state, want string }{
		{"empty", ``, "EOF"},
		{"not an object", `[]`, "cannot unmarshal array"},
		{"version", `{"version":2,"next":0,"samples":{},"counts":{}}`, "version 2, want 1"},
		{"unknown field", `{"version":1,"next":0,"samples":{},"counts":{},"x":1}`, `unknown field "x"`},
		{"trailing data", `{"version":1,"next":0,"samples":{},"counts":{}} {}`, "data after the JSON object"},
		{"trailing garbage", `{"version":1,"next":0,"samples":{},"counts":{}}x`, "data after the JSON object"},
		{"first not below next", `{"version":1,"next":1,"samples":{"s":{"region":"EU","first":1}},"counts":{"EU":{"de-fra-1":1}}}`, "first index 1 not below next 1"},
		{"present unsorted", `{"version":1,"next":2,"samples":{"s":{"region":"EU","first":0,"present":["de-fra-1","ch-zrh-1"]}},"counts":{"EU":{"de-fra-1":2}}}`, "not sorted and distinct"},
		{"present duplicate", `{"version":1,"next":2,"samples":{"s":{"region":"EU","first":0,"present":["de-fra-1","de-fra-1"]}},"counts":{"EU":{"de-fra-1":2}}}`, "not sorted and distinct"},
		{"present and gone", `{"version":1,"next":2,"samples":{"s":{"region":"EU","first":0,"present":["de-fra-1"],"gone":1}},"counts":{"EU":{"de-fra-1":2}}}`, "both present and deleted everywhere"},
		{"gone out of range", `{"version":1,"next":2,"samples":{"s":{"region":"EU","first":0,"gone":2}},"counts":{"EU":{"de-fra-1":2}}}`, "deletion index 2 outside 0..1"},
		{"zero count", `{"version":1,"next":1,"samples":{},"counts":{"EU":{"de-fra-1":1,"ch-zrh-1":0}}}`, "zero count"},
		{"counts do not add up", `{"version":1,"next":3,"samples":{},"counts":{"EU":{"de-fra-1":2}}}`, "counts add up to 2 events, want next = 3"},
		{"negative next", `{"version":1,"next":-1,"samples":{},"counts":{}}`, "cannot unmarshal number -1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := NewEngine(testPolicy(t))
			e.Add(0, ev("s1 collected de-fra-1 EU"))
			before, _ := e.MarshalState()
			err := e.UnmarshalState([]byte(tc.state))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("UnmarshalState(%s) = %v, want an error containing %q", tc.state, err, tc.want)
			}
			if after, _ := e.MarshalState(); !bytes.Equal(before, after) {
				t.Errorf("rejected UnmarshalState changed the engine:\n%s\n%s", before, after)
			}
		})
	}
}

// The audit test data: ../testdata/audit/{clean,dirty}.jsonl are the
// canonical entries (with logged) of the tables below, and
// dirty.findings.json is the list of findings written by hand next to the
// dirty events. Run `go test ./verify -run TestAuditTestdata -update` to
// rewrite the files after changing a table.

const auditDir = "../testdata/audit"

// auditRow is one event of an audit data set. Its logged time is
// auditBase + 90s × index; its time is delay before that (the default
// delay varies between 5s and 40s; negative means the time is after
// logged).
type auditRow struct {
	sample, action, loc, to, region string
	delay                           string // time.ParseDuration syntax, "" for the default
	note                            string
	want                            []string // "kind: detail", in order
}

var auditBase = time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)

var cleanRows = []auditRow{
	{sample: "smp-eu-7f3a", action: "collected", loc: "de-fra-1", region: "EU", note: "submitted by endpoint agent"},
	{sample: "smp-us-19c2", action: "collected", loc: "us-ash-1", region: "US"},
	{sample: "smp-eu-7f3a", action: "transferred", loc: "de-fra-1", to: "ch-zrh-1", region: "EU"},
	{sample: "smp-row-5e10", action: "collected", loc: "sg-sin-1", region: "ROW"},
	{sample: "smp-us-19c2", action: "stored", loc: "us-ash-1", region: "US"},
	{sample: "smp-eu-7f3a", action: "stored", loc: "ch-zrh-1", region: "EU"},
	{sample: "smp-uk-a001", action: "collected", loc: "uk-lon-1", region: "UK"},
	{sample: "smp-row-5e10", action: "transferred", loc: "sg-sin-1", to: "ru-mow-1", region: "ROW"},
	{sample: "smp-eu-7f3a", action: "analysed", loc: "ch-zrh-1", region: "EU", note: "static and dynamic analysis"},
	{sample: "smp-us-19c2", action: "analysed", loc: "us-ash-1", region: "US"},
	{sample: "smp-uk-a001", action: "stored", loc: "uk-lon-1", region: "UK"},
	{sample: "smp-eu-0b77", action: "collected", loc: "de-fra-1", region: "EU"},
	{sample: "smp-row-5e10", action: "analysed", loc: "ru-mow-1", region: "ROW"},
	{sample: "smp-eu-7f3a", action: "deleted", loc: "de-fra-1", region: "EU", note: "edge copy purged after transfer"},
	{sample: "smp-us-19c2", action: "transferred", loc: "us-ash-1", to: "ch-zrh-1", region: "US"},
	{sample: "smp-eu-0b77", action: "collected", loc: "ch-zrh-1", region: "EU", note: "second submission of the same file"},
	{sample: "smp-uk-a001", action: "transferred", loc: "uk-lon-1", to: "ch-zrh-1", region: "UK"},
	{sample: "smp-us-d4e8", action: "collected", loc: "us-ash-1", region: "US", delay: "1h", note: "uploaded from an offline site, exactly at the limit"},
	{sample: "smp-eu-7f3a", action: "released", loc: "ch-zrh-1", region: "EU", note: "verdict: malicious"},
	{sample: "smp-us-19c2", action: "analysed", loc: "ch-zrh-1", region: "US"},
	{sample: "smp-row-5e10", action: "transferred", loc: "ru-mow-1", to: "ch-zrh-1", region: "ROW"},
	{sample: "smp-eu-0b77", action: "stored", loc: "ch-zrh-1", region: "EU"},
	{sample: "smp-uk-a001", action: "analysed", loc: "ch-zrh-1", region: "UK"},
	{sample: "smp-us-d4e8", action: "analysed", loc: "us-ash-1", region: "US", delay: "-5m", note: "sandbox clock ahead, within the allowed skew"},
	{sample: "smp-row-5e10", action: "analysed", loc: "ch-zrh-1", region: "ROW"},
	{sample: "smp-eu-7f3a", action: "deleted", loc: "ch-zrh-1", region: "EU", note: "retention period over"},
	{sample: "smp-us-19c2", action: "released", loc: "ch-zrh-1", region: "US"},
	{sample: "smp-eu-0b77", action: "analysed", loc: "ch-zrh-1", region: "EU"},
	{sample: "smp-uk-a001", action: "deleted", loc: "uk-lon-1", region: "UK"},
	{sample: "smp-row-c3c3", action: "collected", loc: "ru-mow-1", region: "ROW"},
	{sample: "smp-us-d4e8", action: "released", loc: "us-ash-1", region: "US"},
	{sample: "smp-row-5e10", action: "released", loc: "ch-zrh-1", region: "ROW"},
	{sample: "smp-eu-0b77", action: "transferred", loc: "ch-zrh-1", to: "de-fra-1", region: "EU", note: "back to the edge for the customer's copy"},
	{sample: "smp-us-19c2", action: "deleted", loc: "us-ash-1", region: "US"},
	{sample: "smp-row-c3c3", action: "stored", loc: "ru-mow-1", region: "ROW"},
	{sample: "smp-uk-a001", action: "released", loc: "ch-zrh-1", region: "UK"},
	{sample: "smp-row-5e10", action: "deleted", loc: "sg-sin-1", region: "ROW"},
	{sample: "smp-eu-0b77", action: "deleted", loc: "ch-zrh-1", region: "EU"},
	{sample: "smp-us-d4e8", action: "deleted", loc: "us-ash-1", region: "US"},
	{sample: "smp-us-19c2", action: "deleted", loc: "ch-zrh-1", region: "US"},
	{sample: "smp-row-c3c3", action: "analysed", loc: "ru-mow-1", region: "ROW"},
	{sample: "smp-row-5e10", action: "deleted", loc: "ru-mow-1", region: "ROW"},
	{sample: "smp-eu-0b77", action: "analysed", loc: "de-fra-1", region: "EU"},
	{sample: "smp-row-5e10", action: "deleted", loc: "ch-zrh-1", region: "ROW"},
}

var dirtyRows = []auditRow{
	/* 0 */ {sample: "smp-eu-1111", action: "collected", loc: "de-fra-1", region: "EU"},
	/* 1 */ {sample: "smp-us-2222", action: "collected", loc: "us-ash-1", region: "US"},
	/* 2 */ {sample: "smp-eu-1111", action: "transferred", loc: "de-fra-1", to: "ru-mow-1", region: "EU",
		want: []string{"reroute: transferred to ru-mow-1 (RU), not allowed for region EU (allowed: de-fra-1, ch-zrh-1)"}},
	/* 3 */ {sample: "smp-eu-1111", action: "analysed", loc: "ru-mow-1", region: "EU",
		want: []string{"reroute: analysed at ru-mow-1 (RU), not allowed for region EU (allowed: de-fra-1, ch-zrh-1)"}},
	/* 4 */ {sample: "smp-us-2222", action: "stored", loc: "us-ash-1", region: "US"},
	/* 5 */ {sample: "smp-us-2222", action: "analysed", loc: "ch-zrh-1", region: "US", note: "no transfer to ch-zrh-1 was logged",
		want: []string{"continuity: analysed at ch-zrh-1, where the sample is not present (present at us-ash-1)"}},
	/* 6 */ {sample: "smp-uk-3333", action: "collected", loc: "uk-lon-1", region: "UK"},
	/* 7 */ {sample: "smp-uk-3333", action: "analysed", loc: "uk-lon-1", region: "UK"},
	/* 8 */ {sample: "smp-uk-3333", action: "deleted", loc: "uk-lon-1", region: "UK"},
	/* 9 */ {sample: "smp-uk-3333", action: "released", loc: "uk-lon-1", region: "UK",
		want: []string{"continuity: released at uk-lon-1 after deletion everywhere (deleted everywhere at index 8)"}},
	/* 10 */ {sample: "smp-eu-4444", action: "collected", loc: "ch-zrh-1", region: "EU"},
	/* 11 */ {sample: "smp-eu-4444", action: "stored", loc: "ch-zrh-1", region: "US",
		want: []string{"region-change: logged under region US, but the sample's region is EU (first logged at index 10)"}},
	/* 12 */ {sample: "smp-row-5555", action: "collected", loc: "sg-sin-1", region: "ROW", delay: "3h",
		want: []string{"late: logged 3h0m0s after its time, more than max_log_delay 1h0m0s"}},
	/* 13 */ {sample: "smp-row-5555", action: "transferred", loc: "sg-sin-1", to: "fr-par-1", region: "ROW",
		want: []string{"unknown-location: transfer destination fr-par-1 is not in the policy"}},
	/* 14 */ {sample: "smp-row-5555", action: "analysed", loc: "fr-par-1", region: "ROW", delay: "-20m",
		want: []string{
			"unknown-location: location fr-par-1 is not in the policy",
			"late: time is 20m0s after it was logged, more than the allowed skew of 5m0s",
		}},
	/* 15 */ {sample: "smp-la-6666", action: "collected", loc: "sg-sin-1", region: "LATAM",
		want: []string{"unknown-region: region LATAM is not in the policy"}},
	/* 16 */ {sample: "smp-la-6666", action: "transferred", loc: "sg-sin-1", to: "ru-mow-1", region: "LATAM",
		want: []string{"unknown-region: region LATAM is not in the policy"}},
	/* 17 */ {sample: "smp-eu-1111", action: "deleted", loc: "ru-mow-1", region: "EU",
		want: []string{"reroute: deleted at ru-mow-1 (RU), not allowed for region EU (allowed: de-fra-1, ch-zrh-1)"}},
	/* 18 */ {sample: "smp-eu-1111", action: "deleted", loc: "de-fra-1", region: "EU"},
	/* 19 */ {sample: "smp-us-2222", action: "transferred", loc: "us-ash-1", to: "ch-zrh-1", region: "US"},
	/* 20 */ {sample: "smp-eu-7777", action: "collected", loc: "de-fra-1", region: "EU"},
	/* 21 */ {sample: "smp-eu-7777", action: "transferred", loc: "br-sao-1", to: "ru-mow-1", region: "XX", delay: "2h",
		want: []string{
			"unknown-region: region XX is not in the policy",
			"unknown-location: location br-sao-1 is not in the policy",
			"reroute: transferred to ru-mow-1 (RU), not allowed for region EU (allowed: de-fra-1, ch-zrh-1)",
			"continuity: transferred from br-sao-1, where the sample is not present (present at de-fra-1)",
			"region-change: logged under region XX, but the sample's region is EU (first logged at index 20)",
			"late: logged 2h0m0s after its time, more than max_log_delay 1h0m0s",
		}},
	/* 22 */ {sample: "smp-us-2222", action: "deleted", loc: "us-ash-1", region: "US"},
	/* 23 */ {sample: "smp-us-2222", action: "deleted", loc: "ch-zrh-1", region: "US"},
	/* 24 */ {sample: "smp-row-5555", action: "deleted", loc: "sg-sin-1", region: "ROW"},
	/* 25 */ {sample: "smp-eu-4444", action: "deleted", loc: "ch-zrh-1", region: "EU"},
	/* 26 */ {sample: "smp-eu-1111", action: "analysed", loc: "ch-zrh-1", region: "EU", note: "analysed after every copy was deleted",
		want: []string{"continuity: analysed at ch-zrh-1 after deletion everywhere (deleted everywhere at index 18)"}},
}

var rowActors = map[string]string{
	"collected":   "edge-collector/4.2",
	"transferred": "transfer-svc/2.3",
	"stored":      "vault",
	"analysed":    "sandbox-7",
	"released":    "verdict-publisher",
	"deleted":     "retention",
}

// auditEvents turns rows into the log entries they stand for and the
// findings written next to them.
func auditEvents(t testing.TB, rows []auditRow) ([]record.Event, []Finding) {
	t.Helper()
	var events []record.Event
	var findings []Finding
	for i, r := range rows {
		delay := time.Duration(5+(i*37)%36) * time.Second
		if r.delay != "" {
			var err error
			if delay, err = time.ParseDuration(r.delay); err != nil {
				t.Fatal(err)
			}
		}
		logged := auditBase.Add(time.Duration(i) * 90 * time.Second)
		customer := sha256.Sum256([]byte("customer of " + r.sample))
		e := record.Event{
			Sample: r.sample, Action: record.Action(r.action), Location: r.loc, To: r.to, Region: r.region,
			Customer: hex.EncodeToString(customer[:]),
			Time:     logged.Add(-delay), Logged: logged,
			Actor: rowActors[r.action], Note: r.note,
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		events = append(events, e)
		for _, w := range r.want {
			kind, detail, _ := strings.Cut(w, ": ")
			findings = append(findings, Finding{Index: uint64(i), Sample: r.sample, Kind: Kind(kind), Detail: detail})
		}
	}
	return events, findings
}

func jsonl(events []record.Event) []byte {
	var b []byte
	for _, e := range events {
		b = append(b, e.Canonical()...)
		b = append(b, '\n')
	}
	return b
}

// readAuditEvents reads a JSON-lines file of log entries from auditDir.
func readAuditEvents(t testing.TB, name string) []record.Event {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(auditDir, name))
	if err != nil {
		t.Fatal(err)
	}
	var events []record.Event
	for i, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		e, err := record.DecodeEntry(line)
		if err != nil {
			t.Fatalf("%s:%d: %v", name, i+1, err)
		}
		events = append(events, e)
	}
	return events
}

// TestAuditTestdata checks the audit test data against its tables (and with
// -update rewrites it from them), then checks that the clean set has no
// findings and the dirty set exactly those in dirty.findings.json.
func TestAuditTestdata(t *testing.T) {
	cleanEvents, cleanWant := auditEvents(t, cleanRows)
	dirtyEvents, dirtyWant := auditEvents(t, dirtyRows)
	if len(cleanWant) != 0 {
		t.Fatalf("clean rows expect findings: %v", cleanWant)
	}
	findingsJSON, err := json.MarshalIndent(dirtyWant, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"clean.jsonl":         jsonl(cleanEvents),
		"dirty.jsonl":         jsonl(dirtyEvents),
		"dirty.findings.json": append(findingsJSON, '\n'),
	}
	for name, want := range files {
		path := filepath.Join(auditDir, name)
		if updating() {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s does not match the table in this test; run with -update to rewrite it", path)
		}
	}

	p, err := LoadPolicy(filepath.Join(auditDir, "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	audit := func(name string) ([]Finding, map[string]map[string]uint64) {
		e := NewEngine(p)
		var fs []Finding
		for i, x := range readAuditEvents(t, name) {
			fs = append(fs, e.Add(uint64(i), x)...)
		}
		return fs, e.Counts()
	}

	clean, counts := audit("clean.jsonl")
	if len(clean) != 0 {
		t.Errorf("clean.jsonl has findings:\n%v", clean)
	}
	if len(cleanEvents) < 40 {
		t.Errorf("clean.jsonl has %d events, want at least 40", len(cleanEvents))
	}
	var total uint64
	for _, m := range counts {
		for _, n := range m {
			total += n
		}
	}
	if total != uint64(len(cleanEvents)) || len(counts) != 4 {
		t.Errorf("clean.jsonl counts %v: %d events in %d regions", counts, total, len(counts))
	}

	var want []Finding
	b, err := os.ReadFile(filepath.Join(auditDir, "dirty.findings.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	dirty, _ := audit("dirty.jsonl")
	if diff := cmp.Diff(want, dirty); diff != "" {
		t.Errorf("dirty.jsonl findings (-dirty.findings.json +got):\n%s", diff)
	}
	kinds := map[Kind]bool{}
	for _, f := range want {
		kinds[f.Kind] = true
	}
	for _, k := range []Kind{KindReroute, KindUnknownLocation, KindUnknownRegion, KindContinuity, KindRegionChange, KindLate} {
		if !kinds[k] {
			t.Errorf("dirty.findings.json has no %s finding", k)
		}
	}
}

// TestAuditPolicyMatchesExample keeps testdata/audit/policy.yaml the same
// policy as the example policy and the one these tests use.
func TestAuditPolicyMatchesExample(t *testing.T) {
	a, err := LoadPolicy(filepath.Join(auditDir, "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadPolicy("../testdata/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("testdata/audit/policy.yaml differs from testdata/policy.yaml:\n%s", diff)
	}
	if diff := cmp.Diff(testPolicy(t), a); diff != "" {
		t.Errorf("testPolicyYAML differs from testdata/audit/policy.yaml:\n%s", diff)
	}
}

// BenchmarkEngineAdd measures the engine on a steady workload: each sample
// is collected, transferred, stored, analysed, released and deleted at both
// places, 7 events, with a reroute finding on one sample in 16.
func BenchmarkEngineAdd(b *testing.B) {
	p := testPolicy(b)
	names := make([]string, b.N/7+1)
	for i := range names {
		names[i] = fmt.Sprintf("smp-%08x", i)
	}
	pattern := []record.Event{
		ev("x collected de-fra-1 EU"),
		ev("x transferred de-fra-1>ch-zrh-1 EU"),
		ev("x stored ch-zrh-1 EU"),
		ev("x analysed ch-zrh-1 EU"),
		ev("x released ch-zrh-1 EU"),
		ev("x deleted de-fra-1 EU"),
		ev("x deleted ch-zrh-1 EU"),
	}
	e := NewEngine(p)
	findings := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		x := pattern[i%7]
		x.Sample = names[i/7]
		if i/7%16 == 0 && x.Action == record.Analysed {
			x.Location = "ru-mow-1"
		}
		findings += len(e.Add(uint64(i), x))
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if findings == 0 && b.N > 7*16 {
		b.Fatal("no findings")
	}
}

// TestEngineSkipPerSample checks the claim Skip documents: an engine fed
// only one sample's events (Skip to each index, then Add) reports exactly
// the findings a full audit reports for that sample.
func TestEngineSkipPerSample(t *testing.T) {
	p, err := LoadPolicy(filepath.Join(auditDir, "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	events := readAuditEvents(t, "dirty.jsonl")
	full := NewEngine(p)
	bySample := map[string][]Finding{}
	indexes := map[string][]int{}
	for i, ev := range events {
		bySample[ev.Sample] = append(bySample[ev.Sample], full.Add(uint64(i), ev)...)
		indexes[ev.Sample] = append(indexes[ev.Sample], i)
	}
	if len(indexes) < 5 {
		t.Fatalf("dirty.jsonl has %d samples; the test needs several", len(indexes))
	}
	withFindings := 0
	for sample, idx := range indexes {
		e := NewEngine(p)
		var got []Finding
		for _, i := range idx {
			e.Skip(uint64(i))
			got = append(got, e.Add(uint64(i), events[i])...)
		}
		if diff := cmp.Diff(bySample[sample], got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("sample %s alone (-full audit +per-sample):\n%s", sample, diff)
		}
		if len(got) > 0 {
			withFindings++
		}
	}
	if withFindings == 0 {
		t.Fatal("no sample has findings: the test proves nothing")
	}
	defer func() {
		if recover() == nil {
			t.Error("Skip backwards did not panic")
		}
	}()
	e := NewEngine(p)
	e.Skip(5)
	e.Skip(4)
}
