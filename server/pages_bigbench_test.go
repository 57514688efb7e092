//go:build bigbench

package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/custodylog/custody/loadgen"
	"github.com/custodylog/custody/server"
)

// TestBigLogPages measures the dashboard's pages on a big log as an
// operator runs it: `custody init`, a prefill of CUSTODY_BIG_ENTRIES
// (default 10 M) entries of the Lifecycle workload (a year of whole sample
// lifecycles, ~23 data centres, six regions, a few reroutes) under
// $TMPDIR, then the server with the workload's policy; it times GET /,
// /flows, /timeline (default range and all), a flow's samples and /report,
// 15 requests each, and deletes the log. Not run in CI:
//
//	go test -tags bigbench ./server -run TestBigLogPages -v -timeout 2h
func TestBigLogPages(t *testing.T) {
	n := uint64(10_000_000)
	if s := os.Getenv("CUSTODY_BIG_ENTRIES"); s != "" {
		var err error
		if n, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, err := os.MkdirTemp(os.Getenv("TMPDIR"), "custody-pages-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if _, err := server.InitWith(ctx, dir, "bench.example/pages", "", server.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte(loadgen.LifecyclePolicy()), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res, err := server.Prefill(ctx, dir, "", n, loadgen.PrefillOptions{Workload: loadgen.Lifecycle(n)})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("prefill: %d entries in %v (%.0f entries/s)", res.Size, time.Since(start).Round(time.Second), float64(n)/time.Since(start).Seconds())

	start = time.Now()
	ready := make(chan string, 1)
	srv, err := server.Open(ctx, server.Options{Dir: dir, Policy: policy}, server.Config{Listen: "127.0.0.1:0", Ready: func(a string) { ready <- a }})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	var base string
	select {
	case a := <-ready:
		base = "http://" + a
	case err := <-done:
		t.Fatal(err)
	}
	t.Logf("start-up: %v", time.Since(start).Round(time.Millisecond))

	get := func(path string) (time.Duration, int, int) {
		t0 := time.Now()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return time.Since(t0), resp.StatusCode, len(b)
	}
	measure := func(when string) {
		for _, p := range []string{"/", "/flows", "/timeline", "/timeline?range=all", "/flows?region=EU&from=de-fra-1&to=de-lab-1", "/report"} {
			var ds []time.Duration
			var status, size int
			for range 15 {
				d, s, l := get(p)
				ds, status, size = append(ds, d), s, l
			}
			slices.Sort(ds)
			t.Logf("%s GET %-45s %d  %7d bytes  median %6.1f ms  max %6.1f ms", when, p, status, size, ms(ds[len(ds)/2]), ms(ds[len(ds)-1]))
			if status != http.StatusOK {
				t.Errorf("GET %s: %d", p, status)
			}
		}
	}
	measure("while the built-in audit runs:")
	// Then once the built-in audit has read the whole log.
	for deadline := time.Now().Add(30 * time.Minute); ; time.Sleep(5 * time.Second) {
		resp, err := http.Get(base + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if bytes.Contains(b, fmt.Appendf(nil, `data-audited="%d"`, res.Size)) || time.Now().After(deadline) {
			break
		}
	}
	measure("audit caught up:")
	cancel()
	<-done
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// TestSampleIndexBytesLifecycle states the bytes per entry the sample
// index adds to a SQLite log of the Lifecycle workload (five events a
// sample, as real samples have): two logs of CUSTODY_BIG_ENTRIES (default
// 1 M) entries prefilled under $TMPDIR, one keeping the index, compared by
// the size of their database files after a checkpoint of the WAL.
//
//	CUSTODY_BIG_ENTRIES=1000000 go test -tags bigbench ./server -run TestSampleIndexBytesLifecycle -v -timeout 1h
func TestSampleIndexBytesLifecycle(t *testing.T) {
	n := uint64(1_000_000)
	if s := os.Getenv("CUSTODY_BIG_ENTRIES"); s != "" {
		var err error
		if n, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	size := map[bool]int64{}
	for _, index := range []bool{false, true} {
		dir, err := os.MkdirTemp(os.Getenv("TMPDIR"), "custody-sidx-bytes-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		if _, err := server.InitWith(ctx, dir, "bench.example/sidx", "", server.InitOptions{SampleIndex: index}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := server.Prefill(ctx, dir, "", n, loadgen.PrefillOptions{Workload: loadgen.Lifecycle(n), Run: "bytes"}); err != nil {
			t.Fatal(err)
		}
		files, _ := filepath.Glob(filepath.Join(dir, server.DBFile+"*"))
		for _, f := range files {
			if fi, err := os.Stat(f); err == nil {
				size[index] += fi.Size()
			}
		}
		t.Logf("index %v: %d entries in %v, database files %d bytes", index, n, time.Since(start).Round(time.Second), size[index])
	}
	t.Logf("the sample index adds %.1f bytes an entry (%d entries, %d samples)", float64(size[true]-size[false])/float64(n), n, n/5)
}
