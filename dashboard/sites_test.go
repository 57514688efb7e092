package dashboard

import (
	"context"
	"crypto/rand"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/internal/logtest"
	"github.com/custodylog/custody/internal/plant"
	"github.com/custodylog/custody/internal/sitetest"
	"github.com/custodylog/custody/log"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/stats"
	"github.com/custodylog/custody/store/sqlite"
	"golang.org/x/mod/sumdb/note"
)

// TestSitesPanel: with a policy that has sites, the front page lists the
// sites, their keys and whether each may sign now, marks every recent
// event by its signature status, and the built-in audit reports the
// planted violation (an event at ch-zrh-1 signed by the mow site).
func TestSitesPanel(t *testing.T) {
	ctx := context.Background()
	w := sitetest.NewWorld(t)
	pol, err := audit.ParsePolicy(append(mustRead(t, filepath.Join("..", "testdata", "policy.yaml")), w.PolicySites()...))
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "custody.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	skey, vkey, _ := note.GenerateKey(rand.Reader, testOrigin)
	signer, _ := note.NewSigner(skey)
	verifier, _ := note.NewVerifier(vkey)
	if err := log.Create(ctx, st, signer); err != nil {
		t.Fatal(err)
	}
	logged := logtest.Time.Add(time.Minute)
	evs := logtest.Events(0, 6)
	for i := range evs {
		evs[i].Logged = logged
	}
	var entries [][]byte
	add := func(k *sitetest.Key, batch ...record.Event) {
		for _, ev := range batch {
			entries = append(entries, ev.Canonical())
		}
		if k != nil {
			entries = append(entries, sitetest.Sign(t, *k, testOrigin, logged, batch))
		}
	}
	add(&w.Zrh, evs[0], evs[1]) // 0, 1 signed by zrh; 2 its attestation
	add(&w.Mow, evs[2])         // 3 at ch-zrh-1 signed by mow: site-not-allowed; 4
	add(nil, evs[3])            // 5 unsigned at ch-zrh-1
	if _, err := plant.Plant(ctx, st, signer, verifier, entries); err != nil {
		t.Fatal(err)
	}
	l, err := log.Open(ctx, log.Config{Store: st, Signer: signer, Verifier: verifier, Sites: w.Set})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	d, err := New(Config{Log: l, Stats: stats.New(st, nil), Verifier: verifier, Policy: pol})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); d.Run(rctx) }()
	defer func() { cancel(); <-done }()
	for deadline := time.Now().Add(30 * time.Second); !d.auditor.view(6).Complete; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the built-in audit did not finish within 30 s")
		}
	}
	rec := httptest.NewRecorder()
	d.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`data-testid="site-mode" data-mode="optional"`,
		`<tr data-site="zrh" data-valid="false">`, // the old key, rotated out
		`<tr data-site="zrh" data-valid="true">`,
		`<tr data-site="mow" data-valid="true">`,
		"<code>" + strings.ReplaceAll(w.Zrh.VKey, "+", "&#43;") + "</code>", // html/template escapes +
		`data-signature="signed by site zrh"`,
		`data-signature="site signature fails: site-not-allowed"`,
		`data-signature="unsigned"`,
		`<tr data-index="3" data-sample="s-000002" data-kind="site-not-allowed">`,
		`<tr data-index="5" data-sample="s-000003" data-kind="unsigned">`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the front page has no %s", want)
		}
	}
	if n := strings.Count(body, `data-signature="signed by site zrh"`); n != 2 {
		t.Errorf("%d events marked signed by zrh, want 2", n)
	}
	if strings.Contains(body, "custody-attestation") {
		t.Error("an attestation entry is listed as an event")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
