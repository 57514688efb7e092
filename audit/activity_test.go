package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/custodylog/custody/activity"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/stats"
	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/verify"
)

// benchFlows counts, independently of package activity, the transferred
// events per (region, from, to) and the collected events per (region,
// location) of entries [from, to) of the benchmark log.
func benchFlows(from, to int) (map[activity.Edge]uint64, map[[2]string]uint64) {
	flows, colls := map[activity.Edge]uint64{}, map[[2]string]uint64{}
	auditBenchEvents(to, func(i int, ev record.Event) {
		switch {
		case i < from:
		case ev.Action == record.Transferred:
			flows[activity.Edge{Region: ev.Region, From: ev.Location, To: ev.To}]++
		case ev.Action == record.Collected:
			colls[[2]string{ev.Region, ev.Location}]++
		}
	})
	return flows, colls
}

func flowMap(fs []activity.Flow) map[activity.Edge]uint64 {
	m := map[activity.Edge]uint64{}
	for _, f := range fs {
		m[f.Edge] = f.Events
	}
	return m
}

func collMap(cs []activity.Collection) map[[2]string]uint64 {
	m := map[[2]string]uint64{}
	for _, c := range cs {
		m[[2]string{c.Region, c.Location}] = c.Events
	}
	return m
}

// TestAuditActivity: the audit report's flows and collections are those
// of every event of the log, counted independently here, on a first run
// and on an incremental one continuing from the state (written to disk
// and read back), whose report covers the whole log, not only the new
// entries; its aggregate and state are those of a single audit; --json
// carries them; and they equal the server's counter's for the same log.
func TestAuditActivity(t *testing.T) {
	pol, err := LoadPolicy(filepath.Join("..", "testdata", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	signer, vkey := auditBenchKey(t)
	ctx := context.Background()
	run := func(dir string, o AuditOptions) (*AuditReport, *AuditState) {
		t.Helper()
		o.Policy = pol
		c := verify.NewClient(verify.NewDirSource(dir), auditBenchOrigin, mustVerifiers(t, vkey), nil)
		rep, st, err := Audit(ctx, c, o)
		if err != nil {
			t.Fatal(err)
		}
		return rep, st
	}
	const n1, n2 = 3*verify.TileWidth + 100, 9*verify.TileWidth + 5
	small, big := t.TempDir(), t.TempDir()
	for dir, n := range map[string]int{small: n1, big: n2} {
		if _, _, err := writeAuditBenchLog(dir, n, signer); err != nil {
			t.Fatal(err)
		}
	}
	check := func(name string, rep *AuditReport, from, to int) {
		t.Helper()
		flows, colls := benchFlows(from, to)
		if got := flowMap(rep.Flows); !reflect.DeepEqual(got, flows) || len(flows) != len(auditBenchRoutes) {
			t.Errorf("%s: flows %v, counted %v", name, got, flows)
		}
		if got := collMap(rep.Collections); !reflect.DeepEqual(got, colls) || len(colls) == 0 {
			t.Errorf("%s: collections %v, counted %v", name, got, colls)
		}
		if rep.ActivityFrom != uint64(from) || rep.Activity == nil || !reflect.DeepEqual(rep.Activity.Flows(), rep.Flows) {
			t.Errorf("%s: activity from %d (want %d), aggregate %v", name, rep.ActivityFrom, from, rep.Activity != nil)
		}
	}

	rep1, st1 := run(small, AuditOptions{})
	check("first run", rep1, 0, n1)
	stateDir := t.TempDir()
	if err := WriteState(stateDir, st1); err != nil {
		t.Fatal(err)
	}
	read, err := ReadState(stateDir)
	if err != nil || !bytes.Equal(read.Activity, st1.Activity) || len(read.Activity) == 0 {
		t.Fatalf("state read back: %v, activity kept %v", err, read != nil && bytes.Equal(read.Activity, st1.Activity))
	}
	rep2, st2 := run(big, AuditOptions{State: read})
	check("incremental run", rep2, 0, n2)
	if rep2.From != n1 {
		t.Errorf("incremental run from %d, want %d", rep2.From, n1)
	}
	one, oneSt := run(big, AuditOptions{})
	a, _ := rep2.Activity.MarshalBinary()
	b, _ := one.Activity.MarshalBinary()
	if !bytes.Equal(a, b) || !bytes.Equal(st2.Activity, oneSt.Activity) || st2.ActivityFrom != 0 {
		t.Error("the incremental run's aggregate or state differs from a single audit's")
	}
	full, _ := run(big, AuditOptions{State: st1, Full: true})
	check("full run with a state", full, 0, n2)

	// --json has the flows and collections.
	js, err := json.Marshal(rep2)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Flows        []activity.Flow       `json:"flows"`
		Collections  []activity.Collection `json:"collections"`
		ActivityFrom *uint64               `json:"activity_from"`
	}
	if err := json.Unmarshal(js, &out); err != nil || !reflect.DeepEqual(out.Flows, rep2.Flows) || !reflect.DeepEqual(out.Collections, rep2.Collections) || out.ActivityFrom == nil {
		t.Errorf("audit --json: %v; flows %v, want %v", err, out.Flows, rep2.Flows)
	}

	// The server's counter, fed the same entries, has the same flows and
	// collections (and series).
	c := stats.New(nil, nil)
	var es []store.Entry
	auditBenchEvents(n2, func(i int, ev record.Event) { es = append(es, store.Entry{Index: uint64(i), Data: ev.Canonical()}) })
	if err := c.Add(es); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Flows(), rep2.Flows) || !reflect.DeepEqual(c.Collections(), rep2.Collections) {
		t.Errorf("the counter's flows %v, the audit's %v", c.Flows(), rep2.Flows)
	}
	first, last, _ := c.Span()
	if got, want := c.Series(first, last.Add(1), activity.Hourly), rep2.Activity.Series(first, last.Add(1), activity.Hourly); !reflect.DeepEqual(got, want) || len(got) == 0 {
		t.Errorf("the counter's series %v, the audit's %v", got, want)
	}
}

