package record

import (
	"testing"
	"time"
)

// TestEntryIdentity: the identity cut from the canonical entry is the
// event's, whatever its fields hold.
func TestEntryIdentity(t *testing.T) {
	base := Event{Sample: "s-1", Action: Transferred, Location: "de-fra-1", To: "ch-zrh-1", Region: "EU",
		Time: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC), Logged: time.Date(2026, 11, 1, 12, 0, 9, 0, time.UTC), Actor: "a"}
	cases := map[string]func(e *Event){
		"as is":              func(e *Event) {},
		"no logged":          func(e *Event) { e.Logged = time.Time{} },
		"note like a member": func(e *Event) { e.Note = `x","time":"2026-01-01T00:00:00Z","logged":"2026-01-01T00:00:00Z` },
		"actor like logged":  func(e *Event) { e.Actor = `","logged":"` },
		"customer":           func(e *Event) { e.Customer = "65a8f95e999b098ce96b1ba94bf5fd49cfbc35fdd374c99ef7a29e554529884c" },
		"no to":              func(e *Event) { e.Action, e.To = Stored, "" },
		"unicode note":       func(e *Event) { e.Note = "café \"A\" <b>" },
	}
	for name, m := range cases {
		ev := base
		m(&ev)
		entry := ev.Canonical()
		if _, err := DecodeEntry(entry); err != nil && !ev.Logged.IsZero() {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := EntryIdentity(entry)
		if err != nil || got != ev.Identity() {
			t.Errorf("%s: EntryIdentity %x, %v; want %x", name, got, err, ev.Identity())
		}
	}
	for _, bad := range []string{"", "{}", `{"sample":"s","time":"2026`, `{"sample":"s","action":"collected","location":"x","region":"EU","time":"2026-11-01T12:00:00Z","logged":"2026`} {
		if _, err := EntryIdentity([]byte(bad)); err == nil {
			t.Errorf("EntryIdentity(%q) took it", bad)
		}
	}
}

// BenchmarkEntryIdentity compares the identity cut from the entry bytes
// with decoding-free re-encoding (Event.Identity).
func BenchmarkEntryIdentity(b *testing.B) {
	ev := Event{Sample: "smp-00001234", Action: Analysed, Location: "ch-zrh-1", Region: "EU", Customer: "65a8f95e999b098ce96b1ba94bf5fd49cfbc35fdd374c99ef7a29e554529884c",
		Time: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC), Logged: time.Date(2026, 11, 1, 12, 0, 9, 0, time.UTC), Actor: "sandbox-7", Note: "static and dynamic analysis"}
	entry := ev.Canonical()
	b.Run("EntryIdentity", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			EntryIdentity(entry)
		}
	})
	b.Run("Event.Identity", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ev.Identity()
		}
	})
}
