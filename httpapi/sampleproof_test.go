package httpapi

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/custodylog/custody/internal/logtest"
	"github.com/custodylog/custody/log"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/sampleindex"
)

// servedProof GETs a sample proof and returns the status, body and the
// checkpoint note of its headers (checked against the size header).
func servedProof(t *testing.T, base, sample, query string) (int, []byte, []byte) {
	t.Helper()
	code, body, h := get(t, base+SampleProofPath(sample)+query)
	if code != 200 {
		return code, body, nil
	}
	if ct := h.Get("Content-Type"); ct != SampleProofType {
		t.Errorf("Content-Type %q, want %q", ct, SampleProofType)
	}
	signed, err := base64.StdEncoding.DecodeString(h.Get(CheckpointHeader))
	if err != nil {
		t.Fatalf("%s header: %v", CheckpointHeader, err)
	}
	if !strings.HasPrefix(string(signed), fmt.Sprintf("%s\n%s\n", strings.SplitN(string(signed), "\n", 2)[0], h.Get(CheckpointSizeHeader))) {
		t.Errorf("%s %q does not match the checkpoint %q", CheckpointSizeHeader, h.Get(CheckpointSizeHeader), signed)
	}
	return code, body, signed
}

func eventsOf(sample string, n int) []record.Event {
	evs := make([]record.Event, n)
	for i := range evs {
		evs[i] = record.Event{Sample: sample, Action: record.Stored, Location: "de-fra-1", Region: "EU", Time: testTime.Add(time.Duration(i) * time.Second), Actor: "test"}
	}
	return evs
}

// TestSampleProofEndpoint: the proof served verifies against the
// checkpoint in its headers (opened with x/mod), for a sample with events,
// since=M, and an unknown sample (absence); size must be the newest size
// (409 naming it otherwise); parameters are checked.
func TestSampleProofEndpoint(t *testing.T) {
	ctx := context.Background()
	tl, srv := newTestServer(t, log.Config{})
	if _, err := tl.AddMany(ctx, slices.Concat(eventsOf("chain", 3), testEvents(0, 50))); err != nil {
		t.Fatal(err)
	}
	m := tl.Checkpoint().Size
	if _, err := tl.AddMany(ctx, slices.Concat(testEvents(50, 20), eventsOf("chain", 5)[3:])); err != nil {
		t.Fatal(err)
	}
	size := tl.Checkpoint().Size
	for _, tt := range []struct {
		sample  string
		since   uint64
		entries int
		query   string
	}{
		{"chain", 0, 5, ""},
		{"chain", 0, 5, fmt.Sprintf("?size=%d", size)},
		{"chain", m, 2, fmt.Sprintf("?since=%d", m)},
		{"never-logged", 0, 0, ""},
	} {
		code, body, signed := servedProof(t, srv.URL, tt.sample, tt.query)
		if code != 200 {
			t.Fatalf("GET proof of %s%s: %d %s", tt.sample, tt.query, code, body)
		}
		tr := logtest.SampleTrusted(t, tl.vkey, signed)
		if tr.Size != size {
			t.Errorf("proof of %s%s is for size %d, want the newest %d", tt.sample, tt.query, tr.Size, size)
		}
		ch, err := sampleindex.Verify(body, sampleindex.Request{Sample: tt.sample, Since: tt.since, EntrySample: logtest.EntrySample}, tr)
		if err != nil {
			t.Fatalf("proof of %s%s: %v", tt.sample, tt.query, err)
		}
		if len(ch.Entries) != tt.entries || (tt.entries == 0) != ch.Absent() && tt.since == 0 {
			t.Errorf("proof of %s%s: %d entries (absent %v), want %d", tt.sample, tt.query, len(ch.Entries), ch.Absent(), tt.entries)
		}
	}
	for _, tt := range []struct {
		query string
		code  int
		want  string
	}{
		{fmt.Sprintf("?size=%d", size-1), 409, fmt.Sprintf("the sample index proves the newest checkpoint only, of size %d, not %d", size, size-1)},
		{fmt.Sprintf("?size=%d", size+1), 400, "beyond the published tree"},
		{"?since=x", 400, `parameter since=\"x\" is not a decimal number`},
		{"?size=01", 400, `parameter size=\"01\" is not a decimal number`},
		{fmt.Sprintf("?since=%d", size+1), 400, "beyond the published tree"},
		{"?since=5&size=4", 400, "since 5 is beyond size 4"},
	} {
		code, body, _ := servedProof(t, srv.URL, "chain", tt.query)
		if code != tt.code || !strings.Contains(string(body), tt.want) {
			t.Errorf("GET proof%s = %d %s, want %d containing %q", tt.query, code, body, tt.code, tt.want)
		}
	}
	if code, body, _ := get(t, srv.URL+"/v1/samples/bad%20id/proof"); code != 400 {
		t.Errorf("invalid sample ID: %d %s, want 400", code, body)
	}
	if code, body, _ := get(t, srv.URL+"/v1/samples/chain/proof?"+strings.Repeat("x", 2000)); code != 414 {
		t.Errorf("long query: %d %s, want 414", code, body)
	}
}

