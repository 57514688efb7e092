package site

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/custodylog/custody/record"
)

// TestVerifyTamper is the tamper drill at append: each case changes a
// signed batch the way an attacker (or a mistake) would, and Verify must
// name the right finding, and the event when there is one.
func TestVerifyTamper(t *testing.T) {
	w := newWorld(t)
	batch := func() []record.Event { return events(4, "ch-zrh-1", time.Time{}) }
	signed := attest(t, w.zrh, t0, batch())
	other := events(4, "ch-zrh-2", time.Time{})
	mixed := batch()
	mixed[2].Location = "ru-mow-1"
	mixedEntry := attest(t, w.zrh, t0, mixed)
	fra := batch()
	fra[1].Location = "de-fra-1"
	fraEntry := attest(t, w.zrh, t0, fra)
	forMow := attest(t, w.mow, t0, batch())
	oldKeyLate := attest(t, w.zrhOld, time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), batch())
	oldKeyEarly := attest(t, w.zrhOld, time.Date(2026, 5, 31, 23, 59, 59, 0, time.UTC), batch())
	newKeyEarly := attest(t, w.zrh, time.Date(2026, 4, 30, 0, 0, 0, 0, time.UTC), batch())
	_, otherLog, _ := Attest(w.zrh.signer, nil, "staging.example.com/custody", t0, batch())
	unknown := newTestKey(t, "fra", 9)
	byUnknown := attest(t, unknown, t0, batch())
	zrhRogue := newTestKey(t, "zrh", 10)
	byRogueKey := attest(t, zrhRogue, t0, batch())
	flipped := slices.Clone(signed)
	flipped[len(flipped)-5] ^= 1 // in the signature's base64

	edited := batch()
	edited[1].Note = "analysed twice"
	reordered := batch()
	reordered[0], reordered[3] = reordered[3], reordered[0]
	dropped := batch()[1:]
	added := append(batch(), events(5, "ch-zrh-1", time.Time{})[4])
	relogged := events(4, "ch-zrh-1", t0.Add(time.Minute)) // logged set: identity ignores it

	for _, tc := range []struct {
		name   string
		entry  []byte
		evs    []record.Event
		logged time.Time
		kind   Kind
		event  int
		want   string
	}{
		{"valid", signed, batch(), t0, "", 0, ""},
		{"valid, logged later within the age", signed, relogged, t0.Add(MaxAttestationAge), "", 0, ""},
		{"old key just before its end", oldKeyEarly, batch(), time.Date(2026, 6, 1, 0, 5, 0, 0, time.UTC), "", 0, ""},
		{"event edited after signing", signed, edited, t0, KindBadSignature, -1, "do not match the signed root"},
		{"events reordered", signed, reordered, t0, KindBadSignature, -1, "do not match the signed root"},
		{"event moved out of its attestation", signed, dropped, t0, KindBadSignature, -1, "covers 4 events, but 3 precede it"},
		{"event slipped into the batch", signed, added, t0, KindBadSignature, -1, "covers 4 events, but 5 precede it"},
		{"attestation replayed with another batch", signed, other, t0, KindBadSignature, -1, "do not match the signed root"},
		{"replayed from another log", otherLog, batch(), t0, KindBadSignature, -1, `for the log "staging.example.com/custody"`},
		{"unknown site", byUnknown, batch(), t0, KindBadSignature, -1, `site "fra", which the policy does not list`},
		{"key not in the policy", byRogueKey, batch(), t0, KindBadSignature, -1, "not a key of site zrh in the policy"},
		{"signature corrupted", flipped, batch(), t0, KindBadSignature, -1, ""},
		{"not an attestation", []byte("hello\n"), batch(), t0, KindBadSignature, -1, "not a valid attestation"},
		{"key used after its window", oldKeyLate, batch(), time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), KindKeyNotValid, -1, "valid from 2026-01-01T00:00:00Z until 2026-06-01T00:00:00Z"},
		{"key used before its window", newKeyEarly, batch(), time.Date(2026, 4, 30, 0, 0, 0, 0, time.UTC), KindKeyNotValid, -1, "valid from 2026-05-01"},
		{"backdated: logged long after signing", oldKeyEarly, batch(), time.Date(2026, 6, 2, 0, 0, 0, 0, time.UTC), KindKeyNotValid, -1, "more than 15m0s"},
		{"signed in the future", signed, batch(), t0.Add(-MaxClockSkew - time.Second), KindKeyNotValid, -1, "after it was logged"},
		{"site signs for another site's location", mixedEntry, mixed, t0, KindNotAllowed, 2, "site zrh vouches for an event at ru-mow-1, which is site mow's location"},
		{"site signs for a location no site has", fraEntry, fra, t0, KindNotAllowed, 1, "which no site of the policy speaks for"},
		{"other site signs for zrh", forMow, batch(), t0, KindNotAllowed, 0, "site mow vouches for an event at ch-zrh-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := w.set.Verify(testOrigin, tc.entry, tc.evs, tc.logged)
			if tc.kind == "" {
				if err != nil {
					t.Fatalf("Verify = %v", err)
				}
				return
			}
			var f *Finding
			if !errors.As(err, &f) {
				t.Fatalf("Verify = %v (%T), want a *Finding", err, err)
			}
			if f.Kind != tc.kind || f.Event != tc.event || !strings.Contains(f.Detail, tc.want) {
				t.Fatalf("Verify = %+v\nwant kind %s, event %d, detail with %q", f, tc.kind, tc.event, tc.want)
			}
			if (f.Attestation != nil) != (tc.kind == KindBadSignature || tc.kind == KindKeyNotValid) {
				t.Errorf("Attestation evidence = %v for %s", f.Attestation != nil, f.Kind)
			}
			if tc.event >= 0 && f.Sample != tc.evs[tc.event].Sample {
				t.Errorf("Sample = %q, want %q", f.Sample, tc.evs[tc.event].Sample)
			}
		})
	}
}

