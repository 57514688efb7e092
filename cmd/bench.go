package cmd

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/custodylog/custody/verify"
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

	// Refusals are writes answered 429 or 503 (the server shedding load on
	// purpose, with Retry-After); they are not errors.
	Refusals int64 `json:"refusals"`
	// Readers is the number of concurrent read clients (--readers).
	Readers int `json:"readers"`
	// Reads holds one entry per read kind: checkpoint, tile, entries,
	// inclusion, consistency (only with --readers), and metrics (the RSS
	// sampler's GET /metrics).
	Reads       map[string]*readStats `json:"reads,omitempty"`
	ReadsPerS   float64               `json:"reads_per_second"`
	ReadErrors  int64                 `json:"read_errors"`
	ReadP50ms   float64               `json:"read_p50_ms"`
	ReadP99ms   float64               `json:"read_p99_ms"`
	ReadMaxMs   float64               `json:"read_max_ms"`
	TotalErrors int64                 `json:"total_errors"`
	// RSS of the server process from /metrics (process_resident_memory_bytes),
	// sampled every second; zero if no sample could be taken.
	RSSSamples  int    `json:"rss_samples"`
	RSSMinBytes uint64 `json:"rss_min_bytes"`
	RSSMaxBytes uint64 `json:"rss_max_bytes"`
	FirstError  string `json:"first_error,omitempty"`
}

// readStats counts one kind of read request.
type readStats struct {
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	PerS     float64 `json:"per_second"`
	P50ms    float64 `json:"p50_ms"`
	P99ms    float64 `json:"p99_ms"`
}

// readKinds are the read requests a bench reader picks from at random.
var readKinds = []string{"checkpoint", "tile", "entries", "inclusion", "consistency"}