// noIndexLog is a Log that keeps no sample index.
type noIndexLog struct{ Log }

func TestSampleProofWithoutIndex(t *testing.T) {
	tl := newTestLog(t, log.Config{})
	srv := httptest.NewServer(New(noIndexLog{tl.Log}, Config{}))
	t.Cleanup(srv.Close)
	code, body, _ := get(t, srv.URL+"/v1/samples/x/proof")
	if code != 404 || !strings.Contains(string(body), "keeps no sample index") {
		t.Errorf("GET proof from a log without index: %d %s", code, body)
	}
}

// TestSampleProofLyingFront: a front between the server and the verifier
// that edits the proofs it passes on (drops, adds or swaps an event,
// alters one, answers for another sample, or hands a proof with the
// checkpoint of another size) is caught by sampleindex.Verify.
func TestSampleProofLyingFront(t *testing.T) {
	ctx := context.Background()
	tl, srv := newTestServer(t, log.Config{})
	if _, err := tl.AddMany(ctx, slices.Concat(eventsOf("victim", 4), testEvents(0, 30), eventsOf("other", 2))); err != nil {
		t.Fatal(err)
	}
	_, oldBody, oldNote := servedProof(t, srv.URL, "victim", "")
	if _, err := tl.AddMany(ctx, testEvents(30, 5)); err != nil {
		t.Fatal(err)
	}
	_, body, signed := servedProof(t, srv.URL, "victim", "")
	_, otherBody, _ := servedProof(t, srv.URL, "other", "")
	tr := logtest.SampleTrusted(t, tl.vkey, signed)
	req := sampleindex.Request{Sample: "victim", EntrySample: logtest.EntrySample}
	if _, err := sampleindex.Verify(body, req, tr); err != nil {
		t.Fatalf("the honest proof does not verify: %v", err)
	}
	edit := func(f func(p *sampleindex.Proof)) []byte {
		p, err := sampleindex.ParseProof(body)
		if err != nil {
			t.Fatal(err)
		}
		f(p)
		return p.Marshal()
	}
	for _, tt := range []struct {
		name string
		data []byte
		tr   sampleindex.Trusted
		want error
	}{
		{"drop the last event", edit(func(p *sampleindex.Proof) { p.Entries = p.Entries[:3] }), tr, sampleindex.ErrDroppedEntry},
		{"add an event", edit(func(p *sampleindex.Proof) { p.Entries = append(p.Entries, p.Entries[3]) }), tr, sampleindex.ErrAddedEntry},
		{"swap two events", edit(func(p *sampleindex.Proof) { p.Entries[1], p.Entries[2] = p.Entries[2], p.Entries[1] }), tr, sampleindex.ErrReorderedEntries},
		{"alter an event", edit(func(p *sampleindex.Proof) {
			p.Entries[0].Data = []byte(strings.Replace(string(p.Entries[0].Data), "de-fra-1", "us-va-1", 1))
		}), tr, nil},
		{"another sample's proof", otherBody, tr, sampleindex.ErrWrongSample},
		{"an older proof with the newest checkpoint", oldBody, tr, sampleindex.ErrWrongSize},
		{"the newest proof with an older checkpoint", body, logtest.SampleTrusted(t, tl.vkey, oldNote), sampleindex.ErrWrongSize},
	} {
		_, err := sampleindex.Verify(tt.data, req, tt.tr)
		if err == nil || tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("%s: Verify = %v, want an error wrapping %v", tt.name, err, tt.want)
		}
	}
}
