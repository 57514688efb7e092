package activity

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/custodylog/custody/internal/fuzzseeds"
	"github.com/custodylog/custody/record"
)

// workload adds n valid events to a: transfers on more flows than
// MaxEdges (and more OtherKey flows than MaxOther when n is large),
// collections, every action, more locations than MaxLocations, times over
// weeks (so hours fall out of the window) and ring wraps on flow 0.
func workload(a *Aggregate, start uint64, n int) {
	for i := 0; i < n; i++ {
		j := int(start) + i
		at := t0.Add(time.Duration(j%5000) * 7 * time.Minute)
		loc := fmt.Sprintf("dc-%d", j%(MaxLocations+9))
		var e *record.Event
		switch {
		case j%3 == 0:
			e = transfer([]string{"EU", "US", "ROW"}[j%2], "ch-zrh-1", "de-fra-1", at)
		case j%3 == 1:
			e = transfer("EU", loc, fmt.Sprintf("to-%d", j%97), at)
		case j%7 == 2:
			e = ev(record.Collected, "EU", fmt.Sprintf("c-%d", j%(MaxCollections+300)), "", at)
		default:
			e = ev(record.Analysed, "UK", loc, "", at)
		}
		a.Add(start+uint64(i), e)
	}
}

func mustMarshal(t testing.TB, a *Aggregate) []byte {
	t.Helper()
	b, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// views is everything a Reader shows of a, as text.
func views(a *Aggregate) string {
	var b strings.Builder
	fmt.Fprint(&b, a.Flows(), a.Collections(), a.Events(), a.Transfers(), a.Overflow(), a.LoggedOverflow())
	for _, f := range a.Flows() {
		fmt.Fprint(&b, a.Recent(f.Edge))
	}
	first, last, ok := a.Span()
	fmt.Fprint(&b, first, last, ok, a.PickResolution(last.Add(-time.Hour), last))
	from, to := first.Add(-time.Hour), last.Add(48*time.Hour)
	fmt.Fprint(&b, a.Series(from, to, Hourly), a.Series(from, to, Daily), a.Growth(from, to))
	return b.String()
}

// TestBinaryRoundTrip: an aggregate restored from its encoding answers
// every query as the original, encodes to the same bytes, and goes on
// counting exactly as the original does (the same bounding decisions).
func TestBinaryRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 50, 4 * MaxEdges} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			a := New()
			workload(a, 0, n)
			data := mustMarshal(t, a)
			var b Aggregate
			if err := b.UnmarshalBinary(data); err != nil {
				t.Fatalf("UnmarshalBinary(MarshalBinary()): %v", err)
			}
			if views(&b) != views(a) {
				t.Fatal("the restored aggregate answers differently")
			}
			if again := mustMarshal(t, &b); !bytes.Equal(again, data) {
				t.Fatal("the restored aggregate encodes differently")
			}
			workload(a, uint64(n), 2*MaxEdges)
			workload(&b, uint64(n), 2*MaxEdges)
			if views(&b) != views(a) || !bytes.Equal(mustMarshal(t, &b), mustMarshal(t, a)) {
				t.Error("the restored aggregate counts further events differently")
			}
			if n == 4*MaxEdges {
				if len(data) > MaxBinaryLen {
					t.Errorf("encoding of %d bytes, more than MaxBinaryLen %d", len(data), MaxBinaryLen)
				}
				var other bool
				for _, f := range a.Flows() {
					other = other || f.Region == OtherKey
				}
				if !other || a.Recent(Edge{"EU", "ch-zrh-1", "de-fra-1"}) == nil {
					t.Error("the workload did not reach every bound")
				}
			}
		})
	}
}

// TestBinaryDeterministic: the same events give the same bytes (maps
// iterate in random order), and hourly cells that fell out of the window
// but were not pruned yet are not encoded.
func TestBinaryDeterministic(t *testing.T) {
	a, b := New(), New()
	workload(a, 0, 5000)
	workload(b, 0, 5000)
	if !bytes.Equal(mustMarshal(t, a), mustMarshal(t, b)) {
		t.Error("two aggregates of the same events encode differently")
	}
	stale := len(a.hours)
	a.pruneHours()
	if len(a.hours) == stale {
		t.Fatal("the workload left no hourly cell to prune")
	}
	if !bytes.Equal(mustMarshal(t, a), mustMarshal(t, b)) {
		t.Error("pruning changed the encoding")
	}
}

// TestMarshalRefuses: names no event has are not encoded.
func TestMarshalRefuses(t *testing.T) {
	for _, e := range []*record.Event{
		transfer("eu", "ch-zrh-1", "de-fra-1", t0),
		transfer("EU", "CH", "de-fra-1", t0),
		ev(record.Collected, "EU", "x", "", t0),
		ev(record.Stored, "EU", strings.Repeat("a", 33), "", t0),
	} {
		if _, err := feed(e).MarshalBinary(); err == nil {
			t.Errorf("encoded an aggregate of %+v", e)
		}
	}
}