// entry is one log entry for the Checker tests: an event or an
// attestation.
type entry struct {
	ev  *record.Event
	att []byte
}

func evEntries(evs []record.Event) []entry {
	out := make([]entry, len(evs))
	for i := range evs {
		out[i] = entry{ev: &evs[i]}
	}
	return out
}

func runChecker(c *Checker, log []entry) []Finding {
	var out []Finding
	for i, e := range log {
		if e.ev != nil {
			out = append(out, c.AddEvent(uint64(i), e.ev)...)
		} else {
			out = append(out, c.AddAttestation(uint64(i), e.att)...)
		}
	}
	return append(out, c.Finish()...)
}

// TestCheckerTamper is the tamper drill for the audit and fsck: entries
// planted in the store, checked in one streaming pass.
func TestCheckerTamper(t *testing.T) {
	w := newWorld(t)
	logged := t0.Add(time.Second)
	batch := func(loc string) []record.Event { return events(3, loc, logged) }
	a := batch("ch-zrh-1")
	aAtt := attest(t, w.zrh, t0, a)
	b := events(5, "ch-zrh-1", logged)[2:] // other samples
	m := batch("ru-mow-1")
	mAtt := attest(t, w.mow, t0, m)
	mixed := batch("ch-zrh-1")
	mixed[1].Location = "ru-mow-1"
	mixedAtt := attest(t, w.zrh, t0, mixed)
	edited := batch("ch-zrh-1")
	edited[2].Actor = "someone else"
	old := events(2, "ch-zrh-1", keyFrom.Add(-time.Hour)) // before any key
	fra := events(2, "de-fra-1", logged)                  // no site speaks for it
	late := attest(t, w.zrhOld, time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC), a)
	cat := func(parts ...[]entry) []entry { return slices.Concat(parts...) }
	att := func(b []byte) []entry { return []entry{{att: b}} }

	for _, tc := range []struct {
		name       string
		log        []entry
		requireAll bool
		want       []string
		signed     uint64
	}{
		{"empty", nil, false, []string{}, 0},
		{"two signed batches", cat(evEntries(a), att(aAtt), evEntries(m), att(mAtt)), false, []string{}, 6},
		{"old unsigned history, then signed", cat(evEntries(old), evEntries(fra), evEntries(a), att(aAtt)), false, []string{}, 3},
		{"required: every event must be signed", cat(evEntries(old), evEntries(a), att(aAtt)), true, []string{"0:unsigned", "1:unsigned"}, 3},
		{"unsigned event where a key was valid", cat(evEntries(a), att(aAtt), evEntries(batch("ch-zrh-2")[:1])), false, []string{"4:unsigned"}, 3},
		{"event edited after signing", cat(evEntries(edited), att(aAtt)), false, []string{"3:bad-site-signature"}, 0},
		{"event moved out of its attestation", cat(evEntries(a[:2]), att(aAtt), evEntries(a[2:])), false,
			[]string{"2:bad-site-signature", "0:unsigned", "1:unsigned", "3:unsigned"}, 0},
		{"foreign event inside the batch", cat(evEntries(a[:1]), evEntries(b[:1]), evEntries(a[1:]), att(aAtt)), false,
			[]string{"4:bad-site-signature", "0:unsigned"}, 0},
		{"attestation replayed with another batch", cat(evEntries(a), att(aAtt), evEntries(b), att(aAtt)), false, []string{"7:bad-site-signature"}, 3},
		{"attestation repeated: covers covered events", cat(evEntries(a), att(aAtt), att(aAtt)), false, []string{"4:bad-site-signature"}, 3},
		{"key used outside its window", cat(evEntries(a), att(late)), false, []string{"3:site-key-not-valid"}, 0},
		{"site signs for another site's location", cat(evEntries(mixed), att(mixedAtt)), false, []string{"1:site-not-allowed"}, 3},
		{"garbage attestation", cat(evEntries(a), att([]byte(record.AttestationHeader+"x"))), false,
			[]string{"3:bad-site-signature", "0:unsigned", "1:unsigned", "2:unsigned"}, 0},
		{"attestation at index 0", cat(att(aAtt)), false, []string{"0:bad-site-signature"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewChecker(w.set, testOrigin, tc.requireAll)
			fs := runChecker(c, tc.log)
			if got := kinds(fs); !slices.Equal(got, tc.want) {
				t.Fatalf("findings %v, want %v\n%+v", got, tc.want, fs)
			}
			if s := c.Stats(); s.Signed != tc.signed {
				t.Errorf("Stats = %+v, want Signed %d", s, tc.signed)
			}
			for _, f := range fs {
				if f.Kind == KindUnsigned || f.Kind == KindNotAllowed {
					if f.Sample == "" || f.Sample != tc.log[f.Index].ev.Sample {
						t.Errorf("finding %+v: sample is not the event's", f)
					}
				}
			}
		})
	}
}

