package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/custodylog/custody/client"
	"github.com/custodylog/custody/verify"
)

// BenchConfig is a bench run against a running server.
type BenchConfig struct {
	// Writers submit through Submit, each a batch of Batch new events at a
	// time (Event, one run for the whole bench), for Duration. Submit
	// should have no retries (client.WithRetries(0)): a refusal (429, 503)
	// is counted and the writer backs off 250 ms, as the server asks.
	Writers, Batch int
	Submit         *client.Client
	// Readers more clients loop over random reads of BaseURL with HTTP.
	Readers  int
	BaseURL  string
	HTTP     *http.Client
	Duration time.Duration
}

// BenchResult is what a bench run measured (custody bench --json prints
// it).
type BenchResult struct {
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
	// Readers is the number of concurrent read clients.
	Readers int `json:"readers"`
	// Reads holds one entry per read kind (ReadKinds, only with readers),
	// and metrics (the RSS sampler's GET /metrics).
	Reads       map[string]*ReadStats `json:"reads,omitempty"`
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

// ReadStats counts one kind of read request.
type ReadStats struct {
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	PerS     float64 `json:"per_second"`
	P50ms    float64 `json:"p50_ms"`
	P99ms    float64 `json:"p99_ms"`
}

// ReadKinds are the read requests a bench reader picks from at random.
var ReadKinds = []string{"checkpoint", "tile", "entries", "inclusion", "consistency"}

// kind collects the counts and latencies of one kind of request.
type kind struct {
	requests, errs atomic.Int64
	mu             sync.Mutex
	lat            []time.Duration
}

func (k *kind) add(mine []time.Duration) {
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

// bench is one run in progress.
type bench struct {
	cfg      BenchConfig
	run      string
	next     atomic.Uint64 // the next event number
	events   atomic.Int64
	refusals atomic.Int64
	writes   kind
	kinds    map[string]*kind
	size     atomic.Uint64 // the largest checkpoint size a reader saw
	mu       sync.Mutex
	firstErr error
	rssMin   uint64
	rssMax   uint64
	rssN     int
}

func (b *bench) fail(what string, err error) {
	b.mu.Lock()
	if b.firstErr == nil {
		b.firstErr = fmt.Errorf("%s: %w", what, err)
	}
	b.mu.Unlock()
}

// Bench runs the writers, readers and RSS sampler of cfg until its
// duration is over and returns what they measured. Writers count the
// receipt lines of each answer (client.Client.Send) without decoding or
// verifying them: the client shares the machine with the server, and
// verifying receipts is not what is measured. An event counts once its
// request's answer holds one receipt line per event. The error is for a
// run in which no write finished; errors of single requests are in the
// result.
func Bench(ctx context.Context, cfg BenchConfig) (BenchResult, error) {
	b := &bench{cfg: cfg, run: NewRun(), kinds: map[string]*kind{"metrics": {}}}
	for _, k := range ReadKinds {
		b.kinds[k] = &kind{}
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for range cfg.Writers {
		wg.Go(func() { b.write(ctx) })
	}
	for range cfg.Readers {
		wg.Go(func() { b.read(ctx) })
	}
	wg.Go(func() { b.sampleRSS(ctx) })
	wg.Wait()
	return b.result(time.Since(start).Seconds())
}

// write submits batches until ctx is done.
func (b *bench) write(ctx context.Context) {
	var mine []time.Duration
	defer func() { b.writes.add(mine) }()
	for ctx.Err() == nil {
		lines := make([][]byte, b.cfg.Batch)
		now := time.Now().UTC().Truncate(time.Second)
		first := b.next.Add(uint64(len(lines))) - uint64(len(lines))
		for i := range lines {
			lines[i] = Event(b.run, first+uint64(i), now).Canonical()
		}
		t0 := time.Now()
		n, err := b.cfg.Submit.Send(ctx, lines)
		if ctx.Err() != nil {
			return
		}
		if err == nil && n != len(lines) {
			err = fmt.Errorf("%d receipt lines for %d events", n, len(lines))
		}
		b.writes.requests.Add(1)
		var se *client.StatusError
		if errors.As(err, &se) && (se.Code == http.StatusTooManyRequests || se.Code == http.StatusServiceUnavailable) {
			b.refusals.Add(1)
			// Back off briefly, as Retry-After asks.
			select {
			case <-time.After(250 * time.Millisecond):
			case <-ctx.Done():
			}
			continue
		}
		if err != nil {
			b.writes.errs.Add(1)
			b.fail("POST /v1/events", err)
			continue
		}
		mine = append(mine, time.Since(t0))
		b.events.Add(int64(len(lines)))
	}
}

// read makes random reads of the tree until ctx is done. Answers are
// parsed strictly: a malformed one is an error.
func (b *bench) read(ctx context.Context) {
	r := mrand.New(mrand.NewPCG(mrand.Uint64(), mrand.Uint64()))
	mine := map[string][]time.Duration{}
	defer func() {
		for k, lat := range mine {
			b.kinds[k].add(lat)
		}
	}()
	for ctx.Err() == nil {
		kind := ReadKinds[r.IntN(len(ReadKinds))]
		path := readPath(r, kind, b.size.Load())
		if path == "" {
			kind, path = "checkpoint", "/checkpoint"
		}
		k := b.kinds[kind]
		t0 := time.Now()
		body, err := b.get(ctx, path)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			switch kind {
			case "checkpoint":
				var size uint64
				if size, err = parseCheckpointSize(body); err == nil {
					b.observe(size)
				}
			case "inclusion":
				_, err = verify.ParseInclusionProofJSON(body)
			case "consistency":
				_, err = verify.ParseConsistencyProofJSON(body)
			}
		}
		k.requests.Add(1)
		if err != nil {
			k.errs.Add(1)
			b.fail("GET "+path, err)
			continue
		}
		mine[kind] = append(mine[kind], time.Since(t0))
	}
}

// observe records a checkpoint size seen by a reader.
func (b *bench) observe(size uint64) {
	for {
		old := b.size.Load()
		if size <= old || b.size.CompareAndSwap(old, size) {
			return
		}
	}
}

// sampleRSS reads the server's RSS from /metrics every second, from the
// start.
func (b *bench) sampleRSS(ctx context.Context) {
	k := b.kinds["metrics"]
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		t0 := time.Now()
		body, err := b.get(ctx, "/metrics")
		if ctx.Err() != nil {
			return
		}
		k.requests.Add(1)
		if err == nil {
			if v, ok := rssFromMetrics(body); ok {
				k.add([]time.Duration{time.Since(t0)})
				b.mu.Lock()
				if b.rssN == 0 || v < b.rssMin {
					b.rssMin = v
				}
				b.rssMax = max(b.rssMax, v)
				b.rssN++
				b.mu.Unlock()
			} else {
				err = errors.New("no process_resident_memory_bytes in /metrics")
			}
		}
		if err != nil {
			k.errs.Add(1)
			b.fail("GET /metrics", err)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// get returns the body of a 2xx answer to GET path.
func (b *bench) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(b.cfg.BaseURL, "/")+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := b.cfg.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("server answered %d: %.200s", resp.StatusCode, bytes.TrimSpace(body))
	}
	return body, nil
}

func (b *bench) result(el float64) (BenchResult, error) {
	res := BenchResult{
		Clients: b.cfg.Writers, Batch: b.cfg.Batch, Seconds: el, Events: b.events.Load(),
		Requests: b.writes.requests.Load(), Errors: b.writes.errs.Load(), Refusals: b.refusals.Load(),
		Readers: b.cfg.Readers, RSSSamples: b.rssN, RSSMinBytes: b.rssMin, RSSMaxBytes: b.rssMax,
	}
	if b.firstErr != nil {
		res.FirstError = b.firstErr.Error()
	}
	var allReads []time.Duration
	var nReads int64
	res.Reads = map[string]*ReadStats{}
	for name, k := range b.kinds {
		if name != "metrics" && b.cfg.Readers == 0 {
			continue
		}
		slices.Sort(k.lat)
		s := &ReadStats{Requests: k.requests.Load(), Errors: k.errs.Load()}
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
	if b.cfg.Writers > 0 && len(b.writes.lat) == 0 {
		if b.firstErr != nil {
			return res, fmt.Errorf("no request succeeded: %w", b.firstErr)
		}
		return res, fmt.Errorf("no request finished in %s", b.cfg.Duration)
	}
	slices.Sort(b.writes.lat)
	res.EventsPerS = float64(res.Events) / el
	res.P50ms, res.P99ms, res.MaxMs = quantiles(b.writes.lat)
	return res, nil
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
