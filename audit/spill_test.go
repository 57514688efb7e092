package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/verify"
)

// spillEvents returns n events over a growing population of samples:
// mostly new samples (as in a busy log), and now and then a sample seen
// long before (by then spilled by a small budget), with every action,
// transfers between known and unknown locations, region changes,
// deletions everywhere and continuity errors, and odd identifiers (long,
// needing JSON escapes, not UTF-8).
func spillEvents(seed uint64, n int) []record.Event {
	r := rand.New(rand.NewPCG(seed, 9))
	locs := []string{"de-fra-1", "ch-zrh-1", "ru-mow-1", "us-ash-1", "fr-par-1", "xx-nowhere-1"}
	regions := []string{"EU", "EU", "US", "ROW", "XX"}
	actions := []record.Action{record.Collected, record.Transferred, record.Stored, record.Analysed, record.Released, record.Deleted, record.Deleted}
	odd := []string{`q"uote`, "<tag>&", "\xff\xfe", "é-ü", strings.Repeat("long-", 60), strings.Repeat("x", 3000)}
	var ids []string
	home := map[string]int{}
	out := make([]record.Event, n)
	for i := range out {
		var id string
		switch k := r.IntN(100); {
		case k < 55 || len(ids) == 0:
			id = fmt.Sprintf("smp-%07d", len(ids)*7919%1000003)
			if r.IntN(50) == 0 {
				id = odd[r.IntN(len(odd))] + fmt.Sprint(len(ids))
			}
			ids = append(ids, id)
			home[id] = r.IntN(len(locs))
		case k < 80:
			id = ids[len(ids)-1-r.IntN(min(len(ids), 8))] // recent
		default:
			id = ids[r.IntN(len(ids))] // any, long ago
		}
		e := record.Event{
			Sample: id,
			Action: actions[r.IntN(len(actions))],
			Region: regions[r.IntN(len(regions))],
			Actor:  "rand",
			Logged: t0.Add(time.Duration(i) * time.Minute),
		}
		if r.IntN(3) > 0 {
			e.Location = locs[home[id]]
		} else {
			e.Location = locs[r.IntN(len(locs))]
		}
		e.Time = e.Logged.Add(-time.Duration(r.IntN(80)) * time.Minute)
		if e.Action == record.Transferred {
			for e.To = locs[r.IntN(len(locs))]; e.To == e.Location; e.To = locs[r.IntN(len(locs))] {
			}
			home[id] = slicesIndex(locs, e.To)
		}
		out[i] = e
	}
	return out
}

func slicesIndex(s []string, x string) int {
	for i, y := range s {
		if y == x {
			return i
		}
	}
	return -1
}

// TestEngineSpillSameResults runs the same events through an engine
// without a budget and through engines whose tiny budgets force many
// spills (and merges of runs, and samples read back from them): the
// findings of every event, the counts and MarshalState (checked along the
// way, and by WriteStateTo) must be exactly the same; and a state written
// by a spilled engine and read into another tiny one must go on giving the
// same results.
func TestEngineSpillSameResults(t *testing.T) {
	p := testPolicy(t)
	for _, tc := range []struct {
		seed   uint64
		n      int
		budget int64
	}{
		{1, 4000, 1},       // a spill after every event
		{2, 30000, 20000},  // a few hundred samples in memory
		{3, 30000, 100000}, // a few thousand
		{4, 60000, 300000},
	} {
		t.Run(fmt.Sprintf("seed=%d,budget=%d", tc.seed, tc.budget), func(t *testing.T) {
			events := spillEvents(tc.seed, tc.n)
			ref := NewEngine(p)
			dir := t.TempDir()
			sp := NewEngineWith(p, EngineOptions{Memory: tc.budget, SpillDir: dir})
			kinds := map[Kind]int{}
			for i, x := range events {
				want := ref.Add(uint64(i), x)
				got := sp.Add(uint64(i), x)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("event %d (%v): spilled engine found\n%v\nwant\n%v", i, x, got, want)
				}
				for _, f := range want {
					kinds[f.Kind]++
				}
				if i%(tc.n/5) == tc.n/5-1 {
					compareStates(t, i, ref, sp)
				}
			}
			if err := sp.Err(); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(sp.Counts(), ref.Counts()) {
				t.Errorf("counts differ:\n%v\n%v", sp.Counts(), ref.Counts())
			}
			compareStates(t, tc.n, ref, sp)
			// The workload must have exercised what it is meant to.
			if sp.s.store == nil || sp.s.store.Runs() == 0 || sp.s.store.Records() < int64(tc.n/10) {
				t.Fatalf("the engine did not spill: %+v", sp.s.store)
			}
			if sp.s.readBack < int64(tc.n/100) {
				t.Errorf("only %d samples read back from disk", sp.s.readBack)
			}
			if sp.s.store.Runs() > 12 {
				t.Errorf("%d runs: merging does not keep up", sp.s.store.Runs())
			}
			for _, k := range []Kind{KindContinuity, KindRegionChange, KindReroute, KindUnknownLocation, KindUnknownRegion} {
				if kinds[k] == 0 {
					t.Errorf("no %s finding in the workload", k)
				}
			}
			files, _ := filepath.Glob(filepath.Join(dir, "custody-spill-*", "run-*"))
			if len(files) == 0 {
				t.Fatalf("no run files under %s", dir)
			}
			for _, f := range files {
				if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
					t.Errorf("%s: %v, mode %v; want 0600", f, err, fi.Mode())
				}
			}

			// Resume a tiny engine from the spilled engine's state and go
			// on with more events (all samples seen again). The reference
			// resumes too: a name that is not UTF-8 comes back from JSON
			// with U+FFFD in place of its bad bytes.
			state, err := sp.MarshalState()
			if err != nil {
				t.Fatal(err)
			}
			re := NewEngineWith(p, EngineOptions{Memory: tc.budget, SpillDir: dir})
			if err := re.UnmarshalState(state); err != nil {
				t.Fatal(err)
			}
			ref = NewEngine(p)
			if err := ref.UnmarshalState(state); err != nil {
				t.Fatal(err)
			}
			if re.s.store == nil && tc.budget < 100000 {
				t.Errorf("reading a state of %d samples kept them all in memory", ref.s.n)
			}
			more := spillEvents(tc.seed+100, tc.n/4)
			for j, x := range more {
				i := uint64(tc.n + j)
				if want, got := ref.Add(i, x), re.Add(i, x); !reflect.DeepEqual(got, want) {
					t.Fatalf("resumed, event %d: found\n%v\nwant\n%v", i, got, want)
				}
			}
			compareStates(t, tc.n+len(more), ref, re)

			for _, e := range []*Engine{sp, re} {
				if err := e.Close(); err != nil {
					t.Fatal(err)
				}
			}
			if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 0 {
				t.Errorf("Close left %v", left)
			}
		})
	}
}

