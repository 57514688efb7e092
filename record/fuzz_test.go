package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// FuzzDecode checks that Decode never panics, that every error is a
// *FieldError, and that whatever Decode accepts has a canonical form that
// decodes to the same Event and encodes to the same bytes, and that is a valid
// log entry once logged is set. The seed corpus is in
// testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Decode(data)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Decode error %v is %T, not *FieldError", err, err)
			}
			if e != (Event{}) {
				t.Fatalf("Decode returned %+v with error %v", e, err)
			}
			if _, err := DecodeEntry(data); err == nil {
				t.Fatalf("DecodeEntry accepted what Decode rejected")
			}
			return
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("Decode accepted an event that fails Validate: %v", err)
		}
		checkAgainstEncodingJSON(t, data, e)

		c := e.Canonical()
		if len(c) > len(data) || len(c) > maxCanonicalSize {
			t.Fatalf("canonical form (%d bytes) longer than input (%d) or maxCanonicalSize", len(c), len(data))
		}
		e2, err := Decode(c)
		if err != nil {
			t.Fatalf("Decode(Canonical()) = %v\ninput:     %q\ncanonical: %q", err, data, c)
		}
		if e2 != e {
			t.Fatalf("Decode(Canonical()) = %+v, want %+v", e2, e)
		}
		if c2 := e2.Canonical(); !bytes.Equal(c2, c) {
			t.Fatalf("Canonical is not a fixed point:\n%q\n%q", c, c2)
		}
		if e2.Identity() != e.Identity() {
			t.Fatalf("Identity changed over a round trip")
		}

		// A submission without logged is accepted with a clock far ahead.
		if e.Logged.IsZero() {
			s, err := DecodeSubmission(data, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC))
			if err != nil || s != e {
				t.Fatalf("DecodeSubmission = %+v, %v; want %+v", s, err, e)
			}
		} else if _, err := DecodeSubmission(data, time.Now()); err == nil {
			t.Fatalf("DecodeSubmission accepted logged")
		}

		// The log sets logged; the entry it writes must decode again.
		logged := e
		if logged.Logged.IsZero() {
			logged.Logged = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
		}
		entry := logged.Canonical()
		got, err := DecodeEntry(entry)
		if err != nil {
			t.Fatalf("DecodeEntry(%q) = %v", entry, err)
		}
		if got != logged {
			t.Fatalf("DecodeEntry = %+v, want %+v", got, logged)
		}
		if got.Identity() != e.Identity() {
			t.Fatalf("Identity depends on logged")
		}
		if (bytes.Equal(entry, data)) != (e.Logged.Equal(logged.Logged) && bytes.Equal(c, data)) {
			t.Fatalf("inconsistent canonical comparison")
		}
		if _, err := DecodeEntry(data); (err == nil) != (!e.Logged.IsZero() && bytes.Equal(c, data)) {
			t.Fatalf("DecodeEntry(input) = %v, but input canonical = %v", err, bytes.Equal(c, data))
		}
	})
}

// checkAgainstEncodingJSON cross-checks the hand-written parser with
// encoding/json on input that Decode accepted: it must be valid JSON whose
// string values are the ones Decode returned.
func checkAgainstEncodingJSON(t *testing.T, data []byte, e Event) {
	t.Helper()
	var m map[string]string
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("Decode accepted %q, encoding/json rejects it: %v", data, err)
	}
	want := map[string]string{
		"sample": e.Sample, "action": string(e.Action), "location": e.Location,
		"to": e.To, "region": e.Region, "customer": e.Customer,
		"actor": e.Actor, "note": e.Note,
	}
	for k, v := range m {
		if k == "time" || k == "logged" {
			continue
		}
		if w, ok := want[k]; !ok || w != v {
			t.Fatalf("encoding/json reads %q = %q, Decode read %q (known %v)", k, v, w, ok)
		}
	}
	if _, ok := m["time"]; !ok {
		t.Fatalf("Decode accepted %q without time", data)
	}
	if _, ok := m["logged"]; ok == e.Logged.IsZero() {
		t.Fatalf("logged present = %v, Logged = %v", ok, e.Logged)
	}
}

// FuzzEntryIdentity: for every entry DecodeEntry accepts, EntryIdentity is
// the decoded event's identity; on anything else it does not panic.
func FuzzEntryIdentity(f *testing.F) {
	f.Add([]byte(`{"sample":"s1","action":"stored","location":"ch-zrh-1","region":"EU","time":"2026-11-01T12:00:01Z","logged":"2026-11-01T12:00:09Z","actor":"t"}`))
	f.Add([]byte(`{"sample":"s1","action":"stored","location":"ch-zrh-1","region":"EU","time":"2026-11-01T12:00:01Z","logged":"2026-11-01T12:00:09Z","actor":"t","note":"\",\"logged\":\""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := EntryIdentity(b)
		ev, derr := DecodeEntry(b)
		if derr == nil && (err != nil || id != ev.Identity()) {
			t.Fatalf("EntryIdentity(%q) = %x, %v; the event's identity is %x", b, id, err, ev.Identity())
		}
	})
}
