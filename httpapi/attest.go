package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/custodylog/custody/log"
	"github.com/custodylog/custody/record"
)

// Signed submissions (docs/site-signing.md, docs/api.md): a POST
// /v1/events body in JSON lines may hold, after the events a site signed,
// the line
//
//	{"attestation":"custody-attestation/v1\norigin …\n…\n\n— SITE SIG\n"}
//
// whose string is the attestation entry (site.Attest) covering the COUNT
// events right before it. Events before them that no attestation covers
// are unsigned. `custody sign` writes such lines.

// attestationPrefix starts every attestation line (after white space).
const attestationPrefix = `{"attestation":`

// attMark is an attestation line of a body: its entry, and the number of
// events before it.
type attMark struct {
	after int
	line  int
	entry []byte
}

// attestationLine reports whether the JSON line b is an attestation line
// and, if so, returns its entry (or why the line is malformed).
func attestationLine(b []byte) (entry []byte, ok bool, err error) {
	if !bytes.HasPrefix(b, []byte(attestationPrefix)) {
		return nil, false, nil
	}
	var v struct {
		Attestation *string `json:"attestation"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil || v.Attestation == nil || dec.More() {
		if err == nil {
			err = fmt.Errorf("want exactly {\"attestation\": \"ENTRY\"}")
		}
		return nil, true, fmt.Errorf("not an attestation line: %w", err)
	}
	return []byte(*v.Attestation), true, nil
}

// addMark records an attestation line (line n, after the events evs) in
// marks, or returns why it is malformed; marks nil ignores it.
func addMark(marks *[]attMark, b []byte, n, events int) (bool, error) {
	entry, ok, err := attestationLine(b)
	if !ok {
		return false, nil
	}
	if err != nil {
		return true, fmt.Errorf("line %d: %w", n, err)
	}
	if marks != nil {
		*marks = append(*marks, attMark{after: events, line: n, entry: entry})
	}
	return true, nil
}

// groups splits evs at the attestation lines marks: each attestation
// covers the COUNT events right before it (its count line), which must
// all follow the previous attestation; events between are unsigned.
func groups(evs []record.Event, marks []attMark) ([]log.Group, error) {
	if len(marks) == 0 {
		return []log.Group{{Events: evs}}, nil
	}
	var gs []log.Group
	prev := 0
	for _, m := range marks {
		a, err := record.DecodeAttestation(m.entry)
		if err != nil {
			return nil, fmt.Errorf("line %d: bad-site-signature: not a valid attestation: %w", m.line, err)
		}
		if a.Count > m.after-prev {
			return nil, fmt.Errorf("line %d: the attestation covers %d events, but only %d events precede it since the previous attestation", m.line, a.Count, m.after-prev)
		}
		if start := m.after - a.Count; start > prev {
			gs = append(gs, log.Group{Events: evs[prev:start]})
		}
		gs = append(gs, log.Group{Events: evs[m.after-a.Count : m.after], Attestation: m.entry})
		prev = m.after
	}
	if prev < len(evs) {
		gs = append(gs, log.Group{Events: evs[prev:]})
	}
	return gs, nil
}

// eventView is an entry's data as the "event" field of the JSON endpoints:
// the data itself for an event, nothing for an attestation (whose entry
// is not JSON).
func eventView(data []byte) json.RawMessage {
	if record.KindOf(data) != record.EntryEvent {
		return nil
	}
	return data
}

// AttestationJSON is a site attestation entry as the "attestation" field
// of the JSON endpoints show it: its signed fields, decoded (the entry's
// bytes, in "entry", are what the log committed and the site signed).
type AttestationJSON struct {
	Origin string    `json:"origin"`
	Site   string    `json:"site"`
	Key    string    `json:"key"` // the key ID, 8 hex digits
	Time   time.Time `json:"time"`
	Count  int       `json:"count"` // the events it covers: the entries just before it
	Root   []byte    `json:"root"`
}

// attestationView is an attestation entry's decoded fields, nil for any
// other entry (or one that does not decode: "entry" still has its bytes).
func attestationView(data []byte) *AttestationJSON {
	if record.KindOf(data) != record.EntryAttestation {
		return nil
	}
	a, err := record.DecodeAttestation(data)
	if err != nil {
		return nil
	}
	return &AttestationJSON{Origin: a.Origin, Site: a.Site, Key: fmt.Sprintf("%08x", a.KeyID), Time: a.Time.UTC(), Count: a.Count, Root: a.Root[:]}
}
