package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/custodylog/custody/internal/keyfile"
	"github.com/custodylog/custody/internal/plant"
	"github.com/custodylog/custody/internal/sitetest"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/store/sqlite"
	"golang.org/x/mod/sumdb/note"
)

// TestSiteSigning: site keys from keygen --site; a log run with the
// policy's sites and --require-site-signatures takes what append
// --site-key signs and refuses unsigned events; sign's output for another
// site's location gets 400; the audit of the log is clean.
// sitetestKey is a verifier key of site name that no test site holds.
func sitetestKey(t *testing.T, name string) string {
	return sitetest.NewKey(t, name, 99).VKey
}

func TestSiteSigning(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"zrh", "mow"} {
		code, out, stderr := run(t, "", "keygen", "--site", name, "--out", filepath.Join(dir, name))
		if code != 0 {
			t.Fatalf("keygen --site %s: %s", name, stderr)
		}
		if _, err := note.NewVerifier(strings.TrimSpace(out)); err != nil || !strings.HasPrefix(out, name+"+") {
			t.Fatalf("keygen --site %s printed %q (%v)", name, out, err)
		}
		if fi, err := os.Stat(filepath.Join(dir, name+".key")); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s.key: %v %v", name, fi, err)
		}
	}
	if code, _, _ := run(t, "", "keygen", "--site", "zrh", "--out", filepath.Join(dir, "zrh")); code == 0 {
		t.Fatal("keygen --site overwrote a key")
	}
	pub := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(dir, name+".pub"))
		return strings.TrimSpace(string(b))
	}
	base, err := os.ReadFile(filepath.Join("..", "testdata", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(dir, "policy.yaml")
	os.WriteFile(policy, append(base, []byte("sites:\n  zrh:\n    locations: [ch-zrh-1]\n    keys:\n      - {key: "+pub("zrh")+", from: 2026-01-01T00:00:00Z}\n  mow:\n    locations: [ru-mow-1]\n    keys:\n      - {key: "+pub("mow")+", from: 2026-01-01T00:00:00Z}\n")...), 0o644)
	logDir := filepath.Join(dir, "log")
	v := initLog(t, logDir, "example.com/signed")
	tokens := writeTokens(t, dir)
	srv := startServer(t, "--dir", logDir, "--token-file", tokens, "--policy", policy, "--require-site-signatures")
	logPub := filepath.Join(logDir, "log.pub")
	var events strings.Builder
	for i := range 5 {
		events.WriteString(eventLine("sig-1", "stored", i) + "\n")
	}
	code, out, stderr := run(t, events.String(), "append", "--log", srv.url, "--token-file", tokens, "--key", logPub, "--site-key", filepath.Join(dir, "zrh.key"), "-")
	if code != 0 {
		t.Fatalf("append --site-key: %s", stderr)
	}
	rs := receiptsOf(t, out)
	if len(rs) != 5 || rs[4].Attestation == nil || rs[4].Attestation.Index != 5 {
		t.Fatalf("signed receipts: %d, last %+v", len(rs), rs[len(rs)-1].Attestation)
	}
	receipts := filepath.Join(dir, "receipts.jsonl")
	os.WriteFile(receipts, []byte(out), 0o644)
	code, vout, stderr := run(t, "", "verify", "receipt", receipts, "--key", logPub, "--policy", policy)
	if code != 0 || strings.Count(vout, "signed by site zrh (key ") != 5 {
		t.Fatalf("verify receipt --policy: %d %s %s", code, vout, stderr)
	}
	// A policy that lists another key for zrh: the signatures fail it.
	other := filepath.Join(dir, "other.yaml")
	b, _ := os.ReadFile(policy)
	os.WriteFile(other, []byte(strings.Replace(string(b), pub("zrh"), sitetestKey(t, "zrh"), 1)), 0o644)
	code, vout, _ = run(t, "", "verify", "receipt", receipts, "--key", logPub, "--policy", other)
	if code != exitFailure || strings.Count(vout, "bad-site-signature") != 5 {
		t.Fatalf("verify receipt with another key in the policy: %d %s", code, vout)
	}
	code, _, stderr = run(t, eventLine("sig-2", "stored", 1)+"\n", "append", "--log", srv.url, "--token-file", tokens, "-")
	if code == 0 || !strings.Contains(stderr, "unsigned") {
		t.Fatalf("unsigned append to a log that requires signatures: %d %s", code, stderr)
	}
	code, signed, stderr := run(t, eventLine("sig-3", "stored", 2)+"\n", "sign", "--key", filepath.Join(dir, "mow.key"), "--log-origin", v.Name())
	if code != 0 || strings.Count(signed, "\n") != 2 || !strings.Contains(signed, `{"attestation":"custody-attestation/v1\norigin example.com/signed\nsite mow\n`) {
		t.Fatalf("sign: %d %q %s", code, signed, stderr)
	}
	req, _ := http.NewRequest("POST", srv.url+"/v1/events", strings.NewReader(signed))
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("mow signing a ch-zrh-1 event: %d, want 400", resp.StatusCode)
	}
	var st struct {
		Size  uint64
		Sites string `json:"site_signatures"`
	}
	cl, _ := newAPIClient(srv.url)
	cl.GetJSON(context.Background(), "/v1/stats", &st)
	if st.Size != 6 || st.Sites != "required" {
		t.Fatalf("stats: %+v, want size 6, required", st)
	}
	// fsck re-verifies the signatures from the database.
	for _, extra := range [][]string{nil, {"--require-site-signatures"}} {
		code, out, stderr = run(t, "", append([]string{"fsck", "--dir", logDir, "--policy", policy}, extra...)...)
		if code != 0 {
			t.Fatalf("fsck --policy %v: %d %s %s", extra, code, out, stderr)
		}
	}
	code, out, stderr = run(t, "", "audit", "--log", srv.url, "--key", logPub, "--policy", policy, "--no-state", "--json")
	// Policy findings (the events are late, stored with no collection),
	// but none about signatures: all five are signed.
	if code != exitFailure || !strings.Contains(out, `"signed": 5`) || strings.Contains(out, "site-") || strings.Contains(out, "unsigned") {
		t.Fatalf("audit: %d %s %s", code, out, stderr)
	}
}

