package server

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custodylog/custody/activity"
	"github.com/custodylog/custody/httpapi"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/stats"
	"github.com/custodylog/custody/store"
)

// transfers returns n transferred events (sample tag-i) over three flows,
// and adds them to flows.
func transfers(n int, tag string, flows map[activity.Edge]uint64) []byte {
	var b bytes.Buffer
	dcs := []string{"ch-zrh-1", "de-fra-1", "sg-sin-1"}
	for i := 0; i < n; i++ {
		e := activity.Edge{Region: "EU", From: dcs[i%3], To: dcs[(i+1)%3]}
		flows[e]++
		ev := record.Event{Sample: fmt.Sprintf("%s-%d", tag, i), Action: record.Transferred, Location: e.From, To: e.To, Region: e.Region,
			Actor: "t", Time: time.Now().UTC().Truncate(time.Second).Add(-time.Minute)}
		b.Write(ev.Canonical())
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// savedActivity is the activity aggregate the server saved in st, and the
// size it covers.
func savedActivity(t *testing.T, st store.Store) (uint64, *activity.Aggregate) {
	t.Helper()
	size, data, err := st.(store.Aggregator).LoadAggregate(context.Background(), stats.AggregateName)
	if err != nil {
		t.Fatal(err)
	}
	var s stats.Snapshot
	if err := s.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	return size, s.Activity
}

// TestRunKeepsActivityAcrossRestarts: the flows and time series are saved
// with the counts when the server stops and restored when it starts
// again: the restarted server reads no entry to recount them, and what it
// saves after more transfers covers the transfers of both runs.
func TestRunKeepsActivityAcrossRestarts(t *testing.T) {
	lc := newLogConfig(t)
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	want := map[activity.Edge]uint64{}
	check := func(size uint64) {
		t.Helper()
		got, a := savedActivity(t, lc.Store)
		if got != size {
			t.Fatalf("saved at size %d, want %d", got, size)
		}
		flows := map[activity.Edge]uint64{}
		for _, f := range a.Flows() {
			flows[f.Edge] = f.Events
		}
		if !reflect.DeepEqual(flows, want) {
			t.Errorf("saved flows %v, want %v", flows, want)
		}
		var days uint64
		first, last, _ := a.Span()
		for _, b := range a.Series(first.Add(-48*time.Hour), last.Add(48*time.Hour), activity.Daily) {
			days += b.Events
		}
		if days != size || a.Events() != size {
			t.Errorf("saved series has %d events of %d, want %d", days, a.Events(), size)
		}
	}
	cfg := Config{Log: lc, API: httpapi.Config{Tokens: []string{testToken}}, Logger: logger}
	base, stop, result := start(t, cfg)
	if code, body, err := post(base, transfers(8, "a", want)); err != nil || code != 200 {
		t.Fatalf("POST: %d %s %v", code, body, err)
	}
	stop()
	if err := <-result; err != nil {
		t.Fatal(err)
	}
	check(8)

	mu.Lock()
	logs.Reset()
	mu.Unlock()
	base, stop, result = start(t, cfg)
	if code, body, err := post(base, transfers(5, "b", want)); err != nil || code != 200 {
		t.Fatalf("POST: %d %s %v", code, body, err)
	}
	stop()
	if err := <-result; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	if !strings.Contains(out, "restored the saved counts") || !strings.Contains(out, "size=8") {
		t.Fatalf("the restarted server did not restore the counts:\n%s", out)
	}
	check(13)
}