// raw builds an encoding by hand: the magic, then each value (uint64:
// uvarint, int64: varint, string: name, []byte: as is).
func raw(values ...any) []byte {
	b := bytes.Clone(binaryMagic)
	for _, v := range values {
		switch v := v.(type) {
		case int:
			b = binary.AppendUvarint(b, uint64(v))
		case int64:
			b = binary.AppendVarint(b, v)
		case string:
			b = appendName(b, v)
		case []byte:
			b = append(b, v...)
		default:
			panic(v)
		}
	}
	return b
}

// mutate returns the encoding of the workload's aggregate after f changed
// its fields (bypassing Add).
func mutate(t *testing.T, f func(a *Aggregate)) []byte {
	a := New()
	workload(a, 0, 300)
	f(a)
	return mustMarshal(t, a)
}

// TestUnmarshalRefuses: every malformed or out-of-bounds encoding is
// refused, with an error saying why, and leaves the aggregate unchanged.
func TestUnmarshalRefuses(t *testing.T) {
	good := New()
	workload(good, 0, 300)
	data := mustMarshal(t, good)
	t1 := t0.Unix()
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "wrong magic"},
		{"other format", []byte("custody-stats\x00\x01"), "wrong magic"},
		{"other version", append([]byte("custody-activity\x00\x02"), data[len(binaryMagic):]...), "version 2"},
		{"too long", make([]byte, MaxBinaryLen+1), "more than"},
		{"truncated", data[:len(data)-1], "truncated"},
		{"trailing bytes", append(bytes.Clone(data), 0), "after the aggregate"},
		{"long number", raw([]byte{0x80, 0}), "shortest form"},
		{"no events but counts", raw(0, 1, 0, 0, 0, 0, 0, 0, 0, 0), "no events"},
		{"first after last", raw(1, 0, 0, 0, t1, t1-1), "after the last"},
		{"unsorted flows", raw(2, 2, 0, 0, t1, t1, 2, "US", "ch-zrh-1", "de-fra-1", 1, 1, 1, "EU", "ch-zrh-1", "de-fra-1", 1, 1, 0), "after"},
		{"duplicate flow", raw(2, 2, 0, 0, t1, t1, 2, "EU", "ch-zrh-1", "de-fra-1", 1, 1, 1, "EU", "ch-zrh-1", "de-fra-1", 1, 1, 0), "after"},
		{"invalid region", raw(1, 1, 0, 0, t1, t1, 1, "eu", "ch-zrh-1", "de-fra-1", 1, 1, 0), "not a valid"},
		{"name too long", raw(1, 1, 0, 0, t1, t1, 1, "EU", strings.Repeat("a", 33)), "more than 32"},
		{"flow of 0 transfers", raw(1, 1, 0, 0, t1, t1, 1, "EU", "ch-zrh-1", "de-fra-1", 0), "0 events"},
		{"recent entries short", raw(2, 2, 0, 0, t1, t1, 1, "EU", "ch-zrh-1", "de-fra-1", 2, 1, 7), "recent entries"},
		{"recent entries not increasing", raw(2, 2, 0, 0, t1, t1, 1, "EU", "ch-zrh-1", "de-fra-1", 2, 2, 7, 0), "less 0"},
		{"recent entry below 0", raw(2, 2, 0, 0, t1, t1, 1, "EU", "ch-zrh-1", "de-fra-1", 2, 2, 3, 4), "less 4"},
		{"flows do not add up", mutate(t, func(a *Aggregate) { a.transfers++ }), "the flows add up"},
		{"other flow before the bound", mutate(t, func(a *Aggregate) {
			a.flows[Edge{"EU", "ch-zrh-1", OtherKey}] = &flowState{events: 1, recent: []uint64{1}}
		}), "fewer than the 4096"},
		{"all-other flow before the bound", mutate(t, func(a *Aggregate) {
			a.flows[Edge{OtherKey, OtherKey, OtherKey}] = &flowState{events: 1, recent: []uint64{1}}
		}), "fewer than the 256"},
		{"flow from other", mutate(t, func(a *Aggregate) {
			a.flows[Edge{"EU", OtherKey, OtherKey}] = &flowState{events: 1, recent: []uint64{1}}
		}), "not a valid"},
		{"other collection before the bound", mutate(t, func(a *Aggregate) { a.collections[[2]string{"EU", OtherKey}] = 1 }), "fewer than the 4096"},
		{"collections past the events", mutate(t, func(a *Aggregate) { a.collections[[2]string{"EU", "zz"}] = 1000 }), "more than the"},
		{"day cells do not add up", mutate(t, func(a *Aggregate) { a.days[cell{floorDiv(a.first, 86400), a.locations["dc-1"]}] += 5 }), "day cells and the overflow"},
		{"day cell outside the span", mutate(t, func(a *Aggregate) { a.days[cell{floorDiv(a.last, 86400) + 1, a.locations["dc-1"]}] = 1 }), "past the last"},
		{"hour cell before the window", raw(1, 0, 0, 0, t1, t1, 0, 0, 1, "aa", 1, t1/86400, 0, 1, 1, t1/3600-windowHours, 0, 1, 0), "outside"},
		{"overflow before the bound", mutate(t, func(a *Aggregate) { a.overflow, a.events = 1, a.events+1 }), "overflow of 1"},
		{"other location before the bound", func() []byte {
			a := feed(ev(record.Stored, "EU", "ch-zrh-1", "", t0))
			a.days[cell{floorDiv(a.first, 86400), otherLoc}] = 1
			a.events++
			return mustMarshal(t, a)
		}(), "location 1 of 1"},
		{"logged days past the events", mutate(t, func(a *Aggregate) { a.logged[0] = 1 << 40 }), "logged days add up"},
		{"unsorted locations", raw(1, 0, 0, 0, t1, t1, 0, 0, 2, "bb", "aa"), `location "aa" after "bb"`},
		{"unsorted cells", raw(2, 0, 0, 0, t1, t1, 0, 0, 2, "aa", "bb", 2, t1/86400, 1, 1, 0, 0, 1, 0, 0, 0), "location 0 after 1"},
		{"cell at an unknown location", raw(1, 0, 0, 0, t1, t1, 0, 0, 1, "aa", 1, t1/86400, 1, 1, 0, 0), "location 1 of 1"},
		{"logged day twice", raw(2, 0, 0, 0, t1, t1, 0, 0, 1, "aa", 1, t1/86400, 0, 2, 0, 2, t1/86400, 1, 0, 1), "gap 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := New()
			workload(a, 0, 20)
			before := mustMarshal(t, a)
			err := a.UnmarshalBinary(tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("UnmarshalBinary() error = %v, want one containing %q", err, tc.want)
			}
			if !bytes.Equal(mustMarshal(t, a), before) {
				t.Error("a refused encoding changed the aggregate")
			}
		})
	}
	// The hand-made encodings are right but for what they break: the
	// same without the fault is accepted.
	var a Aggregate
	for _, ok := range [][]byte{
		raw(2, 2, 0, 0, t1, t1, 2, "EU", "ch-zrh-1", "de-fra-1", 1, 1, 1, "US", "ch-zrh-1", "de-fra-1", 1, 1, 0, 0, 1, "ch-zrh-1", 1, t1/86400, 0, 2, 1, t1/3600, 0, 2, 0),
		raw(1, 0, 0, 0, t1, t1, 0, 0, 1, "aa", 1, t1/86400, 0, 1, 1, t1/3600-windowHours+1, 0, 1, 0),
		raw(2, 0, 0, 0, t1, t1, 0, 0, 2, "aa", "bb", 2, t1/86400, 0, 1, 0, 1, 1, 0, 0),
		raw(2, 0, 0, 0, t1, t1, 0, 0, 1, "aa", 1, t1/86400, 0, 2, 0, 2, t1/86400, 1, 1, 1),
	} {
		if err := a.UnmarshalBinary(ok); err != nil {
			t.Errorf("a valid hand-made encoding refused: %v", err)
		}
	}
}