func (e *env) benchCmd() *cobra.Command {
	var logURL, tokenFile string
	var clients, readers, batch int
	var duration time.Duration
	var asJSON bool
	c := &cobra.Command{
		Use:   "bench --log URL --token-file F [--clients N] [--readers R] [--batch B] [--duration D]",
		Short: "Load a running server with appends (and reads) and report throughput and latency",
		Long: `bench runs N concurrent clients, each sending batches of B fresh synthetic
events to POST /v1/events for the given duration, and reports the events per
second that came back with receipts and the latency from submitting a batch
to holding its receipts (p50, p99, max). Every event is new (a random run
id is in each sample), so the log grows by the events reported.

With --readers R, R more clients loop over random reads of the current tree
at the same time: GET /checkpoint, a full or partial hash tile or entry
bundle that the latest checkpoint implies, an inclusion proof and a
consistency proof, each counted per kind with its latency.

Writes answered 429 or 503 are deliberate refusals (load shedding) and are
counted apart; any other non-2xx answer or transport error is an error, and
bench then exits 1 after printing its report. The server's resident memory
is sampled from /metrics every second and reported as min/max.`,
		Example: `  custody bench --log http://127.0.0.1:8080 --token-file tokens.txt --clients 16 --batch 256 --duration 20s
  custody bench --log http://127.0.0.1:8080 --token-file tokens.txt --clients 40 --readers 160 --batch 64 --duration 60s`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if logURL == "" {
				return usageError("pass the server's base URL, e.g. --log http://127.0.0.1:8080", "missing --log")
			}
			if clients < 0 || readers < 0 || clients+readers == 0 || batch <= 0 || duration <= 0 {
				return usageError("use --clients >= 0, --readers >= 0 (not both 0), --batch >= 1 and a positive --duration", "bad bench parameters")
			}
			token, err := readToken(tokenFile)
			if err != nil {
				return err
			}
			cl, err := newClient(logURL, token)
			if err != nil {
				return err
			}
			if t, ok := cl.http.Transport.(*http.Transport); ok && clients+readers+1 > t.MaxIdleConnsPerHost {
				t.MaxIdleConnsPerHost = clients + readers + 1
			}
			res, err := runBench(c.Context(), cl, benchConfig{clients: clients, readers: readers, batch: batch, duration: duration})
			if err != nil {
				return err
			}
			if asJSON {
				b, _ := json.Marshal(res)
				fmt.Fprintf(e.stdout, "%s\n", b)
			} else {
				printBench(e, res)
			}
			if res.TotalErrors > 0 {
				return withHint(fmt.Errorf("bench: %d errors (%d writes, %d reads); first: %s", res.TotalErrors, res.Errors, res.ReadErrors, res.FirstError),
					"429/503 answers to writes are refusals, not errors; anything else non-2xx or a transport failure is one")
			}
			return nil
		},
	}
	c.Flags().StringVar(&logURL, "log", "", "base URL of the custody server")
	c.Flags().StringVar(&tokenFile, "token-file", "", "file whose first token authenticates (default $CUSTODY_TOKEN)")
	c.Flags().IntVar(&clients, "clients", 16, "concurrent writing clients")
	c.Flags().IntVar(&readers, "readers", 0, "additional concurrent clients making random read requests")
	c.Flags().IntVar(&batch, "batch", 256, "events per request")
	c.Flags().DurationVar(&duration, "duration", 10*time.Second, "how long to run")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func printBench(e *env, res benchResult) {
	fmt.Fprintf(e.stdout, "clients %d, batch %d, %.1fs: %d events in %d requests (%d errors)\n", res.Clients, res.Batch, res.Seconds, res.Events, res.Requests, res.Errors)
	fmt.Fprintf(e.stdout, "%.0f events/s with receipts; submit-to-receipt latency p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", res.EventsPerS, res.P50ms, res.P99ms, res.MaxMs)
	fmt.Fprintf(e.stdout, "refusals (429/503): %d\n", res.Refusals)
	if res.Readers > 0 {
		fmt.Fprintf(e.stdout, "readers %d: %.0f reads/s (%d errors); read latency p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", res.Readers, res.ReadsPerS, res.ReadErrors, res.ReadP50ms, res.ReadP99ms, res.ReadMaxMs)
		for _, k := range readKinds {
			s := res.Reads[k]
			fmt.Fprintf(e.stdout, "  %-12s %8d requests %8.0f/s %4d errors  p50 %.1f ms, p99 %.1f ms\n", k, s.Requests, s.PerS, s.Errors, s.P50ms, s.P99ms)
		}
	}
	if res.RSSSamples > 0 {
		fmt.Fprintf(e.stdout, "server RSS: min %.1f MiB, max %.1f MiB (%d samples)\n", float64(res.RSSMinBytes)/(1<<20), float64(res.RSSMaxBytes)/(1<<20), res.RSSSamples)
	} else {
		fmt.Fprintf(e.stdout, "server RSS: no sample (GET /metrics failed)\n")
	}
}

type benchConfig struct {
	clients, readers, batch int
	duration                time.Duration
}

// benchKind collects the counts and latencies of one kind of request.
type benchKind struct {
	requests, errs atomic.Int64
	mu             sync.Mutex
	lat            []time.Duration
}

func (k *benchKind) add(mine []time.Duration) {
	k.mu.Lock()
	k.lat = append(k.lat, mine...)
	k.mu.Unlock()
}

// quantiles returns p50, p99 and max in milliseconds of sorted latencies.
func quantiles(lat []time.Duration) (p50, p99, max float64) {
	if len(lat) == 0 {
		return 0, 0, 0
	}
	ms := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
	return ms(0.5), ms(0.99), ms(1)
}

// benchTree is what a reader knows of the tree: the latest checkpoint size.
type benchTree struct{ size atomic.Uint64 }

func (t *benchTree) observe(size uint64) {
	for {
		old := t.size.Load()
		if size <= old || t.size.CompareAndSwap(old, size) {
			return
		}
	}
}

