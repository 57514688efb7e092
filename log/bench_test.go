package log

import (
	"context"
	"fmt"
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