// TestCheckerBounded checks that unsigned events are reported as soon as
// no attestation can cover them, so the Checker never holds more than
// record.MaxAttestedEvents of them.
func TestCheckerBounded(t *testing.T) {
	w := newWorld(t)
	c := NewChecker(w.set, testOrigin, false)
	evs := events(1, "ch-zrh-1", t0)
	n := record.MaxAttestedEvents + 10
	var reported []uint64
	for i := 0; i < n; i++ {
		for _, f := range c.AddEvent(uint64(i), &evs[0]) {
			reported = append(reported, f.Index)
		}
	}
	if len(reported) != 10 || reported[0] != 0 || reported[9] != 9 {
		t.Fatalf("reported %v before the end, want 0..9", reported)
	}
	if c.n != record.MaxAttestedEvents {
		t.Fatalf("%d pending", c.n)
	}
	if got := len(c.Finish()); got != record.MaxAttestedEvents {
		t.Fatalf("Finish reported %d", got)
	}
	// The largest batch still ties after a full ring wrapped around.
	big := events(record.MaxAttestedEvents, "ch-zrh-1", t0)
	for i := range big {
		big[i].Sample = big[i].Sample + "-" + string(rune('a'+i%26))
	}
	entry := attest(t, w.zrh, t0, big)
	for i := range big {
		if fs := c.AddEvent(uint64(n+i), &big[i]); len(fs) != 0 {
			t.Fatalf("findings %v", fs)
		}
	}
	if fs := c.AddAttestation(uint64(n+len(big)), entry); len(fs) != 0 {
		t.Fatalf("findings %+v", fs)
	}
	if s := c.Stats(); s.Signed != uint64(len(big)) || s.Events != uint64(n+len(big)) || s.Attestations != 1 || s.Invalid != 0 {
		t.Fatalf("Stats = %+v", s)
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "increasing index order") {
			t.Fatalf("recover = %v", r)
		}
	}()
	c.AddEvent(3, &evs[0])
}