// compareStates holds the spilled engine's MarshalState and WriteStateTo to
// the reference engine's.
func compareStates(t *testing.T, at int, ref, sp *Engine) {
	t.Helper()
	want, err := ref.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	got, err := sp.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Fatalf("after %d events: MarshalState differs at byte %d:\n%.300s\nwant\n%.300s", at, i, got[max(i-100, 0):], want[max(i-100, 0):])
	}
	var b bytes.Buffer
	if err := sp.WriteStateTo(&b); err != nil || !bytes.Equal(b.Bytes(), want) {
		t.Fatalf("after %d events: WriteStateTo differs from MarshalState (%v)", at, err)
	}
}

// TestEngineSpillError: an engine that cannot write its spill files says
// so through Err instead of reporting findings from a partial history.
func TestEngineSpillError(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	e := NewEngineWith(testPolicy(t), EngineOptions{Memory: 1, SpillDir: file})
	defer e.Close()
	for i, x := range spillEvents(5, 100) {
		e.Add(uint64(i), x)
	}
	if err := e.Err(); err == nil || !strings.Contains(err.Error(), file) {
		t.Fatalf("Err() = %v, want an error naming %s", err, file)
	}
	if _, err := e.MarshalState(); err == nil {
		t.Error("MarshalState of a failed engine succeeded")
	}
}

// TestEngineUnmarshalStateUnsorted: a state whose samples are not in the
// order MarshalState writes them (or repeat one) is rejected, since the
// state is read straight into sorted runs.
func TestEngineUnmarshalStateUnsorted(t *testing.T) {
	for _, state := range []string{
		`{"version":1,"next":2,"samples":{"b":{"region":"EU","first":0},"a":{"region":"EU","first":1}},"counts":{"EU":{"de-fra-1":2}}}`,
		`{"version":1,"next":2,"samples":{"a":{"region":"EU","first":0},"a":{"region":"EU","first":1}},"counts":{"EU":{"de-fra-1":2}}}`,
	} {
		e := NewEngine(testPolicy(t))
		if err := e.UnmarshalState([]byte(state)); err == nil || !strings.Contains(err.Error(), "not sorted and distinct") {
			t.Errorf("UnmarshalState(%s) = %v", state, err)
		}
	}
}

