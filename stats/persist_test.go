package stats

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custodylog/custody/activity"
	"github.com/custodylog/custody/internal/fuzzseeds"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/store"
)

// memAggregates is a store.Aggregator in memory; saves are also sent on
// saved (if not nil, without blocking).
type memAggregates struct {
	mu    sync.Mutex
	m     map[string]memAggregate
	saved chan uint64
	fail  error
}

type memAggregate struct {
	size uint64
	data []byte
}

func (a *memAggregates) SaveAggregate(ctx context.Context, name string, size uint64, data []byte) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail != nil {
		return a.fail
	}
	if a.m == nil {
		a.m = map[string]memAggregate{}
	}
	a.m[name] = memAggregate{size, bytes.Clone(data)}
	if a.saved != nil {
		select {
		case a.saved <- size:
		default:
		}
	}
	return nil
}

func (a *memAggregates) LoadAggregate(ctx context.Context, name string) (uint64, []byte, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail != nil {
		return 0, nil, a.fail
	}
	v, ok := a.m[name]
	if !ok {
		return 0, nil, store.ErrNotFound
	}
	return v.size, bytes.Clone(v.data), nil
}

// workload returns n entries spread over more regions and pairs than the
// bounds keep, so that a restored counter must make the same bounding
// decisions as one that counted everything.
func workload(n int, tag string) []store.Entry {
	es := make([]store.Entry, n)
	for i := range es {
		es[i] = entry(i, regionName(i%(MaxRegions+20)), fmt.Sprintf("%s-%d", tag, i%(MaxPairs/128)))
	}
	return es
}

// fullCount counts es from scratch.
func fullCount(t *testing.T, es []store.Entry) *Counter {
	t.Helper()
	c := New(&memSource{}, nil)
	if err := c.add(es); err != nil {
		t.Fatal(err)
	}
	return c
}

// saveAt saves the counts of es[:size] in agg, as Persist does.
func saveAt(t *testing.T, agg store.Aggregator, es []store.Entry, size int) {
	t.Helper()
	data, err := fullCount(t, es[:size]).Snapshot().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if err := agg.SaveAggregate(context.Background(), AggregateName, uint64(size), data); err != nil {
		t.Fatal(err)
	}
}

// logBuffer is a slog handler's output, for checking what Load reports.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestLoadCatchUp: counts restored from a snapshot and caught up with the
// entries after it equal a full recount, and only those entries are read;
// a snapshot that does not describe the log is ignored (with a log line)
// and the whole log recounted.
func TestLoadCatchUp(t *testing.T) {
	const n = MaxPairs + 6000
	log := workload(n, "l")
	other := workload(n, "other") // another log: same shape, other entries
	for _, tt := range []struct {
		name     string
		prepare  func(t *testing.T, agg *memAggregates)
		restored uint64 // what Load returns
		logLine  string // what it reports, if it ignores the snapshot
	}{
		{"no snapshot", func(t *testing.T, agg *memAggregates) {}, 0, ""},
		{"snapshot early", func(t *testing.T, agg *memAggregates) { saveAt(t, agg, log, 1000) }, 1000, ""},
		{"snapshot past the pair bound", func(t *testing.T, agg *memAggregates) { saveAt(t, agg, log, n-100) }, n - 100, ""},
		{"snapshot at the end", func(t *testing.T, agg *memAggregates) { saveAt(t, agg, log, n) }, n, ""},
		{"snapshot of size 0", func(t *testing.T, agg *memAggregates) { saveAt(t, agg, log, 0) }, 0, ""},
		{"snapshot of a longer log (restored database)", func(t *testing.T, agg *memAggregates) {
			longer := append(append([]store.Entry(nil), log...), entry(n, "EU", "xx"))
			saveAt(t, agg, longer, n+1)
		}, 0, "longer log"},
		{"snapshot of another log", func(t *testing.T, agg *memAggregates) { saveAt(t, agg, other, 5000) }, 0, "another log"},
		{"damaged snapshot", func(t *testing.T, agg *memAggregates) {
			saveAt(t, agg, log, 5000)
			v := agg.m[AggregateName]
			v.data[len(v.data)/2] ^= 1
			agg.m[AggregateName] = v
		}, 0, "damaged"},
		{"size does not match the data", func(t *testing.T, agg *memAggregates) {
			saveAt(t, agg, log, 5000)
			v := agg.m[AggregateName]
			v.size = 4000
			agg.m[AggregateName] = v
		}, 0, "damaged"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			agg := &memAggregates{}
			tt.prepare(t, agg)
			src := &memSource{}
			src.append(log...)
			var out logBuffer
			c := New(src, slog.New(slog.NewTextHandler(&out, nil)))
			restored, err := Load(context.Background(), c, agg)
			if err != nil || restored != tt.restored {
				t.Fatalf("Load() = %d, %v; want %d", restored, err, tt.restored)
			}
			if tt.logLine != "" && !strings.Contains(out.String(), tt.logLine) {
				t.Errorf("Load() logged %q, want a line mentioning %q", out.String(), tt.logLine)
			}
			src.mu.Lock()
			src.read = 0
			src.mu.Unlock()
			if err := c.step(context.Background(), nil, n); err != nil {
				t.Fatal(err)
			}
			if src.read != n-int(tt.restored) {
				t.Errorf("read %d entries to catch up, want %d", src.read, n-int(tt.restored))
			}
			want := fullCount(t, log)
			if !reflect.DeepEqual(c.Counts(), want.Counts()) || c.Total() != want.Total() || c.Counted() != n || c.pairs != want.pairs {
				t.Errorf("counts after Load and catch-up differ from a full recount (total %d, pairs %d; want %d, %d)", c.Total(), c.pairs, want.Total(), want.pairs)
			}
			// And the next snapshot, activity included, is the full
			// count's, to the byte.
			got, wantS := c.Snapshot(), want.Snapshot()
			gotData, err1 := got.MarshalBinary()
			wantData, err2 := wantS.MarshalBinary()
			if err1 != nil || err2 != nil || !bytes.Equal(gotData, wantData) {
				t.Errorf("Snapshot() after catch-up = size %d last %x, want size %d last %x (%v, %v)", got.Size, got.Last, wantS.Size, wantS.Last, err1, err2)
			}
		})
	}
}