// fuzzSeeds are the encodings FuzzUnmarshal starts from.
func fuzzSeeds(t testing.TB) [][]byte {
	var out [][]byte
	for _, n := range []int{0, 1, 40, 400} {
		a := New()
		workload(a, 0, n)
		out = append(out, mustMarshal(t, a))
	}
	return out
}

// FuzzUnmarshal: UnmarshalBinary never panics, and what it accepts is
// canonical (it encodes back to the same bytes), adds up and can go on
// counting.
func FuzzUnmarshal(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var a Aggregate
		if a.UnmarshalBinary(data) != nil {
			return
		}
		again, err := a.MarshalBinary()
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("accepted an encoding that does not encode back to itself (%v)", err)
		}
		if err := a.checkTotals(); err != nil {
			t.Fatal(err)
		}
		a.Add(1<<62, transfer("EU", "ch-zrh-1", "de-fra-1", t0))
		a.Add(1<<62+1, ev(record.Collected, "EU", "ch-zrh-1", "", t0))
		if err := a.checkTotals(); err != nil {
			t.Fatalf("after adding to an accepted aggregate: %v", err)
		}
	})
}

// TestFuzzSeeds: the checked-in seeds of FuzzUnmarshal test what their
// names say (internal/fuzzseeds).
func TestFuzzSeeds(t *testing.T) {
	fuzzseeds.Check(t, map[string]func(args []any) error{
		"FuzzUnmarshal": func(args []any) error {
			var a Aggregate
			return a.UnmarshalBinary(args[0].([]byte))
		},
	})
}
