package site

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/custodylog/custody/record"
)

// testKey is a deterministic site key pair for tests.
type testKey struct {
	skey, vkey string
	signer     Signer
	pub        ed25519.PublicKey
}

func newTestKey(t testing.TB, name string, seed byte) testKey {
	t.Helper()
	skey, vkey, err := GenerateKey(bytes.NewReader(bytes.Repeat([]byte{seed}, 32)), name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	_, pub, err := ParseVerifierKey(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{skey, vkey, s, pub}
}

const testOrigin = "transparency.example.com/custody"

var (
	t0      = time.Date(2026, 12, 7, 7, 0, 0, 0, time.UTC)
	keyFrom = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	keyEnd  = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
)

// testWorld is two sites: zrh speaks for ch-zrh-1 and ch-zrh-2, mow for
// ru-mow-1; zrh has an old key (until 2026-06-01) and a current one.
type testWorld struct {
	zrh, zrhOld, mow testKey
	set              *Set
}

func newWorld(t testing.TB) *testWorld {
	t.Helper()
	w := &testWorld{
		zrh:    newTestKey(t, "zrh", 1),
		zrhOld: newTestKey(t, "zrh", 2),
		mow:    newTestKey(t, "mow", 3),
	}
	set, err := NewSet([]Site{
		{Name: "zrh", Locations: []string{"ch-zrh-1", "ch-zrh-2"}, Keys: []Key{
			{Verifier: w.zrhOld.vkey, From: keyFrom, Until: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)},
			{Verifier: w.zrh.vkey, From: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC), Until: keyEnd},
		}},
		{Name: "mow", Locations: []string{"ru-mow-1"}, Keys: []Key{{Verifier: w.mow.vkey, From: keyFrom}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	w.set = set
	return w
}

// events returns n valid events at loc, logged at logged (zero: not set).
func events(n int, loc string, logged time.Time) []record.Event {
	evs := make([]record.Event, n)
	for i := range evs {
		evs[i] = record.Event{
			Sample: fmt.Sprintf("smp-%s-%04d", loc, i), Action: record.Analysed, Location: loc, Region: "EU",
			Time: t0.Add(-time.Minute), Logged: logged, Actor: "lims/4.2",
		}
	}
	return evs
}

func attest(t testing.TB, k testKey, at time.Time, evs []record.Event) []byte {
	t.Helper()
	_, entry, err := Attest(k.signer, k.pub, testOrigin, at, evs)
	if err != nil {
		t.Fatal(err)
	}
	return entry
}

// kinds returns the kinds of fs with their indexes, for comparisons.
func kinds(fs []Finding) []string {
	out := make([]string, 0, len(fs))
	for _, f := range fs {
		out = append(out, fmt.Sprintf("%d:%s", f.Index, f.Kind))
	}
	return out
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func decodeB64Sig(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }
