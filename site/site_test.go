package site

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/custodylog/custody/record"
)

func TestKeys(t *testing.T) {
	k := newTestKey(t, "ch-zrh-1", 7)
	if !strings.HasPrefix(k.skey, "PRIVATE+KEY+ch-zrh-1+") || !strings.HasPrefix(k.vkey, "ch-zrh-1+") {
		t.Fatalf("keys %q %q", k.skey, k.vkey)
	}
	// x/mod parses both, and they are a pair.
	ns, err := note.NewSigner(k.skey)
	if err != nil {
		t.Fatal(err)
	}
	nv, err := note.NewVerifier(k.vkey)
	if err != nil {
		t.Fatal(err)
	}
	if ns.KeyHash() != nv.KeyHash() || k.signer.KeyHash() != nv.KeyHash() || k.signer.Name() != "ch-zrh-1" {
		t.Fatal("key hashes or names differ")
	}
	if v, err := NewVerifierKey("ch-zrh-1", k.pub); err != nil || v != k.vkey {
		t.Fatalf("NewVerifierKey = %q, %v; want %q", v, err, k.vkey)
	}
	if _, err := NewSigner(k.skey + "\n"); err != nil {
		t.Fatalf("NewSigner with a final newline: %v", err)
	}

	for _, tc := range []struct{ name, want string }{
		{"", "required"}, {"Z", "1 characters"}, {"ZZ", "not allowed"}, {"a+b", "not allowed"}, {"a b", "not allowed"}, {strings.Repeat("a", 33), "33 characters"},
	} {
		if _, _, err := GenerateKey(bytes.NewReader(make([]byte, 32)), tc.name); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("GenerateKey(%q) = %v, want %q", tc.name, err, tc.want)
		}
	}
	// Keys of a name that is not a site name (a log key) are refused.
	lskey, lvkey, _ := note.GenerateKey(bytes.NewReader(make([]byte, 32)), "transparency.example.com/custody")
	if _, err := NewSigner(lskey); err == nil || !strings.Contains(err.Error(), "not a valid site name") {
		t.Errorf("NewSigner(log key) = %v", err)
	}
	if _, _, err := ParseVerifierKey(lvkey); err == nil || !strings.Contains(err.Error(), "not a valid site name") {
		t.Errorf("ParseVerifierKey(log key) = %v", err)
	}
	for _, bad := range []string{"", "zrh", "zrh+00000000+AQ==", k.vkey[:len(k.vkey)-4], strings.Replace(k.vkey, "+", "+f", 1)} {
		if _, _, err := ParseVerifierKey(bad); err == nil {
			t.Errorf("ParseVerifierKey(%q) accepted", bad)
		}
	}
	if _, err := NewSigner("PRIVATE+KEY+zrh+00000000+AQ=="); err == nil || !strings.Contains(err.Error(), "custody keygen --site") {
		t.Errorf("NewSigner(bad) = %v", err)
	}
}