// TestLoadActivity: the activity aggregate is saved and restored with the
// counts, so flows and series survive a restart without a recount (only
// the entries after the snapshot are read); a snapshot of version 1 (no
// activity) is ignored, said so, and the log recounted once: the next
// save is of version 2 and restores.
func TestLoadActivity(t *testing.T) {
	const n, at = 3000, 1000
	es, _ := activityWorkload(t, n)
	want := fullCount(t, es)
	for _, v1 := range []bool{false, true} {
		t.Run(fmt.Sprintf("v1=%v", v1), func(t *testing.T) {
			agg := &memAggregates{}
			saveAt(t, agg, es, at)
			if v1 {
				s := fullCount(t, es[:at]).Snapshot()
				body, err := s.appendCounts(bytes.Clone(snapshotMagicV1))
				if err != nil {
					t.Fatal(err)
				}
				if err := agg.SaveAggregate(context.Background(), AggregateName, at, resum(body)); err != nil {
					t.Fatal(err)
				}
			}
			src := &memSource{}
			src.append(es...)
			var out logBuffer
			c := New(src, slog.New(slog.NewTextHandler(&out, nil)))
			restored, err := Load(context.Background(), c, agg)
			wantRestored := uint64(at)
			if v1 {
				wantRestored = 0
			}
			if err != nil || restored != wantRestored {
				t.Fatalf("Load() = %d, %v; want %d", restored, err, wantRestored)
			}
			if v1 != strings.Contains(out.String(), "format version 1") {
				t.Errorf("Load() logged %q (v1 %v)", out.String(), v1)
			}
			if !v1 && (c.Events() == 0 || len(c.Flows()) == 0) {
				t.Fatal("the restored counter has no activity")
			}
			src.mu.Lock()
			src.read = 0
			src.mu.Unlock()
			if err := c.step(context.Background(), nil, n); err != nil {
				t.Fatal(err)
			}
			if src.read != n-int(restored) {
				t.Errorf("read %d entries, want %d", src.read, n-int(restored))
			}
			first, last, _ := want.Span()
			from, to := first.Add(-time.Hour), last.Add(48*time.Hour)
			if !reflect.DeepEqual(c.Flows(), want.Flows()) || !reflect.DeepEqual(c.Collections(), want.Collections()) ||
				!reflect.DeepEqual(c.Series(from, to, activity.Daily), want.Series(from, to, activity.Daily)) ||
				!reflect.DeepEqual(c.Series(from, to, activity.Hourly), want.Series(from, to, activity.Hourly)) ||
				!reflect.DeepEqual(c.Growth(from, to), want.Growth(from, to)) || c.Transfers() != want.Transfers() {
				t.Error("activity after Load and catch-up differs from a full recount")
			}
			for _, f := range want.Flows() {
				if !reflect.DeepEqual(c.Recent(f.Edge), want.Recent(f.Edge)) {
					t.Errorf("recent entries of %v differ from a full recount", f.Edge)
				}
			}
			// The next save is of the current version, and restores.
			if _, err := Save(context.Background(), c, agg); err != nil {
				t.Fatal(err)
			}
			c2 := New(src, nil)
			if restored, err := Load(context.Background(), c2, agg); err != nil || restored != n || !reflect.DeepEqual(c2.Flows(), want.Flows()) {
				t.Errorf("Load() after Save = %d, %v; want %d with the flows", restored, err, n)
			}
		})
	}
}

