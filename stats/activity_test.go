package stats

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/custodylog/custody/activity"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/store"
)

// activityWorkload returns n entries of every action over several days,
// regions and data centres, with a site attestation every 7th entry, and
// the Aggregate fed the same events directly (attestations skipped).
func activityWorkload(t *testing.T, n int) ([]store.Entry, *activity.Aggregate) {
	t.Helper()
	locs := []string{"ch-zrh-1", "de-fra-1", "us-ash-1", "sg-sin-1"}
	actions := []record.Action{record.Collected, record.Transferred, record.Stored, record.Analysed, record.Transferred, record.Deleted}
	want := activity.New()
	es := make([]store.Entry, n)
	for i := range es {
		if i%7 == 6 {
			att := record.Attestation{Origin: "example.com/log", Site: "ch-zrh-1", KeyID: 1, Time: testTime, Count: 1}
			es[i] = store.Entry{Index: uint64(i), Data: att.Entry()}
			if record.KindOf(es[i].Data) != record.EntryAttestation {
				t.Fatal("the test's attestation is not one")
			}
			continue
		}
		ev := record.Event{Sample: fmt.Sprintf("s-%d", i/5), Action: actions[i%len(actions)],
			Region: []string{"EU", "US", "ROW"}[i%3], Location: locs[i%len(locs)],
			Time:   testTime.Add(time.Duration(i*37) * time.Minute),
			Logged: testTime.Add(time.Duration(i*41) * time.Minute), Actor: "a"}
		if ev.Action == record.Transferred {
			ev.To = locs[(i/2+1)%len(locs)]
			if ev.To == ev.Location {
				ev.To = locs[(i/2+2)%len(locs)]
			}
		}
		es[i] = store.Entry{Index: uint64(i), Data: ev.Canonical()}
		dec, err := record.DecodeEntry(es[i].Data)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		want.Add(uint64(i), &dec)
	}
	return es, want
}

// TestCounterActivity: a Counter fed a workload (part read from the
// store, part handed over by Committed) answers every activity.Reader
// method as an Aggregate fed the same events directly, and counts no site
// attestation.
func TestCounterActivity(t *testing.T) {
	const n = 2000
	es, want := activityWorkload(t, n)
	src := &memSource{}
	src.append(es[:500]...)
	c := New(src, nil)
	c.Committed(store.Checkpoint{Size: 500}, nil)
	runCounter(t, c)
	// A reader (the dashboard) reads while the counter counts: under
	// -race, the Reader methods must not race with counting.
	stop, read := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(read)
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, f := range c.Flows() {
				c.Recent(f.Edge)
			}
			c.Collections()
			c.Series(testTime, testTime.Add(1000*time.Hour), activity.Hourly)
			c.Growth(testTime, testTime.Add(1000*time.Hour))
			c.Span()
		}
	}()
	for i := 500; i < n; i += 100 {
		src.append(es[i : i+100]...)
		c.Committed(store.Checkpoint{Size: uint64(i + 100)}, es[i:i+100])
	}
	waitCounted(t, c, n)
	close(stop)
	<-read

	attestations := uint64(n / 7)
	if c.Events() != n-attestations || c.Events() != want.Events() || c.Total() != c.Events() {
		t.Fatalf("counter has %d events (total %d), want %d (%d entries less %d attestations)", c.Events(), c.Total(), want.Events(), n, attestations)
	}
	if c.Transfers() != want.Transfers() || c.Transfers() == 0 {
		t.Errorf("transfers %d, want %d (not 0)", c.Transfers(), want.Transfers())
	}
	if got := c.Flows(); !reflect.DeepEqual(got, want.Flows()) || len(got) < 4 {
		t.Errorf("flows\n%v\nwant\n%v", got, want.Flows())
	}
	if got := c.Collections(); !reflect.DeepEqual(got, want.Collections()) || len(got) == 0 {
		t.Errorf("collections\n%v\nwant\n%v", got, want.Collections())
	}
	for _, f := range want.Flows() {
		if got := c.Recent(f.Edge); !reflect.DeepEqual(got, want.Recent(f.Edge)) || len(got) == 0 {
			t.Errorf("recent on %v: %v, want %v", f.Edge, got, want.Recent(f.Edge))
		}
	}
	first, last, ok := c.Span()
	wf, wl, wok := want.Span()
	if !ok || !wok || !first.Equal(wf) || !last.Equal(wl) {
		t.Fatalf("span %v..%v %v, want %v..%v %v", first, last, ok, wf, wl, wok)
	}
	for _, r := range []activity.Resolution{activity.Hourly, activity.Daily} {
		from, to := first.Add(-48*time.Hour), last.Add(48*time.Hour)
		got := c.Series(from, to, r)
		if !reflect.DeepEqual(got, want.Series(from, to, r)) || len(got) == 0 {
			t.Errorf("%s series differs from the aggregate's (%d buckets)", r, len(got))
		}
		var sum uint64
		for _, b := range got {
			sum += b.Events
		}
		if r == activity.Daily && sum != c.Events() {
			t.Errorf("daily buckets add up to %d, want %d events", sum, c.Events())
		}
	}
	from, to := first.Add(-72*time.Hour), last.Add(240*time.Hour)
	if got := c.Growth(from, to); !reflect.DeepEqual(got, want.Growth(from, to)) || len(got) == 0 || got[len(got)-1].Events != c.Events() {
		t.Errorf("growth %v, want %v ending at %d events", got, want.Growth(from, to), c.Events())
	}
	if got, w := c.PickResolution(last.Add(-time.Hour), last), want.PickResolution(last.Add(-time.Hour), last); got != w || got != activity.Hourly {
		t.Errorf("resolution %v, want %v (hourly)", got, w)
	}
}
