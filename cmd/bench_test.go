package cmd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/custodylog/custody/verify"
)

func TestBenchHelpers(t *testing.T) {
	size, err := parseCheckpointSize([]byte("example.com/x\n1234\nAAAA\n\n— sig\n"))
	if err != nil || size != 1234 {
		t.Fatalf("parseCheckpointSize = %d, %v", size, err)
	}
	if _, err := parseCheckpointSize([]byte("example.com/x\n12x\n")); err == nil {
		t.Fatal("parseCheckpointSize accepted a bad checkpoint")
	}
	if v, ok := rssFromMetrics([]byte("# HELP x\nprocess_resident_memory_bytes 1.6482304e+07\n")); !ok || v != 16482304 {
		t.Fatalf("rssFromMetrics = %d, %v", v, ok)
	}
	r := mrand.New(mrand.NewPCG(1, 2))
	for _, size := range []uint64{1, 255, 256, 257, 65536, 65537, 1 << 24, 123456789} {
		for range 200 {
			for _, entries := range []bool{false, true} {
				a, ok := randomTile(r, size, entries)
				if !ok {
					t.Fatalf("no tile for size %d", size)
				}
				if _, err := verify.ParseTilePath(a.Path()); err != nil {
					t.Fatal(err)
				}
				full, w := verify.FullTiles(a.Level, size), verify.PartialWidth(a.Level, size)
				if a.Index > full || (a.Index == full && (a.Width != w || w == 0)) || (a.Index < full && a.Width != 0) {
					t.Fatalf("size %d: tile %s is not in the tree", size, a.Path())
				}
			}
		}
	}
	if _, ok := randomTile(r, 0, false); ok {
		t.Fatal("a tile for the empty tree")
	}
}

// TestBenchDrill runs bench with readers against a real server: no errors,
// every read kind exercised, RSS sampled.
func TestBenchDrill(t *testing.T) {
	dir := t.TempDir()
	logDir := filepath.Join(dir, "log")
	run(t, "", "init", "--dir", logDir, "--origin", "example.com/bench")
	tokens := writeTokens(t, dir)
	srv := startServer(t, "--dir", logDir, "--token-file", tokens, "--max-wait", "5ms")
	code, out, stderr := run(t, "", "bench", "--log", srv.url, "--token-file", tokens, "--clients", "2", "--readers", "4", "--batch", "8", "--duration", "2s", "--json")
	if code != 0 {
		t.Fatalf("bench: %d %s %s", code, out, stderr)
	}
	var res benchResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if res.Events == 0 || res.TotalErrors != 0 || res.RSSSamples == 0 || res.RSSMaxBytes < res.RSSMinBytes {
		t.Fatalf("bench result: %+v", res)
	}
	for _, k := range readKinds {
		if res.Reads[k] == nil || res.Reads[k].Requests == 0 {
			t.Errorf("no %s reads: %s", k, out)
		}
	}
}

// TestBenchErrorsExit1 checks that 429 answers to writes are counted as
// refusals and not errors, and that a failing read makes bench exit 1.
func TestBenchErrorsExit1(t *testing.T) {
	var posts, size atomic.Int64
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost:
			body, _ := io.ReadAll(r.Body)
			if posts.Add(1)%2 == 1 {
				w.Header().Set("Retry-After", "1")
				http.Error(w, `{"error":"slow down"}`, http.StatusTooManyRequests)
				return
			}
			w.Write(bytes.Repeat([]byte("{}\n"), bytes.Count(body, []byte("\n"))))
		case r.URL.Path == "/metrics":
			w.Write([]byte("process_resident_memory_bytes 1000\n"))
		case r.URL.Path == "/checkpoint":
			fmt.Fprintf(w, "example.com/fake\n%d\nAAAA\n\n", size.Load())
		default:
			http.Error(w, "boom", http.StatusInternalServerError)
		}
	}))
	defer fake.Close()
	t.Setenv("CUSTODY_TOKEN", "x")
	code, out, stderr := run(t, "", "bench", "--log", fake.URL, "--clients", "1", "--readers", "2", "--batch", "3", "--duration", "1200ms", "--json")
	var res benchResult
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res.Refusals == 0 || res.Events == 0 || res.TotalErrors != 0 || res.RSSMaxBytes != 1000 {
		t.Fatalf("refused writes and reads of an empty tree: %d %s %s", code, out, stderr)
	}
	size.Store(10)
	code, out, stderr = run(t, "", "bench", "--log", fake.URL, "--clients", "0", "--readers", "2", "--duration", "300ms")
	if code != 1 || !strings.Contains(stderr, "errors") {
		t.Fatalf("bench with failing reads: %d %s %s", code, out, stderr)
	}
}
