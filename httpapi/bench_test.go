package httpapi

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/custodylog/custody/log"
)

// BenchmarkPostDuplicates measures one POST /v1/events of 10,000 events
// that are all in the log already (the duplicate flood of a token holder):
// time, bytes allocated, and the live heap the request holds when its
// answer starts (which used to be all 10,000 receipts and their JSON).
//
//	go test ./httpapi -run NONE -bench PostDuplicates -benchtime 20x
func BenchmarkPostDuplicates(b *testing.B) {
	const n = DefaultMaxEvents
	tl := newTestLog(b, log.Config{MaxBatch: n})
	h := tl.Handler(Config{Tokens: []string{testToken}})
	body := eventLines(0, n)
	post := func() *heapAtFirstWrite {
		req := httptest.NewRequest("POST", "/v1/events", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		w := &heapAtFirstWrite{h: http.Header{}, skip: true}
		h.ServeHTTP(w, req)
		if w.code != 0 && w.code != http.StatusOK {
			b.Fatalf("POST: %d", w.code)
		}
		return w
	}
	post() // the events are new once
	before := liveHeap()
	w := &heapAtFirstWrite{h: http.Header{}}
	req := httptest.NewRequest("POST", "/v1/events", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testToken)
	h.ServeHTTP(w, req)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		post()
	}
	b.ReportMetric(float64(int64(w.live)-int64(before)), "live-B-at-answer")
}
