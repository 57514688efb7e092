package cmd

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

type demoStats struct {
	Size    uint64                       `json:"size"`
	Counted uint64                       `json:"counted"`
	Counts  map[string]map[string]uint64 `json:"counts"`
}

// runDemo runs the demo in-process until its report is printed, fetches
// /v1/stats, stops it and returns its stdout and the stats.
func runDemo(t *testing.T, o demoOptions) (string, demoStats) {
	t.Helper()
	var out, errb syncBuffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o.dir = filepath.Join(t.TempDir(), "demo")
	o.listen = "127.0.0.1:0"
	var stats demoStats
	var statsErr error
	o.reported = func(base string) {
		defer cancel()
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			resp, err := http.Get(base + "/v1/stats")
			if err != nil {
				statsErr = err
				return
			}
			stats = demoStats{}
			statsErr = json.NewDecoder(resp.Body).Decode(&stats)
			resp.Body.Close()
			if statsErr != nil || stats.Counted == stats.Size {
				return
			}
		}
	}
	done := make(chan error, 1)
	go func() { done <- e.demo(ctx, o) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("demo did not finish\nstdout:\n%s\nstderr:\n%s", out.String(), errb.String())
	}
	if statsErr != nil {
		t.Fatalf("/v1/stats: %v", statsErr)
	}
	if !strings.Contains(errb.String(), "appended 300/300 events") {
		t.Errorf("no progress on stderr:\n%s", errb.String())
	}
	if !strings.Contains(out.String(), "dashboard:") || !strings.Contains(out.String(), "/checkpoint") {
		t.Errorf("no URLs printed:\n%s", out.String())
	}
	return out.String(), stats
}

func TestDemoClean(t *testing.T) {
	out, stats := runDemo(t, demoOptions{events: 300, seed: 7})
	if !strings.Contains(out, ": 300 entries verified") || !strings.Contains(out, "\nno findings\n") {
		t.Fatalf("report:\n%s", out)
	}
	if stats.Size != 300 {
		t.Fatalf("stats size %d", stats.Size)
	}
	for _, r := range []string{"US", "EU", "UK", "ROW"} {
		if len(stats.Counts[r]) == 0 {
			t.Errorf("no events for region %s: %v", r, stats.Counts)
		}
	}
	// The same seed gives the same workload.
	_, again := runDemo(t, demoOptions{events: 300, seed: 7})
	if !reflect.DeepEqual(stats, again) {
		t.Fatalf("seed 7 twice: %v, then %v", stats, again)
	}
	_, other := runDemo(t, demoOptions{events: 300, seed: 8})
	if reflect.DeepEqual(stats.Counts, other.Counts) {
		t.Errorf("seeds 7 and 8 gave the same counts %v", other.Counts)
	}
}

func TestDemoViolations(t *testing.T) {
	out, _ := runDemo(t, demoOptions{events: 300, seed: 7, violations: true})
	if !strings.Contains(out, "7 findings:") {
		t.Fatalf("want 7 findings:\n%s", out)
	}
	kinds := map[string]map[string]bool{} // sample → kinds
	re := regexp.MustCompile(`(?m)^\d+\s+(\S+)\s+(\S+)\s`)
	for _, m := range re.FindAllStringSubmatch(out[strings.Index(out, "findings:"):], -1) {
		if kinds[m[1]] == nil {
			kinds[m[1]] = map[string]bool{}
		}
		kinds[m[1]][m[2]] = true
	}
	var rerouted, broken int
	for s, k := range kinds {
		switch {
		case strings.HasPrefix(s, "smp-eu-") && len(k) == 2 && k["reroute"] && k["continuity"]:
			rerouted++
		case len(k) == 1 && k["continuity"]:
			broken++
		default:
			t.Errorf("sample %s: unexpected findings %v", s, k)
		}
	}
	if rerouted != 3 || broken != 1 {
		t.Fatalf("want 3 rerouted EU samples and 1 broken transfer, got %d and %d:\n%s", rerouted, broken, out)
	}
	if !strings.Contains(out, "analysed at ru-mow-1") {
		t.Errorf("no ru-mow-1 finding:\n%s", out)
	}
}