// TestAuditActivityOldState: continuing from a state written before
// custody kept the aggregate, the report's activity covers only the
// entries this run read, and says so (ActivityFrom); so do the states
// after it, until a run with Full. A damaged aggregate in the state is an
// error naming it, and nothing is audited.
func TestAuditActivityOldState(t *testing.T) {
	pol, err := LoadPolicy(filepath.Join("..", "testdata", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	signer, vkey := auditBenchKey(t)
	const n1, n2 = 2*verify.TileWidth + 7, 4*verify.TileWidth + 9
	small, big := t.TempDir(), t.TempDir()
	for dir, n := range map[string]int{small: n1, big: n2} {
		if _, _, err := writeAuditBenchLog(dir, n, signer); err != nil {
			t.Fatal(err)
		}
	}
	run := func(dir string, o AuditOptions) (*AuditReport, *AuditState, error) {
		o.Policy = pol
		c := verify.NewClient(verify.NewDirSource(dir), auditBenchOrigin, mustVerifiers(t, vkey), nil)
		return Audit(context.Background(), c, o)
	}
	_, st1, err := run(small, AuditOptions{})
	if err != nil {
		t.Fatal(err)
	}
	old := *st1
	old.Activity = nil
	rep, st2, err := run(big, AuditOptions{State: &old})
	if err != nil {
		t.Fatal(err)
	}
	flows, _ := benchFlows(n1, n2)
	if rep.ActivityFrom != n1 || st2.ActivityFrom != n1 || !reflect.DeepEqual(flowMap(rep.Flows), flows) {
		t.Errorf("from an old state: activity from %d (state %d), flows %v; want from %d, flows %v", rep.ActivityFrom, st2.ActivityFrom, flowMap(rep.Flows), n1, flows)
	}
	rep, _, err = run(big, AuditOptions{State: st2})
	if err != nil || rep.ActivityFrom != n1 || !reflect.DeepEqual(flowMap(rep.Flows), flows) {
		t.Errorf("next run: %v, activity from %d", err, rep.ActivityFrom)
	}
	rep, _, err = run(big, AuditOptions{State: st2, Full: true})
	all, _ := benchFlows(0, n2)
	if err != nil || rep.ActivityFrom != 0 || !reflect.DeepEqual(flowMap(rep.Flows), all) {
		t.Errorf("full run: %v, activity from %d", err, rep.ActivityFrom)
	}

	for _, tc := range []struct {
		name string
		edit func(st *AuditState)
		want string
	}{
		{"damaged", func(st *AuditState) { st.Activity[len(st.Activity)/2] ^= 0x55 }, "activity"},
		{"other format", func(st *AuditState) { st.Activity = []byte("custody-stats\x00\x02") }, "not an encoded aggregate"},
		{"more events than entries", func(st *AuditState) { st.ActivityFrom = n1 - 3 }, "more than the"},
		{"starts past the size", func(st *AuditState) { st.ActivityFrom = n1 + 1 }, "more than the"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := *st1
			st.Activity = bytes.Clone(st1.Activity)
			tc.edit(&st)
			rep, got, err := run(big, AuditOptions{State: &st})
			if err == nil || !strings.Contains(err.Error(), "audit state") || !strings.Contains(err.Error(), tc.want) || rep != nil || got != nil {
				t.Errorf("Audit() = %v, want an error about the audit state's %s", err, tc.want)
			}
		})
	}
}
