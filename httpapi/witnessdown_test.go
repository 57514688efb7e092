package httpapi

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custodylog/custody/log"
)

// TestWitnessDownAppendGets503: with a quorum of one and the only witness
// down, a POST /v1/events is answered 503 with Retry-After and a message
// that says the events are stored and what to do, after one request to the
// witness per witnessing round (errors other than 409 are not retried
// within a round): at once when the witness refuses connections, and at
// the end of the witness timeout when it accepts and never answers. The
// events are committed, /checkpoint does not change, and once the witness
// is back the retry gets the original index.
func TestWitnessDownAppendGets503(t *testing.T) {
	for _, mode := range []string{"refuses", "hangs"} {
		t.Run(mode, func(t *testing.T) {
			tl := newBareLog(t)
			w := newTestWitness(t, "witness-a.example", tl.verifier)
			var requests atomic.Int64
			release := make(chan struct{})
			var url string
			switch mode {
			case "refuses":
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				url = "http://" + ln.Addr().String()
				ln.Close() // nothing listens there any more: connection refused
			case "hangs":
				hang := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
					requests.Add(1)
					select {
					case <-r.Context().Done(): // the log gave up (its witness timeout)
					case <-release:
					}
				}))
				t.Cleanup(hang.Close)
				t.Cleanup(func() { close(release) })
				url = hang.URL
			}
			cfg := log.Config{Witnesses: []log.Witness{{URL: url, Verifier: w.v}}, Quorum: 1, WitnessTimeout: 100 * time.Millisecond}
			tl.open(t, cfg)
			srv := httptest.NewServer(tl.Handler(Config{Tokens: []string{testToken}}))
			t.Cleanup(srv.Close)
			before := getCheckpoint(t, tl)
			opened := requests.Load()

			ev := `{"sample":"down-1","action":"collected","location":"ch-zrh-1","region":"EU","time":"2026-11-01T12:00:00Z","actor":"test"}` + "\n"
			post := func() (int, http.Header, string) {
				req, _ := http.NewRequestWithContext(context.Background(), "POST", srv.URL+"/v1/events", strings.NewReader(ev))
				req.Header.Set("Authorization", "Bearer "+testToken)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, resp.Header, string(b)
			}
			code, h, body := post()
			if code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" ||
				!strings.Contains(body, "the events are stored but the witnesses have not cosigned") || !strings.Contains(body, "retry") {
				t.Fatalf("append with the only witness down: %d, Retry-After %q, %s", code, h.Get("Retry-After"), body)
			}
			if mode == "hangs" {
				if n := requests.Load() - opened; n != 1 {
					t.Errorf("the hanging witness got %d requests for one append, want 1 (no retries within a round)", n)
				}
			}
			if got := getCheckpoint(t, tl); !bytes.Equal(got, before) {
				t.Fatalf("/checkpoint changed without the quorum:\n%s", got)
			}
			if cp, err := tl.st.Latest(context.Background()); err != nil || cp.Size != 1 {
				t.Fatalf("the event is not committed: size %d, %v", cp.Size, err)
			}

			// The witness comes back (at the configured URL): the retry is
			// answered with the original index and a cosigned checkpoint.
			tl.restart(t, log.Config{Witnesses: []log.Witness{w.config()}, Quorum: 1, WitnessTimeout: 2 * time.Second})
			srv.Config.Handler = tl.Handler(Config{Tokens: []string{testToken}})
			code, _, body = post()
			if code != http.StatusOK || !strings.Contains(body, `"index":0`) {
				t.Fatalf("retry with the witness back: %d %s", code, body)
			}
			checkCosigned(t, tl, getCheckpoint(t, tl), w)
		})
	}
}