// parseCheckpointSize reads the origin, size and root hash lines of a
// checkpoint note (not verified) and returns the size.
func parseCheckpointSize(b []byte) (uint64, error) {
	lines := strings.SplitN(string(b), "\n", 4)
	if len(lines) < 4 || lines[0] == "" || lines[2] == "" {
		return 0, fmt.Errorf("checkpoint is not origin, size and root lines: %q", b)
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("checkpoint size line %q: %v", lines[1], err)
	}
	return size, nil
}

// randomTile picks a hash tile (or, with entries, an entry bundle) that a
// tree of size entries implies, full or partial; ok is false if there is none.
func randomTile(r *mrand.Rand, size uint64, entries bool) (verify.TileAddr, bool) {
	if size == 0 {
		return verify.TileAddr{}, false
	}
	var level uint8
	if !entries {
		levels := 0
		for verify.FullTiles(uint8(levels), size) > 0 || verify.PartialWidth(uint8(levels), size) > 0 {
			levels++
		}
		level = uint8(r.IntN(levels))
	}
	full, w := verify.FullTiles(level, size), verify.PartialWidth(level, size)
	n := full
	if w > 0 {
		n++
	}
	i := r.Uint64N(n)
	a := verify.TileAddr{Entries: entries, Level: level, Index: i}
	if i == full {
		a.Width = w
	}
	return a, true
}

// readPath returns a random request path of the given kind for a tree of
// size entries, or "" if the tree has nothing of that kind yet.
func readPath(r *mrand.Rand, kind string, size uint64) string {
	switch kind {
	case "checkpoint":
		return "/checkpoint"
	case "tile", "entries":
		a, ok := randomTile(r, size, kind == "entries")
		if !ok {
			return ""
		}
		return "/" + a.Path()
	case "inclusion":
		if size == 0 {
			return ""
		}
		return fmt.Sprintf("/v1/proof/inclusion?index=%d&size=%d", r.Uint64N(size), size)
	case "consistency":
		if size == 0 {
			return ""
		}
		return fmt.Sprintf("/v1/proof/consistency?from=%d&to=%d", 1+r.Uint64N(size), size)
	}
	return ""
}

// rssFromMetrics finds process_resident_memory_bytes in a Prometheus text
// exposition.
func rssFromMetrics(b []byte) (uint64, bool) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "process_resident_memory_bytes ")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || f < 0 {
			return 0, false
		}
		return uint64(f), true
	}
	return 0, false
}

// isRefusal reports whether a write error is the server refusing on purpose.
func isRefusal(err error) bool {
	var he *httpError
	return errors.As(err, &he) && (he.code == http.StatusTooManyRequests || he.code == http.StatusServiceUnavailable)
}

