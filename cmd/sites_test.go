package cmd

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custodylog/custody/internal/sitetest"
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
