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
	res, err := loadgen.PrefillDir(ctx, dir, "", n, loadgen.PrefillOptions{Workload: loadgen.Lifecycle(n)})
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