func runBench(ctx context.Context, cl *client, cfg benchConfig) (benchResult, error) {
	clients, batch, d := cfg.clients, cfg.batch, cfg.duration
	var rb [6]byte
	rand.Read(rb[:])
	run := hex.EncodeToString(rb[:])
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var events, refusals atomic.Int64
	var writes benchKind
	kinds := map[string]*benchKind{"metrics": {}}
	for _, k := range readKinds {
		kinds[k] = &benchKind{}
	}
	var mu sync.Mutex
	var firstErr error
	fail := func(what string, err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = fmt.Errorf("%s: %w", what, err)
		}
		mu.Unlock()
	}
	var tree benchTree
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
				writes.requests.Add(1)
				if err != nil {
					if isRefusal(err) {
						refusals.Add(1)
						// Back off briefly, as Retry-After asks.
						select {
						case <-time.After(250 * time.Millisecond):
						case <-ctx.Done():
						}
						continue
					}
					writes.errs.Add(1)
					fail("POST /v1/events", err)
					continue
				}
				mine = append(mine, time.Since(t0))
				events.Add(int64(batch))
			}
			writes.add(mine)
		}(c)
	}
	for rd := 0; rd < cfg.readers; rd++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := mrand.New(mrand.NewPCG(mrand.Uint64(), mrand.Uint64()))
			mine := map[string][]time.Duration{}
			for ctx.Err() == nil {
				kind := readKinds[r.IntN(len(readKinds))]
				path := readPath(r, kind, tree.size.Load())
				if path == "" {
					kind, path = "checkpoint", "/checkpoint"
				}
				k := kinds[kind]
				t0 := time.Now()
				b, err := cl.do(ctx, http.MethodGet, path, nil)
				if ctx.Err() != nil {
					break
				}
				if err == nil {
					// Answers are parsed strictly: a malformed one is an error.
					switch kind {
					case "checkpoint":
						var size uint64
						if size, err = parseCheckpointSize(b); err == nil {
							tree.observe(size)
						}
					case "inclusion":
						_, err = verify.ParseInclusionProofJSON(b)
					case "consistency":
						_, err = verify.ParseConsistencyProofJSON(b)
					}
				}
				k.requests.Add(1)
				if err != nil {
					k.errs.Add(1)
					fail("GET "+path, err)
					continue
				}
				mine[kind] = append(mine[kind], time.Since(t0))
			}
			for kind, lat := range mine {
				kinds[kind].add(lat)
			}
		}()
	}
	// The RSS sampler: one GET /metrics a second, from the start.
	var rssMin, rssMax uint64
	var rssN int
	wg.Add(1)
	go func() {
		defer wg.Done()
		k := kinds["metrics"]
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			t0 := time.Now()
			b, err := cl.do(ctx, http.MethodGet, "/metrics", nil)
			if ctx.Err() != nil {
				return
			}
			k.requests.Add(1)
			if err == nil {
				if v, ok := rssFromMetrics(b); ok {
					k.add([]time.Duration{time.Since(t0)})
					mu.Lock()
					if rssN == 0 || v < rssMin {
						rssMin = v
					}
					rssMax = max(rssMax, v)
					rssN++
					mu.Unlock()
				} else {
					err = errors.New("no process_resident_memory_bytes in /metrics")
				}
			}
			if err != nil {
				k.errs.Add(1)
				fail("GET /metrics", err)
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
				return
			}
		}
	}()
	wg.Wait()
	el := time.Since(start).Seconds()
	res := benchResult{
		Clients: clients, Batch: batch, Seconds: el, Events: events.Load(),
		Requests: writes.requests.Load(), Errors: writes.errs.Load(), Refusals: refusals.Load(),
		Readers: cfg.readers, RSSSamples: rssN, RSSMinBytes: rssMin, RSSMaxBytes: rssMax,
	}
	if firstErr != nil {
		res.FirstError = firstErr.Error()
	}
	var allReads []time.Duration
	var nReads int64
	res.Reads = map[string]*readStats{}
	for name, k := range kinds {
		if name != "metrics" && cfg.readers == 0 {
			continue
		}
		slices.Sort(k.lat)
		s := &readStats{Requests: k.requests.Load(), Errors: k.errs.Load()}
		s.PerS = float64(s.Requests) / el
		s.P50ms, s.P99ms, _ = quantiles(k.lat)
		res.Reads[name] = s
		res.ReadErrors += s.Errors
		if name != "metrics" {
			allReads = append(allReads, k.lat...)
			nReads += s.Requests
		}
	}
	slices.Sort(allReads)
	res.ReadsPerS = float64(nReads) / el
	res.ReadP50ms, res.ReadP99ms, res.ReadMaxMs = quantiles(allReads)
	res.TotalErrors = res.Errors + res.ReadErrors
	if clients > 0 && len(writes.lat) == 0 {
		if firstErr != nil {
			return res, fmt.Errorf("no request succeeded: %w", firstErr)
		}
		return res, fmt.Errorf("no request finished in %s", d)
	}
	slices.Sort(writes.lat)
	res.EventsPerS = float64(res.Events) / el
	res.P50ms, res.P99ms, res.MaxMs = quantiles(writes.lat)
	return res, nil
}
