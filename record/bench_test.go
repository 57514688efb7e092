package record

import (
	"testing"
	"time"
)

var benchInput = []byte(`{"sample":"sha256:2c26b46b68ffc68ff99b453c1d304134","action":"transferred",` +
	`"location":"de-fra-1","to":"ch-zrh-1","region":"EU",` +
	`"customer":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",` +
	`"time":"2024-05-01T14:00:00.250+02:00","actor":"mover/2.1","note":"routine transfer for analysis"}`)

// BenchmarkDecodeCanonical measures what the log does for every submitted
// event: strict decoding, canonical encoding and identity.
func BenchmarkDecodeCanonical(b *testing.B) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	b.SetBytes(int64(len(benchInput)))
	b.ReportAllocs()
	for b.Loop() {
		e, err := DecodeSubmission(benchInput, now)
		if err != nil {
			b.Fatal(err)
		}
		e.Logged = now
		_ = e.Canonical()
		_ = e.Identity()
	}
}

// BenchmarkDecodeEntry measures what an auditor does for every entry.
func BenchmarkDecodeEntry(b *testing.B) {
	e, err := Decode(benchInput)
	if err != nil {
		b.Fatal(err)
	}
	e.Logged = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	entry := e.Canonical()
	b.SetBytes(int64(len(entry)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeEntry(entry); err != nil {
			b.Fatal(err)
		}
	}
}