// TestAuditSpillSameReport audits one log with the default budget, with
// one so small that the engine spills all the time (into the given spill
// directory, emptied afterwards), and with no state: the reports and the
// states must be the same.
func TestAuditSpillSameReport(t *testing.T) {
	pol, err := LoadPolicy(filepath.Join("..", "testdata", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	signer, vkey := auditBenchKey(t)
	dir := t.TempDir()
	if _, _, err := writeAuditBenchLog(dir, 20*verify.TileWidth+5, signer); err != nil {
		t.Fatal(err)
	}
	run := func(o AuditOptions) (*AuditReport, *AuditState) {
		o.Policy = pol
		c := verify.NewClient(verify.NewDirSource(dir), auditBenchOrigin, mustVerifiers(t, vkey), nil)
		rep, st, err := Audit(context.Background(), c, o)
		if err != nil {
			t.Fatal(err)
		}
		return rep, st
	}
	want, wantState := run(AuditOptions{})
	spillDir := t.TempDir()
	got, gotState := run(AuditOptions{Memory: 16 << 10, SpillDir: spillDir})
	if !reflect.DeepEqual(got, want) || !bytes.Equal(gotState.Engine, wantState.Engine) || !bytes.Equal(gotState.Tree, wantState.Tree) {
		t.Errorf("audit with a tiny budget: report or state differs")
	}
	if left, _ := filepath.Glob(filepath.Join(spillDir, "*")); len(left) != 0 {
		t.Errorf("spill files left: %v", left)
	}
	noState, st := run(AuditOptions{NoState: true})
	if st != nil || !reflect.DeepEqual(noState, want) {
		t.Errorf("NoState: state %v, report differs: %v", st != nil, !reflect.DeepEqual(noState, want))
	}
}

// BenchmarkEngineOpenSamples feeds the engine the prefill workload (every
// event a new sample collected at one of five data centres, so every
// sample stays open: the worst case for its memory) without a budget and
// with budgets that make it spill, and reports the rate, the memory the
// engine counts (samples in memory, table, identifiers) and what it
// spilled:
//
//	go test ./audit -run '^$' -bench EngineOpenSamples -benchtime 1x -audit-entries 4000000
func BenchmarkEngineOpenSamples(b *testing.B) {
	pol, err := LoadPolicy(filepath.Join("..", "testdata", "policy.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	n := *auditBenchEntries
	locs := []string{"ch-zrh-1", "de-fra-1", "us-ash-1", "uk-lon-1", "sg-sin-1"}
	regions := []string{"EU", "EU", "US", "UK", "ROW"}
	events := make([]record.Event, n)
	t := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for i := range events {
		events[i] = record.Event{Sample: fmt.Sprintf("bench-5f2a9c01d3e4-%d", i), Action: record.Collected,
			Location: locs[i%5], Region: regions[i%5], Actor: "custody-bench", Time: t, Logged: t}
	}
	for _, budget := range []int64{0, 256 << 20, 64 << 20, 16 << 20} {
		b.Run(fmt.Sprintf("memory=%dMiB", budget>>20), func(b *testing.B) {
			var mem, peak int64
			var runs int
			var spilled, disk, filters int64
			for range b.N {
				e := NewEngineWith(pol, EngineOptions{Memory: budget, SpillDir: b.TempDir()})
				if budget == 0 {
					e = NewEngine(pol)
				}
				for i, x := range events {
					e.Add(uint64(i), x)
					if i%(1<<16) == 0 {
						peak = max(peak, e.s.mem())
					}
				}
				if err := e.Err(); err != nil {
					b.Fatal(err)
				}
				mem = e.s.mem()
				if e.s.store != nil {
					runs, spilled = e.s.store.Runs(), e.s.store.Records()
					disk, filters = e.s.store.Bytes(), e.s.store.Mem()
				}
				b.StopTimer()
				e.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
			b.ReportMetric(float64(peak)/(1<<20), "peak-engine-MB")
			b.ReportMetric(float64(mem)/float64(max(int64(n)-spilled, 1)), "B/sample-in-memory")
			b.ReportMetric(float64(spilled), "spilled")
			b.ReportMetric(float64(runs), "runs")
			if spilled > 0 {
				b.ReportMetric(float64(disk)/float64(spilled), "disk-B/spilled")
				b.ReportMetric(float64(filters)/float64(spilled), "filter-B/spilled")
			}
		})
	}
}

// TestAuditorEngineFile: an Auditor keeps the engine's state in a file of
// its own next to state.json, streamed in and out with a tiny budget, one
// file at a time; resuming from it, or from an older state with the
// engine inline, gives the state one audit from scratch gives.
func TestAuditorEngineFile(t *testing.T) {
	pol, err := LoadPolicy(filepath.Join("..", "testdata", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	signer, vkey := auditBenchKey(t)
	const n1, n2 = 7*verify.TileWidth + 3, 15 * verify.TileWidth
	logs := map[int]string{}
	for _, n := range []int{n1, n2} {
		logs[n] = t.TempDir()
		if _, _, err := writeAuditBenchLog(logs[n], n, signer); err != nil {
			t.Fatal(err)
		}
	}
	client := func(n int) *verify.Client {
		return verify.NewClient(verify.NewDirSource(logs[n]), auditBenchOrigin, mustVerifiers(t, vkey), nil)
	}
	_, want, err := Audit(context.Background(), client(n2), AuditOptions{Policy: pol})
	if err != nil {
		t.Fatal(err)
	}
	engineFile := func(dir string) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, StateFile))
		if err != nil {
			t.Fatal(err)
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(b, &raw); err != nil {
			t.Fatal(err)
		}
		var name string
		json.Unmarshal(raw["engine_file"], &name)
		if _, inline := raw["engine"]; inline || name == "" {
			t.Fatalf("%s: engine inline %v, engine_file %q", StateFile, inline, name)
		}
		files, _ := filepath.Glob(filepath.Join(dir, engineFiles))
		if len(files) != 1 || filepath.Base(files[0]) != name {
			t.Fatalf("engine files %v, want only %s", files, name)
		}
		if fi, err := os.Stat(files[0]); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, want mode 0600", files[0], err)
		}
		e, err := os.ReadFile(files[0])
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	run := func(dir string, n int) {
		t.Helper()
		a := &Auditor{Client: client(n), Policy: pol, StateDir: dir, Memory: 16 << 10}
		if _, err := a.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
	}

	dir := filepath.Join(t.TempDir(), "state")
	run(dir, n1)
	engineFile(dir)
	// Engine files no state names: one a day old (a crashed audit's) is
	// removed by the next WriteState, a fresh one (an audit running on
	// the same directory) is left alone.
	stale, fresh := filepath.Join(dir, "engine-stale.json"), filepath.Join(dir, "engine-fresh.json")
	for _, f := range []string{stale, fresh} {
		if err := os.WriteFile(f, []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	dayAgo := time.Now().Add(-25 * time.Hour)
	os.Chtimes(stale, dayAgo, dayAgo)
	run(dir, n2)
	if _, err := os.Stat(stale); err == nil {
		t.Error("a day-old engine file no state names was not removed")
	}
	if err := os.Remove(fresh); err != nil {
		t.Errorf("a fresh engine file no state names was removed: %v", err)
	}
	if got := engineFile(dir); !bytes.Equal(got, want.Engine) {
		t.Errorf("engine state after two runs differs from one audit's")
	}
	if spills, _ := filepath.Glob(filepath.Join(dir, "custody-spill-*")); len(spills) != 0 {
		t.Errorf("spill directories left: %v", spills)
	}

	// An older state, with the engine inline, is read and rewritten.
	_, old, err := Audit(context.Background(), client(n1), AuditOptions{Policy: pol})
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	if err := WriteState(dir, old); err != nil {
		t.Fatal(err)
	}
	run(dir, n2)
	if got := engineFile(dir); !bytes.Equal(got, want.Engine) {
		t.Errorf("engine state resumed from an inline state differs from one audit's")
	}

	// A state naming a file elsewhere is refused.
	st, err := ReadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	st.EngineFile = "../engine-x.json"
	bad := t.TempDir()
	b, _ := json.Marshal(st)
	os.WriteFile(filepath.Join(bad, StateFile), b, 0o600)
	if _, err := ReadState(bad); err == nil || !strings.Contains(err.Error(), "engine_file") {
		t.Errorf("ReadState with engine_file %q: %v", st.EngineFile, err)
	}
}

// FuzzEngineState: UnmarshalState either rejects its input, leaving the
// engine as it was, or accepts it, and then MarshalState writes what an
// engine that spills all the time also reads and writes; reading that
// again changes nothing.
func FuzzEngineState(f *testing.F) {
	p, err := LoadPolicy(filepath.Join("..", "testdata", "policy.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, n := range []int{0, 3, 40} {
		e := NewEngine(p)
		for i, x := range spillEvents(uint64(n), n) {
			e.Add(uint64(i), x)
		}
		b, _ := e.MarshalState()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e := NewEngine(p)
		e.Add(0, spillEvents(1, 1)[0])
		before, _ := e.MarshalState()
		if err := e.UnmarshalState(b); err != nil {
			if after, _ := e.MarshalState(); !bytes.Equal(after, before) {
				t.Fatalf("rejected state changed the engine: %v", err)
			}
			return
		}
		once, err := e.MarshalState()
		if err != nil {
			t.Fatal(err)
		}
		sp := NewEngineWith(p, EngineOptions{Memory: 1, SpillDir: t.TempDir()})
		defer sp.Close()
		if err := sp.UnmarshalState(once); err != nil {
			t.Fatalf("a spilling engine rejects a state MarshalState wrote: %v\n%s", err, once)
		}
		if again, err := sp.MarshalState(); err != nil || !bytes.Equal(again, once) {
			t.Fatalf("state read by a spilling engine and written again differs (%v):\n%s\n%s", err, again, once)
		}
	})
}
