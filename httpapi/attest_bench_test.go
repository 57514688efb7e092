package httpapi

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custodylog/custody/internal/benchcpu"
	"github.com/custodylog/custody/internal/sitetest"
	"github.com/custodylog/custody/log"
	"github.com/custodylog/custody/record"
)

// BenchmarkPostSigned measures HTTP appends of new events through a real
// loopback HTTP server and a real log on SQLite, with every event signed
// by its site (one attestation per 1000-event request) and unsigned, by
// 4 concurrent clients: events/s and bytes per event stored. Bodies are
// built (and signed) before the clock starts: the site's signing is the
// site's cost, not the log's. cpu-µs/event is the process's CPU time
// (server and clients) per event, which the machine's load disturbs far
// less than events/s.
//
//	go test ./httpapi -run NONE -bench PostSigned -benchtime 300x -count 3
func BenchmarkPostSigned(b *testing.B) {
	for _, signed := range []bool{false, true} {
		name := "unsigned"
		if signed {
			name = "signed"
		}
		b.Run(name, func(b *testing.B) { benchPost(b, signed) })
	}
}

func benchPost(b *testing.B, signed bool) {
	const perRequest, clients = 1000, 4
	w := sitetest.NewWorld(b)
	tl := newTestLog(b, log.Config{Sites: w.Set, Now: time.Now})
	srv := httptest.NewServer(tl.Handler(Config{Tokens: []string{testToken}, Now: time.Now}))
	defer srv.Close()
	now := time.Now().UTC().Truncate(time.Second)
	bodies := make([][]byte, b.N)
	var sent int64
	for i := range bodies {
		evs := make([]record.Event, perRequest)
		var body bytes.Buffer
		for j := range evs {
			evs[j] = record.Event{Sample: fmt.Sprintf("bench-%d-%d", i, j), Action: record.Analysed, Location: "ch-zrh-1",
				Region: "EU", Time: now.Add(-time.Minute), Actor: "lims/4.2", Note: "static and dynamic analysis"}
			body.Write(evs[j].Canonical())
			body.WriteByte('\n')
		}
		if signed {
			body.Write(attestationJSON(sitetest.Sign(b, w.Zrh, tl.Origin(), now, evs)))
			body.WriteByte('\n')
		}
		bodies[i] = body.Bytes()
		sent += int64(body.Len())
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start, cpu := time.Now(), benchcpu.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(bodies) {
					return
				}
				req, _ := http.NewRequest("POST", srv.URL+"/v1/events", bytes.NewReader(bodies[i]))
				req.Header.Set("Authorization", "Bearer "+testToken)
				resp, err := hc.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				var out bytes.Buffer
				out.ReadFrom(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("POST: %d %s", resp.StatusCode, out.Bytes()[:min(out.Len(), 300)])
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed, cpuUsed := time.Since(start), benchcpu.Now()-cpu
	b.StopTimer()
	events := float64(b.N * perRequest)
	b.ReportMetric(events/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(cpuUsed.Microseconds())/events, "cpu-µs/event")
	es, err := tl.st.Entries(b.Context(), 0, tl.Checkpoint().Size)
	if err != nil {
		b.Fatal(err)
	}
	var stored int
	for _, e := range es {
		stored += len(e.Data)
	}
	b.ReportMetric(float64(stored)/events, "entry-B/event")
	b.ReportMetric(float64(sent)/events, "request-B/event")
}

// attestationJSON is the attestation line of entry.
func attestationJSON(entry []byte) []byte {
	var b bytes.Buffer
	b.WriteString(`{"attestation":`)
	b.Write(quoteJSON(string(entry)))
	b.WriteString("}")
	return b.Bytes()
}

func quoteJSON(s string) []byte {
	var b bytes.Buffer
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '\n':
			b.WriteString(`\n`)
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.Bytes()
}
