package client

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custodylog/custody/httpapi"
	"github.com/custodylog/custody/internal/logtest"
	"github.com/custodylog/custody/internal/sitetest"
	"github.com/custodylog/custody/log"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/site"
	"github.com/custodylog/custody/store/sqlite"
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

// signedLog is a real log that verifies site signatures (sitetest.World)
// on a fixed clock, served over HTTP.
func signedLog(t *testing.T, require bool) (*testLog, *sitetest.World, func() time.Time) {
	t.Helper()
	ctx := context.Background()
	w := sitetest.NewWorld(t)
	now := func() time.Time { return logtest.Time.Add(time.Minute) }
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "custody.db"))
	if err != nil {
		t.Fatal(err)
	}
	skey, vkey, _ := note.GenerateKey(rand.Reader, "client.test/log")
	signer, _ := note.NewSigner(skey)
	verifier, _ := note.NewVerifier(vkey)
	if err := log.Create(ctx, st, signer); err != nil {
		t.Fatal(err)
	}
	l, err := log.Open(ctx, log.Config{Store: st, Signer: signer, Verifier: verifier, Now: now, Sites: w.Set, RequireSignatures: require})
	if err != nil {
		t.Fatal(err)
	}
	tl := &testLog{l: l, key: verifier}
	tl.srv = httptest.NewServer(httpapi.New(l, httpapi.Config{Tokens: []string{testToken}, Now: now}))
	t.Cleanup(func() { tl.srv.Close(); l.Close(); st.Close() })
	return tl, w, now
}

// TestAppendSigned: a client with a site signer sends each batch with its
// attestations (groups of at most record.MaxAttestedEvents), and checks
// that every receipt carries its attestation and path (which x/mod's note
// and tlog verify too).
func TestAppendSigned(t *testing.T) {
	tl, w, now := signedLog(t, true)
	c, _ := newClient(t, tl.srv.URL, tl.key, WithSiteSigner(w.Zrh.Signer, nil, ""), WithBatch(2500))
	c.site.now = now
	evs := logtest.Events(0, 3000)
	rs, err := c.Append(context.Background(), evs)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 3000 || tl.l.Checkpoint().Size != 3000+4 { // batches of 2500 (3 attestations) and 500 (1)
		t.Fatalf("%d receipts, log size %d", len(rs), tl.l.Checkpoint().Size)
	}
	for _, i := range []int{0, 1023, 1024, 2499, 2500, 2999} {
		sitetest.CheckAttestation(t, w.Zrh.VKey, rs[i].Receipt, evs[i])
	}
	// The same first group again, signed at the same time (the same
	// attestation): the receipts of the first time, nothing written.
	again, err := c.Append(context.Background(), evs[:1024])
	if err != nil || again[3].Index != rs[3].Index || tl.l.Checkpoint().Size != 3004 {
		t.Fatalf("retry: %v", err)
	}
	// Some of them in a new signed batch: refused, nothing written.
	if _, err := c.Append(context.Background(), evs[:10]); err == nil || !strings.Contains(err.Error(), "is logged already") || tl.l.Checkpoint().Size != 3004 {
		t.Fatalf("new batch of logged events: %v", err)
	}

	// A receipt without its attestation is caught.
	p := proxy(t, tl, nil, rewriteReceipts(func(i int, r *verify.Receipt) {
		if i == 1 {
			r.Attestation = nil
		}
	}))
	c2, _ := newClient(t, p.URL, tl.key, WithSiteSigner(w.Zrh.Signer, nil, ""))
	c2.site.now = now
	if _, err := c2.Append(context.Background(), logtest.Events(5000, 3)); err == nil || !strings.Contains(err.Error(), "did not return the attestation") {
		t.Fatalf("receipt without attestation: %v", err)
	}

	// Signing for another site's location: the log refuses the batch.
	c3, _ := newClient(t, tl.srv.URL, tl.key, WithSiteSigner(w.Mow.Signer, nil, ""))
	c3.site.now = now
	_, err = c3.Append(context.Background(), logtest.Events(6000, 2))
	var se *StatusError
	if !errors.As(err, &se) || se.Code != 400 || !strings.Contains(se.Message, "site-not-allowed") {
		t.Fatalf("mow signing zrh events: %v", err)
	}
}

// TestSign: Sign's lines are what the log takes.
func TestSign(t *testing.T) {
	tl, w, now := signedLog(t, true)
	evs := logtest.Events(0, 1030)
	lines, err := Sign(w.Zrh.Signer, nil, tl.l.Origin(), now(), evs)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 1032 || !strings.HasPrefix(string(lines[1024]), `{"attestation":"custody-attestation/v1\n`) {
		t.Fatalf("%d lines; line 1024 %q", len(lines), lines[1024])
	}
	c, _ := newClient(t, tl.srv.URL, tl.key)
	n, err := c.Send(context.Background(), lines)
	if err != nil || n != 1030 {
		t.Fatalf("Send: %d receipts, %v", n, err)
	}
	if _, err := Sign(w.Zrh.Signer, nil, tl.l.Origin(), now(), []record.Event{{Sample: "x"}}); err == nil {
		t.Fatal("signed an invalid event")
	}
}

// TestAppendSignedBySites: with WithSiteSigners, each run of events of one
// site is signed by that site, in one request.
func TestAppendSignedBySites(t *testing.T) {
	tl, w, now := signedLog(t, true)
	pick := func(loc string) site.Signer {
		switch loc {
		case "ch-zrh-1":
			return w.Zrh.Signer
		case "ru-mow-1":
			return w.Mow.Signer
		}
		return nil
	}
	c, _ := newClient(t, tl.srv.URL, tl.key, WithSiteSigners(pick, ""))
	c.site.now = now
	evs := logtest.Events(0, 6)
	for _, i := range []int{2, 3, 5} {
		evs[i].Location, evs[i].Region = "ru-mow-1", "ROW"
	}
	rs, err := c.Append(context.Background(), evs)
	if err != nil {
		t.Fatal(err)
	}
	// zrh 0-1, mow 2-3, zrh 4, mow 5: four attestations.
	if tl.l.Checkpoint().Size != 10 {
		t.Fatalf("log size %d, want 6 events and 4 attestations", tl.l.Checkpoint().Size)
	}
	for i, k := range []sitetest.Key{w.Zrh, w.Zrh, w.Mow, w.Mow, w.Zrh, w.Mow} {
		sitetest.CheckAttestation(t, k.VKey, rs[i].Receipt, evs[i])
	}
	evs = logtest.Events(100, 1)
	evs[0].Location = "de-fra-1"
	if _, err := c.Append(context.Background(), evs); err == nil || !strings.Contains(err.Error(), "no site signs for location de-fra-1") {
		t.Fatalf("event of no site: %v", err)
	}
}