// TestLoadStoreFailure: a store that cannot be read is an error, and the
// counter still counts from 0.
func TestLoadStoreFailure(t *testing.T) {
	agg := &memAggregates{fail: errors.New("injected: store down")}
	src := &memSource{}
	src.append(workload(10, "l")...)
	c := New(src, nil)
	if restored, err := Load(context.Background(), c, agg); err == nil || restored != 0 {
		t.Fatalf("Load(failing store) = %d, %v; want 0 and an error", restored, err)
	}
	if err := c.step(context.Background(), nil, 10); err != nil || c.Counted() != 10 {
		t.Fatalf("counting after a failed Load: %d, %v", c.Counted(), err)
	}
}

// TestRestoreRefuses: Restore never changes a counter that has counted,
// nor takes counts that do not fit the snapshot.
func TestRestoreRefuses(t *testing.T) {
	log := workload(100, "l")
	good := fullCount(t, log).Snapshot()
	busy := fullCount(t, log[:1])
	tamper := func(f func(s *Snapshot)) Snapshot {
		s := fullCount(t, log).Snapshot()
		f(&s)
		return s
	}
	for _, tt := range []struct {
		name string
		c    *Counter
		s    Snapshot
		last []byte
		want string
	}{
		{"counter has counted", busy, good, log[99].Data, "has counted 1"},
		{"wrong last entry", New(&memSource{}, nil), good, log[98].Data, "not the one counted last"},
		{"empty", New(&memSource{}, nil), Snapshot{}, nil, "empty snapshot"},
		{"counts short of the size", New(&memSource{}, nil), tamper(func(s *Snapshot) {
			for r := range s.Counts {
				for l := range s.Counts[r] {
					s.Counts[r][l]++
					return
				}
			}
		}), log[99].Data, "add up to 101"},
		{"no activity", New(&memSource{}, nil), tamper(func(s *Snapshot) { s.Activity = nil }), log[99].Data, "without the activity"},
		{"activity of other events", New(&memSource{}, nil), tamper(func(s *Snapshot) { s.Activity = fullCount(t, log[:50]).Snapshot().Activity }), log[99].Data, "has 50 events"},
		{"activity naming entries past the size", New(&memSource{}, nil), tamper(func(s *Snapshot) {
			s.Activity = activity.New()
			for i := 0; i < 100; i++ {
				s.Activity.Add(uint64(i*11), &record.Event{Sample: "s", Action: record.Transferred, Region: "EU", Location: "ch-zrh-1", To: "de-fra-1", Time: testTime, Actor: "a"})
			}
		}), log[99].Data, "names entry 1089, past its size 100"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.c.Snapshot()
			err := tt.c.Restore(tt.s, tt.last)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Restore() error = %v, want one containing %q", err, tt.want)
			}
			if after := tt.c.Snapshot(); !reflect.DeepEqual(before, after) {
				t.Errorf("a refused Restore changed the counter")
			}
		})
	}
}