// TestSiteTamperDrills plants the tamper drills in a log's database past
// the server (internal/plant: an event edited after signing, an event moved
// out of its attestation, an attestation replayed with another batch, a
// key used outside its window, a site signing for another site's location)
// and checks that custody fsck and custody audit each report every one with
// the right finding at the right entry, and that the audit keeps evidence
// of the attestations that do not hold; the same attempt through the
// server is refused and writes nothing.
func TestSiteTamperDrills(t *testing.T) {
	dir := t.TempDir()
	w := sitetest.NewWorld(t)
	base, err := os.ReadFile(filepath.Join("..", "testdata", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(dir, "policy.yaml")
	os.WriteFile(policy, append(base, fmt.Sprintf(`sites:
  zrh:
    locations: [ch-zrh-1]
    keys:
      - {key: %s, from: 2026-01-01T00:00:00Z, until: 2026-06-01T00:00:00Z}
      - {key: %s, from: 2026-01-01T00:00:00Z}
  mow:
    locations: [ru-mow-1]
    keys:
      - {key: %s, from: 2026-01-01T00:00:00Z}
`, w.ZrhOld.VKey, w.Zrh.VKey, w.Mow.VKey)...), 0o644)
	logDir := filepath.Join(dir, "log")
	v := initLog(t, logDir, "example.com/drills")
	now := time.Now().UTC().Truncate(time.Second)
	evs := make([]record.Event, 11)
	for i := range evs {
		evs[i] = record.Event{Sample: fmt.Sprintf("drill-%02d", i), Action: record.Collected, Location: "ch-zrh-1", Region: "EU",
			Time: now.Add(-2 * time.Minute), Logged: now, Actor: "lims"}
	}
	var entries [][]byte
	add := func(batch ...record.Event) {
		for _, ev := range batch {
			entries = append(entries, ev.Canonical())
		}
	}
	att := func(k sitetest.Key, batch ...record.Event) {
		entries = append(entries, sitetest.Sign(t, k, v.Name(), now, batch))
	}
	add(evs[0], evs[1]) // 0, 1: signed right
	att(w.Zrh, evs[0], evs[1])
	edited := evs[2] // 3: edited after signing (attestation 4)
	edited.Note = "edited after signing"
	add(edited)
	att(w.Zrh, evs[2])
	add(evs[3]) // 5: moved out of its attestation (6), which covers 5 and 7
	att(w.Zrh, evs[3], evs[4])
	add(evs[4])
	add(evs[5], evs[6]) // 8, 9: another batch's attestation (10) replayed
	att(w.Zrh, evs[7], evs[8])
	add(evs[9]) // 11: the old key, rotated out in June (12)
	att(w.ZrhOld, evs[9])
	add(evs[10]) // 13: mow signs for ch-zrh-1 (14)
	att(w.Mow, evs[10])
	signer, err := keyfile.LoadSigner(filepath.Join(logDir, "log.key"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(filepath.Join(logDir, "custody.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plant.Plant(context.Background(), st, signer, v, entries); err != nil {
		t.Fatal(err)
	}
	st.Close()
	want := []string{"bad-site-signature entry 4", "unsigned entry 5", "bad-site-signature entry 6", "unsigned entry 7",
		"bad-site-signature entry 10", "site-key-not-valid entry 12", "site-not-allowed entry 13"}

	code, out, stderr := run(t, "", "fsck", "--dir", logDir, "--policy", policy, "--json")
	var rep struct {
		Problems []struct{ Kind, Where string }
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != exitInvalid {
		t.Fatalf("fsck: %d %v %s %s", code, err, out, stderr)
	}
	var got []string
	for _, p := range rep.Problems {
		got = append(got, p.Kind+" "+p.Where)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("fsck problems %q, want %q", got, want)
	}

	tokens := writeTokens(t, dir)
	srv := startServer(t, "--dir", logDir, "--token-file", tokens, "--policy", policy)
	state := filepath.Join(dir, "state")
	code, out, stderr = run(t, "", "audit", "--log", srv.url, "--key", filepath.Join(logDir, "log.pub"), "--policy", policy, "--state", state, "--json")
	var arep struct {
		Findings []struct {
			Index uint64
			Kind  string
		}
	}
	if err := json.Unmarshal([]byte(out), &arep); err != nil || code != exitFailure {
		t.Fatalf("audit: %d %v %s %s", code, err, out, stderr)
	}
	got = nil
	for _, f := range arep.Findings {
		got = append(got, fmt.Sprintf("%s entry %d", f.Kind, f.Index))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("audit findings %q, want %q", got, want)
	}
	for _, i := range []int{4, 6, 10, 12} {
		b, err := os.ReadFile(filepath.Join(state, fmt.Sprintf("evidence-site-%d.json", i)))
		if err != nil || !strings.Contains(string(b), `"checkpoint": "example.com/drills\n15\n`) {
			t.Errorf("evidence of the attestation at %d: %v %.200s", i, err, b)
		}
	}

	// Through the server: the mow site signing for ch-zrh-1 is refused.
	mowKey := filepath.Join(dir, "mow.key")
	os.WriteFile(mowKey, []byte(w.Mow.SKey+"\n"), 0o600)
	code, _, stderr = run(t, eventLine("drill-99", "collected", 1)+"\n", "append", "--log", srv.url, "--token-file", tokens, "--key", filepath.Join(logDir, "log.pub"), "--site-key", mowKey, "-")
	if code == 0 || !strings.Contains(stderr, "site-not-allowed") {
		t.Fatalf("append signed by mow for ch-zrh-1: %d %s", code, stderr)
	}
	var stats struct{ Size uint64 }
	cl, _ := newAPIClient(srv.url)
	cl.GetJSON(context.Background(), "/v1/stats", &stats)
	if stats.Size != 15 {
		t.Fatalf("size %d after a refused append, want 15", stats.Size)
	}
}
