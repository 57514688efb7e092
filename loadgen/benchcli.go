package loadgen

import (
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/custodylog/custody/client"
)

// NewBenchConfig is the BenchConfig of `custody bench`: writers and
// readers against the server at base, sharing one HTTP client with an
// idle connection per concurrent client (at least 64) and a 2-minute
// timeout, the writers submitting with token through a client that
// neither verifies receipts (the server is measured, not the client's
// checking) nor retries (refusals are counted). Its error is
// client.NewUnverified's (a bad base URL).
func NewBenchConfig(base, token string, writers, readers, batch int, duration time.Duration) (BenchConfig, error) {
	hc := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: max(64, writers+readers+1)}}
	cl, err := client.NewUnverified(base, token, client.WithHTTPClient(hc), client.WithRetries(0))
	if err != nil {
		return BenchConfig{}, err
	}
	return BenchConfig{Writers: writers, Readers: readers, Batch: batch, Duration: duration, Submit: cl, BaseURL: base, HTTP: hc}, nil
}

// WriteText writes res for people, as `custody bench` prints it: the
// writes, the refusals, the reads per kind (with readers) and the
// server's resident memory.
func (res BenchResult) WriteText(w io.Writer) {
	fmt.Fprintf(w, "clients %d, batch %d, %.1fs: %d events in %d requests (%d errors)\n", res.Clients, res.Batch, res.Seconds, res.Events, res.Requests, res.Errors)
	fmt.Fprintf(w, "%.0f events/s with receipts; submit-to-receipt latency p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", res.EventsPerS, res.P50ms, res.P99ms, res.MaxMs)
	fmt.Fprintf(w, "refusals (429/503): %d\n", res.Refusals)
	if res.Readers > 0 {
		fmt.Fprintf(w, "readers %d: %.0f reads/s (%d errors); read latency p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", res.Readers, res.ReadsPerS, res.ReadErrors, res.ReadP50ms, res.ReadP99ms, res.ReadMaxMs)
		for _, k := range ReadKinds {
			s := res.Reads[k]
			fmt.Fprintf(w, "  %-12s %8d requests %8.0f/s %4d errors  p50 %.1f ms, p99 %.1f ms\n", k, s.Requests, s.PerS, s.Errors, s.P50ms, s.P99ms)
		}
	}
	if res.RSSSamples > 0 {
		fmt.Fprintf(w, "server RSS: min %.1f MiB, max %.1f MiB (%d samples)\n", float64(res.RSSMinBytes)/(1<<20), float64(res.RSSMaxBytes)/(1<<20), res.RSSSamples)
	} else {
		fmt.Fprintf(w, "server RSS: no sample (GET /metrics failed)\n")
	}
}