// TestAttestInterop checks an attestation with two independent
// implementations: x/mod/sumdb/note opens the entry with the site's
// verifier key and signs the same text to the same bytes, and
// crypto/ed25519 verifies the signature over the documented text.
func TestAttestInterop(t *testing.T) {
	w := newWorld(t)
	evs := events(256, "ch-zrh-1", time.Time{})
	a, entry, err := Attest(w.zrh.signer, w.zrh.pub, testOrigin, t0.Add(500*time.Millisecond), evs)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Time.Equal(t0) || a.Count != 256 || a.Site != "zrh" || a.Origin != testOrigin {
		t.Fatalf("attestation %+v", a)
	}
	v, _ := note.NewVerifier(w.zrh.vkey)
	n, err := note.Open(entry, note.VerifierList(v))
	if err != nil {
		t.Fatalf("note.Open: %v", err)
	}
	if n.Text != string(a.Text()) || len(n.Sigs) != 1 || n.Sigs[0].Name != "zrh" || n.Sigs[0].Hash != a.KeyID {
		t.Fatalf("note.Open = %+v", n)
	}
	signed, err := note.Sign(&note.Note{Text: string(a.Text())}, w.zrh.signer)
	if err != nil || !bytes.Equal(signed, entry) {
		t.Fatalf("note.Sign =\n%s\nwant\n%s", signed, entry)
	}
	if !ed25519.Verify(w.zrh.pub, a.Text(), a.Signature[:]) {
		t.Fatal("crypto/ed25519 does not verify the signature over Text")
	}
	// Another site's key does not open it.
	mv, _ := note.NewVerifier(w.mow.vkey)
	if _, err := note.Open(entry, note.VerifierList(mv)); err == nil {
		t.Fatal("note.Open with mow's key accepted zrh's attestation")
	}
	ids := make([][32]byte, len(evs))
	for i := range evs {
		ids[i] = evs[i].Identity()
	}
	if a.Root != record.AttestationRoot(ids) {
		t.Fatal("root is not the tree hash of the identities")
	}
	// The events' logged times do not matter (the log sets them later).
	logged := events(256, "ch-zrh-1", t0)
	if err := w.set.Verify(testOrigin, entry, logged, t0); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

// badSigner signs with another key than it claims.
type badSigner struct {
	Signer
	other Signer
}

func (b badSigner) Sign(msg []byte) ([]byte, error) { return b.other.Sign(msg) }

type failSigner struct{ Signer }

func (failSigner) Sign([]byte) ([]byte, error) { return nil, errors.New("HSM offline") }

type shortSigner struct{ Signer }

func (shortSigner) Sign([]byte) ([]byte, error) { return make([]byte, 10), nil }

func TestAttestErrors(t *testing.T) {
	w := newWorld(t)
	evs := events(2, "ch-zrh-1", time.Time{})
	bad := evs[1]
	bad.Region = "eu"
	for _, tc := range []struct {
		name   string
		s      Signer
		origin string
		evs    []record.Event
		want   string
	}{
		{"no events", w.zrh.signer, testOrigin, nil, "cannot attest 0 events"},
		{"too many", w.zrh.signer, testOrigin, events(1025, "ch-zrh-1", time.Time{}), "cannot attest 1025 events: want 1..1024"},
		{"invalid event", w.zrh.signer, testOrigin, []record.Event{evs[0], bad}, `event 1 (sample "smp-ch-zrh-1-0001"): field "region"`},
		{"bad origin", w.zrh.signer, "a b", evs, `field "origin"`},
		{"signer fails", failSigner{w.zrh.signer}, testOrigin, evs, "HSM offline"},
		{"short signature", shortSigner{w.zrh.signer}, testOrigin, evs, "returned 10 bytes"},
		{"wrong key", badSigner{w.zrh.signer, w.zrhOld.signer}, testOrigin, evs, "does not verify with the site's public key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, entry, err := Attest(tc.s, w.zrh.pub, tc.origin, t0, tc.evs)
			if err == nil || !strings.Contains(err.Error(), tc.want) || entry != nil {
				t.Fatalf("Attest = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestNewSetErrors(t *testing.T) {
	w := newWorld(t)
	ok := Key{Verifier: w.zrh.vkey, From: keyFrom}
	for _, tc := range []struct {
		name  string
		sites []Site
		want  string
	}{
		{"bad name", []Site{{Name: "Z", Locations: []string{"ch-zrh-1"}, Keys: []Key{ok}}}, `site "Z"`},
		{"duplicate", []Site{{Name: "zrh", Locations: []string{"ch-zrh-1"}, Keys: []Key{ok}}, {Name: "zrh", Locations: []string{"ch-zrh-2"}, Keys: []Key{ok}}}, "listed twice"},
		{"no locations", []Site{{Name: "zrh", Keys: []Key{ok}}}, "no locations"},
		{"bad location", []Site{{Name: "zrh", Locations: []string{"CH"}, Keys: []Key{ok}}}, `location "CH"`},
		{"shared location", []Site{{Name: "zrh", Locations: []string{"ch-zrh-1"}, Keys: []Key{ok}}, {Name: "mow", Locations: []string{"ch-zrh-1"}, Keys: []Key{{Verifier: w.mow.vkey, From: keyFrom}}}}, `already belongs to site "zrh"`},
		{"no keys", []Site{{Name: "zrh", Locations: []string{"ch-zrh-1"}}}, "no keys"},
		{"bad key", []Site{{Name: "zrh", Locations: []string{"ch-zrh-1"}, Keys: []Key{{Verifier: "x", From: keyFrom}}}}, "key 0"},
		{"key of another site", []Site{{Name: "zrh", Locations: []string{"ch-zrh-1"}, Keys: []Key{{Verifier: w.mow.vkey, From: keyFrom}}}}, `key 0 is for site "mow"`},
		{"no from", []Site{{Name: "zrh", Locations: []string{"ch-zrh-1"}, Keys: []Key{{Verifier: w.zrh.vkey}}}}, "from is required"},
		{"until before from", []Site{{Name: "zrh", Locations: []string{"ch-zrh-1"}, Keys: []Key{{Verifier: w.zrh.vkey, From: keyFrom, Until: keyFrom}}}}, "is not after from"},
		{"same key twice", []Site{{Name: "zrh", Locations: []string{"ch-zrh-1"}, Keys: []Key{ok, ok}}}, "same key hash"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewSet(tc.sites); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewSet = %v, want %q", err, tc.want)
			}
		})
	}
	empty, err := NewSet(nil)
	if err != nil || empty.Len() != 0 || empty.Expects("ch-zrh-1", t0) {
		t.Fatalf("empty set: %v", err)
	}
	if got := w.set.Names(); len(got) != 2 || got[0] != "mow" || got[1] != "zrh" {
		t.Fatalf("Names = %v", got)
	}
}

func TestExpects(t *testing.T) {
	w := newWorld(t)
	for _, tc := range []struct {
		loc  string
		at   time.Time
		want bool
	}{
		{"ch-zrh-1", t0, true},
		{"ch-zrh-2", t0, true},
		{"ch-zrh-1", keyFrom.Add(-time.Second), false}, // before the site's first key
		{"ch-zrh-1", keyEnd, false},                    // every key ended
		{"ru-mow-1", keyEnd.AddDate(10, 0, 0), true},   // no end
		{"de-fra-1", t0, false},                        // no site speaks for it
	} {
		if got := w.set.Expects(tc.loc, tc.at); got != tc.want {
			t.Errorf("Expects(%s, %v) = %v, want %v", tc.loc, tc.at, got, tc.want)
		}
	}
}
