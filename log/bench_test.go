package log

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/custodylog/custody/record"
)

// BenchmarkAdd measures in-process appends with receipts: many goroutines
// call Add or AddMany (4096 events in flight), as HTTP handlers do, through the real
// SQLite store (WAL, synchronous=FULL). It reports events/s and the p50/p99
// latency from submission to receipt.
func BenchmarkAdd(b *testing.B) {
	for _, c := range []struct{ workers, per int }{{1024, 1}, {64, 64}} {
		workers, per := c.workers, c.per
		b.Run(fmt.Sprintf("callers=%d/events-per-call=%d", workers, per), func(b *testing.B) {
			tl := newTestLog(b, Config{})
			ctx := context.Background()
			evs := make([]record.Event, b.N)
			for i := range evs {
				evs[i] = testEvent(i)
				evs[i].Sample = fmt.Sprintf("bench-%d", i)
			}
			var mu sync.Mutex
			var lat []time.Duration
			next := 0
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var mine []time.Duration
					for {
						mu.Lock()
						i := next
						next += per
						mu.Unlock()
						if i >= len(evs) {
							break
						}
						t0 := time.Now()
						if _, err := tl.AddMany(ctx, evs[i:min(i+per, len(evs))]); err != nil {
							b.Error(err)
							return
						}
						mine = append(mine, time.Since(t0))
					}
					mu.Lock()
					lat = append(lat, mine...)
					mu.Unlock()
				}()
			}
			wg.Wait()
			el := time.Since(start)
			b.StopTimer()
			if got := tl.Checkpoint().Size; got != uint64(b.N) {
				b.Fatalf("size %d, want %d", got, b.N)
			}
			slices.Sort(lat)
			b.ReportMetric(float64(b.N)/el.Seconds(), "events/s")
			if len(lat) > 0 {
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			}
		})
	}
}

// BenchmarkPostDuplicates measures one POST /v1/events of 10,000 events
// that are all in the log already (the duplicate flood of a token holder):
// time, bytes allocated, and the live heap the request holds when its
// answer starts (which used to be all 10,000 receipts and their JSON).
//
//	go test ./log -run NONE -bench PostDuplicates -benchtime 20x
func BenchmarkPostDuplicates(b *testing.B) {
	const n = DefaultMaxEvents
	tl := newTestLog(b, Config{MaxBatch: n})
	h := tl.Handler(HandlerConfig{Tokens: []string{testToken}})
	body := eventLines(0, n)
	post := func() *heapAtFirstWrite {
		req := httptest.NewRequest("POST", "/v1/events", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		w := &heapAtFirstWrite{h: http.Header{}, skip: true}
		h.ServeHTTP(w, req)
		if w.code != 0 && w.code != http.StatusOK {
			b.Fatalf("POST: %d", w.code)
		}
		return w
	}
	post() // the events are new once
	before := liveHeap()
	w := &heapAtFirstWrite{h: http.Header{}}
	req := httptest.NewRequest("POST", "/v1/events", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testToken)
	h.ServeHTTP(w, req)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		post()
	}
	b.ReportMetric(float64(int64(w.live)-int64(before)), "live-B-at-answer")
}
