package dashboard

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/custodylog/custody/record"
)

// BenchmarkPageView measures one GET / of the dashboard, over HTTP, on a log
// of CUSTODY_BENCH_ENTRIES entries (default 1,000,000) with the routing
// policy and the built-in audit on. Building the log takes a while; the
// timer covers only the page views.
//
//	go test ./dashboard -run NONE -bench PageView -benchtime 200x
func BenchmarkPageView(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("CUSTODY_BENCH_ENTRIES"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	// The log keeps the sample index (the sample page proves the chain
	// complete) unless CUSTODY_BENCH_NO_INDEX is set.
	site := startSiteIndex(b, testPolicy(b), false, os.Getenv("CUSTODY_BENCH_NO_INDEX") == "")
	l, d := site.log, site.dash

	// n events from 8 writers: samples of every region, 5 events each.
	start := time.Now()
	regions := []struct{ region, edge string }{{"US", "us-ash-1"}, {"EU", "de-fra-1"}, {"UK", "uk-lon-1"}, {"ROW", "sg-sin-1"}}
	const writers, batch = 8, 1000
	var wg sync.WaitGroup
	errc := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var evs []record.Event
			for i := w; i < n/5; i += writers {
				r := regions[i%len(regions)]
				id := fmt.Sprintf("smp-%07d", i)
				at := i % 1000
				evs = append(evs,
					site.ev(id, r.region, record.Collected, r.edge, "", at),
					site.ev(id, r.region, record.Transferred, r.edge, "ch-zrh-1", at),
					site.ev(id, r.region, record.Analysed, "ch-zrh-1", "", at),
					site.ev(id, r.region, record.Deleted, "ch-zrh-1", "", at),
					site.ev(id, r.region, record.Deleted, r.edge, "", at))
				if len(evs) >= batch {
					if _, err := l.AddMany(ctx, evs); err != nil {
						errc <- err
						return
					}
					evs = evs[:0]
				}
			}
			if len(evs) > 0 {
				if _, err := l.AddMany(ctx, evs); err != nil {
					errc <- err
				}
			}
		}(w)
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	size := l.Checkpoint().Size
	for d.auditor.view(size).Audited < size || site.stats.Counted() < size {
		time.Sleep(10 * time.Millisecond)
	}
	b.Logf("log of %d entries built and audited in %s", size, time.Since(start).Round(time.Second))
	srv := site.srv

	get := func(path string) int {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("GET %s = %d", path, resp.StatusCode)
		}
		return len(body)
	}
	// "index" builds the page on every view (as the first view after each
	// new checkpoint does); "index-cached" is a view of an unchanged
	// checkpoint, served from the page built before.
	for _, name := range []string{"index", "index-cached"} {
		b.Run(name, func(b *testing.B) {
			var bytes int
			for b.Loop() {
				if name == "index" {
					d.index.mu.Lock()
					d.index.page = nil
					d.index.mu.Unlock()
				}
				bytes = get("/")
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/view")
			b.ReportMetric(float64(bytes), "bytes/page")
		})
	}
	b.Run("sample", func(b *testing.B) {
		i := 0
		for b.Loop() {
			get(fmt.Sprintf("/sample?id=smp-%07d", (i*7919)%(n/5)))
			i++
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/view")
	})
}

// BenchmarkPageViewManyKeys is the worst case of the chart: a log whose
// events carry CUSTODY_BENCH_KEYS (default 600) distinct regions and as
// many distinct data centres, with the routing policy. Before the chart
// was bounded, 600 such pairs made GET / a 147 MB page built in 19 s.
// "cached" is a view of an unchanged checkpoint; "build" builds the page
// every time (as the first view after each new checkpoint does).
//
//	go test ./dashboard -run NONE -bench PageViewManyKeys -benchtime 50x
func BenchmarkPageViewManyKeys(b *testing.B) {
	n := 600
	if s := os.Getenv("CUSTODY_BENCH_KEYS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	site := startSite(b, testPolicy(b), false)
	site.add(b, site.workload(5, true)...)
	site.add(b, site.floodKeys(n)...)
	get := func() int {
		resp, err := http.Get(site.srv.URL + "/")
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("GET / = %d", resp.StatusCode)
		}
		return len(body)
	}
	for _, mode := range []string{"cached", "build"} {
		b.Run(mode, func(b *testing.B) {
			var bytes int
			for b.Loop() {
				if mode == "build" {
					site.dash.index.mu.Lock()
					site.dash.index.page = nil
					site.dash.index.mu.Unlock()
				}
				bytes = get()
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/view")
			b.ReportMetric(float64(bytes), "bytes/page")
		})
	}
}
