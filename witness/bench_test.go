package witness

import (
	"bytes"
	"crypto/rand"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

// BenchmarkAddCheckpoint measures add-checkpoint requests/s through the
// witness's HTTP handler: each request carries a checkpoint one leaf larger
// than the last with its consistency proof, so every request verifies a
// signature and a proof and commits the new state durably (fsync) before
// answering with a cosignature.
func BenchmarkAddCheckpoint(b *testing.B) {
	skey, vkey, _ := note.GenerateKey(rand.Reader, testOrigin)
	logSK, _ := note.NewSigner(skey)
	logVK, _ := verify.NewVerifier(vkey)
	wskey, _, _ := note.GenerateKey(rand.Reader, "example.com/benchwitness")
	signer, _, err := verify.NewCosignatureSignerFromKey(wskey, time.Now)
	if err != nil {
		b.Fatal(err)
	}
	w, err := Open(Config{State: openState(b, b.TempDir()), Signer: signer, Logs: []note.Verifier{logVK}})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	h := w.Handler()
	n := min(b.N, 4000)
	leaves := makeLeaves("bench", n+1)
	bodies := make([][]byte, n+1)
	for i := 0; i < n; i++ {
		cp := verify.Checkpoint{Origin: testOrigin, Size: uint64(i + 1), Root: mth(leaves[:i+1])}
		msg, err := note.Sign(&note.Note{Text: string(cp.Marshal())}, logSK)
		if err != nil {
			b.Fatal(err)
		}
		bodies[i] = body(i, consistency(i, leaves[:i+1]), msg)
		if i == n-1 {
			bodies[n] = body(n, nil, msg) // the same checkpoint again
		}
	}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		// Past the precomputed trees, resubmit the last one (same size and
		// root: also verified, cosigned and answered).
		req := httptest.NewRequest("POST", "/add-checkpoint", bytes.NewReader(bodies[min(i, n)]))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("request %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "requests/s")
}
