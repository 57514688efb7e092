package httpapi

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestWriteEntryTable(t *testing.T) {
	var b strings.Builder
	WriteEntryTable(&b, []EntryJSON{
		{Index: 7, Event: json.RawMessage(`{"sample":"s1","action":"transferred","location":"ch-zrh-1","to":"de-fra-1","region":"EU","time":"2026-01-02T03:04:05Z"}`)},
		{Index: 8, Event: json.RawMessage(`{"sample":"s\u001b[2J","action":"stored","location":"de-fra-1","region":"EU","time":"2026-01-02T03:05:00Z"}`)},
		{Index: 9, Event: json.RawMessage(`not an event`)},
	})
	want := "INDEX    TIME (UTC)           ACTION       LOCATION     TO           REGION SAMPLE\n" +
		"7        2026-01-02T03:04:05Z transferred  ch-zrh-1     de-fra-1     EU     s1\n" +
		"8        2026-01-02T03:05:00Z stored       de-fra-1     -            EU     s\\x1b[2J\n" +
		"9                                                       -                   \n"
	if b.String() != want {
		t.Fatalf("table:\n%q\nwant:\n%q", b.String(), want)
	}
}
