package cmd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/custodylog/custody/loadgen"
)

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
	var res loadgen.BenchResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if res.Events == 0 || res.TotalErrors != 0 || res.RSSSamples == 0 || res.RSSMaxBytes < res.RSSMinBytes {
		t.Fatalf("bench result: %+v", res)
	}
	for _, k := range loadgen.ReadKinds {
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
	var res loadgen.BenchResult
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res.Refusals == 0 || res.Events == 0 || res.TotalErrors != 0 || res.RSSMaxBytes != 1000 {
		t.Fatalf("refused writes and reads of an empty tree: %d %s %s", code, out, stderr)
	}
	size.Store(10)
	code, out, stderr = run(t, "", "bench", "--log", fake.URL, "--clients", "0", "--readers", "2", "--duration", "300ms")
	if code != 1 || !strings.Contains(stderr, "errors") {
		t.Fatalf("bench with failing reads: %d %s %s", code, out, stderr)
	}
}