// TestSnapshotEncoding: the encoding round-trips, is canonical, and every
// malformed variant is refused.
func TestSnapshotEncoding(t *testing.T) {
	s := fullCount(t, workload(MaxPairs+100, "l")).Snapshot()
	data, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got Snapshot
	if err := got.UnmarshalBinary(data); err != nil {
		t.Fatalf("UnmarshalBinary(MarshalBinary()) error: %v", err)
	}
	// The aggregate is compared by its canonical encoding (its internal
	// numbering of locations may differ).
	gotAct, _ := got.Activity.MarshalBinary()
	wantAct, _ := s.Activity.MarshalBinary()
	if got.Size != s.Size || got.Last != s.Last || !reflect.DeepEqual(got.Counts, s.Counts) || !bytes.Equal(gotAct, wantAct) || len(gotAct) == 0 {
		t.Errorf("round trip changed the snapshot")
	}
	again, _ := got.MarshalBinary()
	if !bytes.Equal(again, data) {
		t.Errorf("encoding is not deterministic")
	}
	empty, err := Snapshot{Counts: map[string]map[string]uint64{}, Activity: activity.New()}.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (Snapshot{Counts: map[string]map[string]uint64{}}).MarshalBinary(); err == nil {
		t.Error("encoded a snapshot without its activity aggregate")
	}
	// noAct is an empty activity aggregate's field, for the hand-made
	// snapshots below (after their counts).
	actData, _ := activity.New().MarshalBinary()
	noAct := append(binary.AppendUvarint(nil, uint64(len(actData))), actData...)
	// otherAct is the snapshot with another activity aggregate.
	otherAct := func(a *activity.Aggregate) []byte {
		s := s
		s.Activity = a
		d, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	short := s.Activity.Clone()
	short.Add(1<<40, &record.Event{Sample: "s", Action: record.Stored, Region: "EU", Location: "ch-zrh-1", Time: testTime, Actor: "a"})
	v1, err := s.appendCounts(bytes.Clone(snapshotMagicV1))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "wrong magic"},
		{"other version", append([]byte("custody-stats\x00\x03"), data[len(snapshotMagic):]...), "wrong magic"},
		{"version 1", resum(v1), "format version 1"},
		{"truncated", data[:len(data)-1], "checksum"},
		{"flipped byte", func() []byte { d := bytes.Clone(data); d[40] ^= 0x10; return d }(), "checksum"},
		{"trailing bytes", resum(append(bytes.Clone(data[:len(data)-32]), 0)), "after the activity aggregate"},
		{"size 0 with counts", resum(append(append(bytes.Clone(snapshotMagic), 0), append(append(make([]byte, 32), 1, 1, 'R', 1, 1, 'L', 1), noAct...)...)), "add up to 1"},
		{"unsorted regions", resum(append(append(bytes.Clone(snapshotMagic), 2), append(append(make([]byte, 32), 2, 1, 'S', 1, 1, 'L', 1, 1, 'R', 1, 1, 'L', 1), noAct...)...)), `region "R" after "S"`},
		{"zero count", resum(append(append(bytes.Clone(snapshotMagic), 0), append(append(make([]byte, 32), 1, 1, 'R', 1, 1, 'L', 0), noAct...)...)), "count 0"},
		{"no activity", resum(append(append(bytes.Clone(snapshotMagic), 0), append(make([]byte, 32), 0)...)), "bad number"},
		{"activity of fewer events", otherAct(activity.New()), "activity aggregate has 0 events"},
		{"activity of more events", otherAct(short), "its counts add up to"},
		{"damaged activity", func() []byte {
			d := bytes.Clone(data[:len(data)-32])
			sAct, _ := s.Activity.MarshalBinary()
			d[len(d)-len(sAct)+len("custody-activity\x00\x01")] ^= 1 // its number of events
			return resum(d)
		}(), "the snapshot's activity"},
		{"long varint", resum(append(append(bytes.Clone(snapshotMagic), 0x80, 0), append(make([]byte, 32), 0)...)), "shortest form"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var s Snapshot
			err := s.UnmarshalBinary(tt.data)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("UnmarshalBinary() error = %v, want one containing %q", err, tt.want)
			}
		})
	}
	var e Snapshot
	if err := e.UnmarshalBinary(empty); err != nil || e.Size != 0 || e.Activity == nil || e.Activity.Events() != 0 {
		t.Errorf("UnmarshalBinary(empty snapshot) = %+v, %v", e, err)
	}
}

// resum replaces the checksum of a snapshot body (without one) with the
// right one, so that tests reach the checks behind it.
func resum(body []byte) []byte {
	s := sha256.Sum256(body)
	return append(body, s[:]...)
}

