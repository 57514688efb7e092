// Package sitetest holds what the tests of site signing across custody
// share: deterministic site keys, the policy's sites for them, and a check
// of a receipt's attestation with golang.org/x/mod's note and tlog and
// crypto/ed25519 rather than custody's own site package.
package sitetest

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/site"
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// KeyFrom and KeyUntil bound the validity of the current keys of World;
// the old zrh key is valid from KeyFrom until OldUntil.
var (
	KeyFrom  = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	OldUntil = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	KeyUntil = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Key is a deterministic site key pair.
type Key struct {
	Name       string
	SKey, VKey string
	Signer     site.Signer
}

// NewKey returns the key pair of site name derived from seed.
func NewKey(t testing.TB, name string, seed byte) Key {
	t.Helper()
	skey, vkey, err := site.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{seed}, 32)), name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := site.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return Key{name, skey, vkey, s}
}

// World is two sites: zrh speaks for ch-zrh-1 with a key
// valid in 2026 (and an old one rotated out on OldUntil), mow for
// ru-mow-1 with a key valid in 2026.
type World struct {
	Zrh, ZrhOld, Mow Key
	Sites            []site.Site
	Set              *site.Set
}

// NewWorld returns the World.
func NewWorld(t testing.TB) *World {
	t.Helper()
	w := &World{Zrh: NewKey(t, "zrh", 1), ZrhOld: NewKey(t, "zrh", 2), Mow: NewKey(t, "mow", 3)}
	w.Sites = []site.Site{
		{Name: "zrh", Locations: []string{"ch-zrh-1"}, Keys: []site.Key{
			{Verifier: w.ZrhOld.VKey, From: KeyFrom, Until: OldUntil},
			{Verifier: w.Zrh.VKey, From: KeyFrom, Until: KeyUntil},
		}},
		{Name: "mow", Locations: []string{"ru-mow-1"}, Keys: []site.Key{{Verifier: w.Mow.VKey, From: KeyFrom, Until: KeyUntil}}},
	}
	set, err := site.NewSet(w.Sites)
	if err != nil {
		t.Fatal(err)
	}
	w.Set = set
	return w
}

// PolicySites is the sites section of a routing policy for the World,
// for policy files of tests.
func (w *World) PolicySites() string {
	return fmt.Sprintf(`sites:
  zrh:
    locations: [ch-zrh-1]
    keys:
      - {key: %s, from: 2026-01-01T00:00:00Z, until: 2026-06-01T00:00:00Z}
      - {key: %s, from: 2026-01-01T00:00:00Z, until: 2027-01-01T00:00:00Z}
  mow:
    locations: [ru-mow-1]
    keys:
      - {key: %s, from: 2026-01-01T00:00:00Z, until: 2027-01-01T00:00:00Z}
`, w.ZrhOld.VKey, w.Zrh.VKey, w.Mow.VKey)
}

// Sign returns the attestation entry by which k vouches at now for evs in
// the log origin.
func Sign(t testing.TB, k Key, origin string, now time.Time, evs []record.Event) []byte {
	t.Helper()
	_, entry, err := site.Attest(k.Signer, nil, origin, now, evs)
	if err != nil {
		t.Fatal(err)
	}
	return entry
}

// CheckAttestation checks, with x/mod's note and tlog only, that r (a
// receipt custody's verifier accepted) carries an attestation signed by
// the site key vkey that covers r's event: the note verifies, and the
// event's identity is leaf Index-(attestation index-count) of the signed
// root by the path given. It fails t otherwise.
func CheckAttestation(t testing.TB, vkey string, r verify.Receipt, ev record.Event) {
	t.Helper()
	if r.Attestation == nil {
		t.Fatalf("receipt %d has no attestation", r.Index)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(r.Attestation.Entry, note.VerifierList(v))
	if err != nil {
		t.Fatalf("receipt %d: the attestation does not open with x/mod note: %v", r.Index, err)
	}
	var count int64
	var root tlog.Hash
	for _, line := range bytes.Split([]byte(n.Text), []byte("\n")) {
		if c, ok := bytes.CutPrefix(line, []byte("count ")); ok {
			fmt.Sscan(string(c), &count)
		}
		if b, ok := bytes.CutPrefix(line, []byte("root ")); ok {
			h, err := tlog.ParseHash(string(b))
			if err != nil {
				t.Fatal(err)
			}
			root = h
		}
	}
	m := int64(r.Index) - (int64(r.Attestation.Index) - count)
	if m < 0 || m >= count {
		t.Fatalf("receipt %d: the attestation at %d with count %d does not cover it", r.Index, r.Attestation.Index, count)
	}
	proof := make(tlog.RecordProof, len(r.Attestation.Path))
	for i, h := range r.Attestation.Path {
		copy(proof[i][:], h)
	}
	id := ev.Identity()
	if err := tlog.CheckRecord(proof, count, root, m, tlog.RecordHash(id[:])); err != nil {
		t.Fatalf("receipt %d: the event is not leaf %d of the attestation's root (x/mod tlog): %v", r.Index, m, err)
	}
}
