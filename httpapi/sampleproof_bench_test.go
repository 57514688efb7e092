package httpapi

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custodylog/custody/internal/logtest"
	"github.com/custodylog/custody/log"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/sampleindex"
	verifypkg "github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

// BenchmarkSampleProofHTTP measures GET /v1/samples/{sample}/proof over
// loopback HTTP with 16 concurrent clients per core, for random samples of
// a log of 100,000 entries, each its own sample (as the bench workload
// and prefill make them: the deepest map for the size); with verify=true
// each client also opens the checkpoint of the headers and verifies the
// proof with sampleindex.Verify (client and server share the 2 cores). It reports
// proofs/s and the mean proof size.
//
//	go test ./httpapi -run NONE -bench SampleProofHTTP -benchtime 20000x
func BenchmarkSampleProofHTTP(b *testing.B) {
	const n = 100_000
	tl := newTestLog(b, log.Config{MaxBatch: 4096})
	ctx := context.Background()
	for i := 0; i < n; i += 4000 {
		evs := make([]record.Event, 4000)
		for j := range evs {
			evs[j] = testEvent(i + j)
		}
		if _, err := tl.AddMany(ctx, evs); err != nil {
			b.Fatal(err)
		}
	}
	srv := httptest.NewServer(tl.Handler(Config{}))
	b.Cleanup(srv.Close)
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	client := &http.Client{Transport: tr}
	for _, verify := range []bool{false, true} {
		b.Run(fmt.Sprintf("verify=%v", verify), func(b *testing.B) {
			var bytes atomic.Int64
			b.SetParallelism(16)
			start := time.Now()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					sample := testEvent(rand.IntN(n)).Sample
					resp, err := client.Get(srv.URL + SampleProofPath(sample))
					if err != nil {
						b.Error(err)
						return
					}
					body, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil || resp.StatusCode != 200 {
						b.Errorf("GET proof of %s: %d %v", sample, resp.StatusCode, err)
						return
					}
					bytes.Add(int64(len(body)))
					if verify {
						// What a verifier does: open the checkpoint of
						// the headers, then check the proof against it.
						signed, err := base64.StdEncoding.DecodeString(resp.Header.Get(CheckpointHeader))
						if err != nil {
							b.Error(err)
							return
						}
						cp, _, err := verifypkg.OpenCheckpoint(signed, tl.Origin(), note.VerifierList(tl.verifier))
						if err != nil {
							b.Error(err)
							return
						}
						mr, err := sampleindex.FindExtension(cp.Extensions)
						if err != nil {
							b.Error(err)
							return
						}
						ch, err := sampleindex.Verify(body, sampleindex.Request{Sample: sample, EntrySample: logtest.EntrySample},
							sampleindex.Trusted{Size: cp.Size, LogRoot: cp.Root, MapRoot: mr})
						if err != nil || len(ch.Entries) != 1 {
							b.Errorf("proof of %s: %v", sample, err)
							return
						}
					}
				}
			})
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/el.Seconds(), "proofs/s")
			b.ReportMetric(float64(bytes.Load())/float64(b.N), "B/proof")
		})
	}
}
