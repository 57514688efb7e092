package site

import (
	"errors"
	"testing"
	"time"

	"github.com/custodylog/custody/record"
)

// TestVerifyEvent: each event of a signed batch verifies on its own from
// the attestation, the indexes and its path; a wrong place, path, event,
// key window or site does not.
func TestVerifyEvent(t *testing.T) {
	w := newWorld(t)
	evs := events(5, "ch-zrh-1", t0)
	att := attest(t, w.zrh, t0, evs)
	ids := make([][32]byte, len(evs))
	for i := range evs {
		ids[i] = evs[i].Identity()
	}
	path := func(m int) [][]byte {
		var out [][]byte
		for _, h := range record.AttestationPath(ids, m) {
			out = append(out, append([]byte(nil), h[:]...))
		}
		return out
	}
	const first = 100 // the batch is entries 100..104, the attestation 105
	for m := range evs {
		if err := w.set.VerifyEvent(testOrigin, att, first+5, &evs[m], first+uint64(m), path(m)); err != nil {
			t.Fatalf("event %d: %v", m, err)
		}
	}
	edited := evs[2]
	edited.Note = "edited"
	mow := events(1, "ch-zrh-1", t0)
	mowAtt := attest(t, w.mow, t0, mow)
	late := events(1, "ch-zrh-1", t0.Add(time.Hour))
	cases := []struct {
		name     string
		att      []byte
		attIndex uint64
		ev       *record.Event
		index    uint64
		path     [][]byte
		kind     Kind
	}{
		{"event at another place", att, first + 5, &evs[2], first + 3, path(2), KindBadSignature},
		{"before the batch", att, first + 5, &evs[0], first - 1, path(0), KindBadSignature},
		{"after the attestation", att, first + 5, &evs[0], first + 6, path(0), KindBadSignature},
		{"another event's path", att, first + 5, &evs[2], first + 2, path(3), KindBadSignature},
		{"edited event", att, first + 5, &edited, first + 2, path(2), KindBadSignature},
		{"short path hash", att, first + 5, &evs[2], first + 2, [][]byte{{1, 2}}, KindBadSignature},
		{"another site's location", mowAtt, 11, &mow[0], 10, nil, KindNotAllowed},
		{"logged too late", attest(t, w.zrh, t0, late), 11, &late[0], 10, nil, KindKeyNotValid},
		{"not an attestation", []byte("nonsense"), 11, &late[0], 10, nil, KindBadSignature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := w.set.VerifyEvent(testOrigin, tc.att, tc.attIndex, tc.ev, tc.index, tc.path)
			var f *Finding
			if !errors.As(err, &f) || f.Kind != tc.kind {
				t.Fatalf("got %v, want %s", err, tc.kind)
			}
		})
	}
}

// TestVerifyIdentities: with the identities given, Verify's verdicts;
// identities that are not the events' fail the root.
func TestVerifyIdentities(t *testing.T) {
	w := newWorld(t)
	evs := events(4, "ch-zrh-1", t0)
	att := attest(t, w.zrh, t0, evs)
	ids := make([][32]byte, len(evs))
	for i := range evs {
		ids[i] = evs[i].Identity()
	}
	if err := w.set.VerifyIdentities(testOrigin, att, evs, ids, t0); err != nil {
		t.Fatal(err)
	}
	ids[2][0] ^= 1
	var f *Finding
	if err := w.set.VerifyIdentities(testOrigin, att, evs, ids, t0); !errors.As(err, &f) || f.Kind != KindBadSignature {
		t.Fatalf("wrong identity: %v", err)
	}
	if err := w.set.VerifyIdentities(testOrigin, att, evs, ids[:3], t0); !errors.As(err, &f) || f.Kind != KindBadSignature {
		t.Fatalf("too few identities: %v", err)
	}
}