// FuzzSnapshot: UnmarshalBinary never panics, and what it accepts is
// canonical (it encodes back to the same bytes) and within the bounds.
// Each input is also tried with a right checksum appended, so that the
// fuzzer reaches the decoder behind the checksum.
func FuzzSnapshot(f *testing.F) {
	for _, n := range []int{0, 1, 300} {
		c := New(&memSource{}, nil)
		if err := c.add(workload(n, "l")); err != nil {
			f.Fatal(err)
		}
		data, err := c.Snapshot().MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, data := range [][]byte{data, resum(bytes.Clone(data))} {
			var s Snapshot
			if s.UnmarshalBinary(data) != nil {
				continue
			}
			again, err := s.MarshalBinary()
			if err != nil || !bytes.Equal(again, data) {
				t.Fatalf("accepted a snapshot that does not encode back to itself (%v)", err)
			}
			_, total, err := checkCounts(s.Counts, s.Size)
			if err != nil {
				t.Fatalf("accepted counts that break the bounds: %v", err)
			}
			if err := checkActivity(s.Activity, total, s.Size); err != nil {
				t.Fatalf("accepted an activity aggregate that does not fit the counts: %v", err)
			}
		}
	})
}

// TestPersist: Persist saves once enough entries are counted, and once
// more when ctx is done; a counter loaded from what it saved, caught up,
// equals a full recount.
func TestPersist(t *testing.T) {
	const n = 3000
	log := workload(n, "l")
	src := &memSource{}
	src.append(log[:1000]...)
	c := New(src, nil)
	agg := &memAggregates{saved: make(chan uint64, 16)}
	ctx, cancel := context.WithCancel(context.Background())
	runCounter(t, c)
	done := make(chan struct{})
	go func() {
		defer close(done)
		Persist(ctx, c, agg, PersistOptions{Interval: time.Hour, Entries: 500})
	}()
	c.Committed(store.Checkpoint{Size: 1000}, nil)
	select {
	case size := <-agg.saved:
		if size < 500 {
			t.Errorf("saved at size %d, want at least 500", size)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nothing saved 10 s after 1000 entries were committed (Entries 500)")
	}
	src.append(log[1000:1200]...)
	c.Committed(store.Checkpoint{Size: 1200}, log[1000:1200])
	waitCounted(t, c, 1200)
	cancel() // the last save: 1200, although fewer than 500 since the last
	<-done
	size, data, err := agg.LoadAggregate(context.Background(), AggregateName)
	if err != nil || size != 1200 {
		t.Fatalf("after Persist stopped the saved counts are at %d (%v), want 1200", size, err)
	}
	_ = data

	src.append(log[1200:]...)
	c2 := New(src, nil)
	if restored, err := Load(context.Background(), c2, agg); err != nil || restored != 1200 {
		t.Fatalf("Load() = %d, %v; want 1200", restored, err)
	}
	if err := c2.step(context.Background(), nil, n); err != nil {
		t.Fatal(err)
	}
	want := fullCount(t, log)
	if !reflect.DeepEqual(c2.Counts(), want.Counts()) || c2.Total() != n {
		t.Errorf("counts after Persist, Load and catch-up differ from a full recount")
	}
}

// TestPersistSaveFailure: a failed save is logged and retried at the next
// occasion (here the last save).
func TestPersistSaveFailure(t *testing.T) {
	src := &memSource{}
	src.append(workload(10, "l")...)
	var out logBuffer
	c := New(src, slog.New(slog.NewTextHandler(&out, nil)))
	if err := c.step(context.Background(), nil, 10); err != nil {
		t.Fatal(err)
	}
	agg := &memAggregates{fail: errors.New("injected: disk full")}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	Persist(ctx, c, agg, PersistOptions{})
	if !strings.Contains(out.String(), "injected: disk full") {
		t.Errorf("failed save logged %q, want the error", out.String())
	}
	agg.fail = nil
	Persist(ctx, c, agg, PersistOptions{})
	if size, _, err := agg.LoadAggregate(context.Background(), AggregateName); err != nil || size != 10 {
		t.Errorf("after a retry the saved counts are at %d (%v), want 10", size, err)
	}
}

// TestFuzzSeeds: the checked-in seeds of FuzzSnapshot test what their
// names say (internal/fuzzseeds).
func TestFuzzSeeds(t *testing.T) {
	fuzzseeds.Check(t, map[string]func(args []any) error{
		"FuzzSnapshot": func(args []any) error {
			var s Snapshot
			return s.UnmarshalBinary(args[0].([]byte))
		},
	})
}
