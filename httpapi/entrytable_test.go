package httpapi

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestWriteEntryTable(t *testing.T) {
	var b strings.Builder
	WriteEntryTable(&b, []EntryJSON{
		{Index: 7, Event: json.RawMessage(`{"sample":"s1","action":"transferred","location":"ch-zrh-1","to":"de-fra-1","region":"EU","time":"2026-01-02T03:04:05Z"}`)},
		{Index: 8, Event: json.RawMessage(`{"sample":"s\u001b[2J","action":"stored","location":"de-fra-1","region":"EU","time":"2026-01-02T03:05:00Z"}`)},
		{Index: 9, Event: json.RawMessage(`not an event`)},
		{Index: 10, Attestation: &AttestationJSON{Site: "ch-zrh-1", Key: "0a1b2c3d", Time: time.Date(2026, 1, 2, 3, 6, 0, 0, time.UTC), Count: 2}},
	})
	want := "INDEX    TIME (UTC)           ACTION       LOCATION     TO           REGION SAMPLE\n" +
		"7        2026-01-02T03:04:05Z transferred  ch-zrh-1     de-fra-1     EU     s1\n" +
		"8        2026-01-02T03:05:00Z stored       de-fra-1     -            EU     s\\x1b[2J\n" +
		"9                                                       -                   \n" +
		"10       2026-01-02T03:06:00Z attestation  ch-zrh-1     -            -      (site ch-zrh-1 key 0a1b2c3d: the 2 entries before it)\n"
	if b.String() != want {
		t.Fatalf("table:\n%q\nwant:\n%q", b.String(), want)
	}
}
