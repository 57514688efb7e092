package cmd

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
)

// benchResult is what `custody bench --json` prints.
type benchResult struct {
	Clients    int     `json:"clients"`
	Batch      int     `json:"batch"`
	Seconds    float64 `json:"seconds"`
	Events     int64   `json:"events"`
	Requests   int64   `json:"requests"`
	Errors     int64   `json:"errors"`
	EventsPerS float64 `json:"events_per_second"`
	P50ms      float64 `json:"p50_ms"`
	P99ms      float64 `json:"p99_ms"`
	MaxMs      float64 `json:"max_ms"`
}

func (e *env) benchCmd() *cobra.Command {
	var logURL, tokenFile string
	var clients, batch int
	var duration time.Duration
	var asJSON bool
	c := &cobra.Command{
		Use:   "bench --log URL --token-file F [--clients N] [--batch B] [--duration D]",
		Short: "Load a running server with appends and report events/s and latency",
		Long: `bench runs N concurrent clients, each sending batches of B fresh synthetic
events to POST /v1/events for the given duration, and reports the events per
second that came back with receipts and the latency from submitting a batch
to holding its receipts (p50, p99, max). Every event is new (a random run
id is in each sample), so the log grows by the events reported.`,
		Example: `  custody bench --log http://127.0.0.1:8080 --token-file tokens.txt --clients 16 --batch 256 --duration 20s`,
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if logURL == "" {
				return usageError("pass the server's base URL, e.g. --log http://127.0.0.1:8080", "missing --log")
			}
			token, err := readToken(tokenFile)
			if err != nil {
				return err
			}
			cl, err := newClient(logURL, token)
			if err != nil {
				return err
			}
			res, err := runBench(c.Context(), cl, clients, batch, duration)
			if err != nil {
				return err
			}
			if asJSON {
				b, _ := json.Marshal(res)
				fmt.Fprintf(e.stdout, "%s\n", b)
				return nil
			}
			fmt.Fprintf(e.stdout, "clients %d, batch %d, %.1fs: %d events in %d requests (%d errors)\n", res.Clients, res.Batch, res.Seconds, res.Events, res.Requests, res.Errors)
			fmt.Fprintf(e.stdout, "%.0f events/s with receipts; submit-to-receipt latency p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", res.EventsPerS, res.P50ms, res.P99ms, res.MaxMs)
			return nil
		},
	}
	c.Flags().StringVar(&logURL, "log", "", "base URL of the custody server")
	c.Flags().StringVar(&tokenFile, "token-file", "", "file whose first token authenticates (default $CUSTODY_TOKEN)")
	c.Flags().IntVar(&clients, "clients", 16, "concurrent clients")
	c.Flags().IntVar(&batch, "batch", 256, "events per request")
	c.Flags().DurationVar(&duration, "duration", 10*time.Second, "how long to run")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func runBench(ctx context.Context, cl *client, clients, batch int, d time.Duration) (benchResult, error) {
	var rb [6]byte
	rand.Read(rb[:])
	run := hex.EncodeToString(rb[:])
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var events, requests, errs atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			var mine []time.Duration
			for n := 0; ctx.Err() == nil; n++ {
				lines := make([][]byte, batch)
				now := time.Now().UTC().Format(time.RFC3339)
				for i := range lines {
					lines[i] = fmt.Appendf(nil, `{"sample":"bench-%s-%d-%d-%d","action":"collected","location":"ch-zrh-1","region":"EU","time":%q,"actor":"custody-bench"}`, run, c, n, i, now)
				}
				t0 := time.Now()
				// The receipts are counted, not decoded: the client shares the
				// machine with the server, and decoding is not what is measured.
				b, err := cl.postEventsRaw(ctx, lines, 0)
				if ctx.Err() != nil {
					break
				}
				if err == nil && bytes.Count(b, []byte("\n")) != len(lines) {
					err = fmt.Errorf("%d receipt lines for %d events", bytes.Count(b, []byte("\n")), len(lines))
				}
				requests.Add(1)
				if err != nil {
					errs.Add(1)
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					continue
				}
				mine = append(mine, time.Since(t0))
				events.Add(int64(batch))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}(c)
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	res := benchResult{Clients: clients, Batch: batch, Seconds: el, Events: events.Load(), Requests: requests.Load(), Errors: errs.Load()}
	if len(lat) == 0 {
		if firstErr != nil {
			return res, fmt.Errorf("no request succeeded: %w", firstErr)
		}
		return res, fmt.Errorf("no request finished in %s", d)
	}
	slices.Sort(lat)
	ms := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
	res.EventsPerS = float64(res.Events) / el
	res.P50ms, res.P99ms, res.MaxMs = ms(0.5), ms(0.99), ms(1)
	return res, nil
}
