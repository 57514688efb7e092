package loadgen

import (
	"bytes"
	"context"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custodylog/custody/client"

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

// TestBenchCounts runs Bench against a fake server that refuses every
// other write and answers one receipt line short every third: refusals are
// counted apart, short answers are errors, and only the events of whole
// answers count.
func TestBenchCounts(t *testing.T) {
	var posts, events atomic.Int64
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost:
			body, _ := io.ReadAll(r.Body)
			lines := bytes.Count(body, []byte("\n"))
			switch n := posts.Add(1); {
			case n%2 == 1:
				w.Header().Set("Retry-After", "1")
				http.Error(w, `{"error":"slow down"}`, http.StatusTooManyRequests)
			case n%3 == 0:
				w.Write(bytes.Repeat([]byte("{}\n"), lines-1))
			default:
				events.Add(int64(lines))
				w.Write(bytes.Repeat([]byte("{}\n"), lines))
			}
		case r.URL.Path == "/metrics":
			w.Write([]byte("process_resident_memory_bytes 2048\n"))
		case r.URL.Path == "/checkpoint":
			w.Write([]byte("example.com/fake\n0\nAAAA\n\n"))
		default:
			http.Error(w, "no", http.StatusNotFound)
		}
	}))
	defer fake.Close()
	cl, err := client.NewUnverified(fake.URL, "token", client.WithRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Bench(context.Background(), BenchConfig{Writers: 2, Batch: 5, Submit: cl, Readers: 1, BaseURL: fake.URL, HTTP: http.DefaultClient, Duration: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Events > events.Load() || res.Events%5 != 0 || res.Events == 0 || res.Refusals == 0 || res.Errors == 0 || !strings.Contains(res.FirstError, "4 receipt lines for 5 events") {
		t.Errorf("result %+v; the server accepted %d events", res, events.Load())
	}
	if res.Reads["checkpoint"].Requests == 0 || res.ReadErrors != 0 || res.RSSSamples == 0 || res.RSSMaxBytes != 2048 {
		t.Errorf("reads of an empty tree: %+v", res)
	}
}
