package dashboard

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/httpapi"
	"github.com/custodylog/custody/log"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/stats"
	"github.com/custodylog/custody/store/sqlite"
	"github.com/custodylog/custody/store/witnessdb"
	"github.com/custodylog/custody/verify"
	"github.com/custodylog/custody/witness"
	"golang.org/x/mod/sumdb/note"
)

const (
	testOrigin      = "dashboard.test/log"
	testWitnessName = "witness.dashboard.test"
)

// testPolicy is testdata/policy.yaml, the demo's policy.
func testPolicy(t testing.TB) *audit.Policy {
	t.Helper()
	p, err := audit.LoadPolicy(filepath.Join("..", "testdata", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// site is a running log with a witness (quorum 1) and its dashboard, served
// over HTTP.
type site struct {
	log    *log.Log
	stats  *stats.Counter // fed by the log's commits
	dash   *Dashboard
	srv    *httptest.Server
	dbPath string
	base   time.Time
}

// newSite starts a log in a fresh SQLite file, cosigned by a real witness
// server, with the dashboard (and the policy, if given) mounted at "/".
func newSite(t testing.TB, policy *audit.Policy) *site {
	t.Helper()
	return startSite(t, policy, true)
}

// startSite is newSite, with or without the witness.
func startSite(t testing.TB, policy *audit.Policy, witnessed bool) *site {
	t.Helper()
	return startSiteIndex(t, policy, witnessed, true)
}

// startSiteIndex is startSite, with or without the verifiable sample index.
func startSiteIndex(t testing.TB, policy *audit.Policy, witnessed, index bool) *site {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "custody.db")
	st, err := sqlite.Open(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	verifier, _ := note.NewVerifier(vkey)
	if err := log.CreateWith(ctx, st, signer, log.CreateOptions{SampleIndex: index}); err != nil {
		t.Fatal(err)
	}

	counter := stats.New(st, nil)
	cfg := log.Config{Store: st, Signer: signer, Verifier: verifier, OnCommit: counter.Committed}
	var wverifiers []note.Verifier
	var closeWitness func()
	if witnessed {
		wv, stop := startWitness(t, dir, verifier)
		cfg.Witnesses, cfg.Quorum = []log.Witness{{URL: wv.url, Verifier: wv.v}}, 1
		wverifiers, closeWitness = []note.Verifier{wv.v}, stop
	}
	l, err := log.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{Log: l, Stats: counter, Activity: counter, Verifier: verifier, Witnesses: wverifiers, Policy: policy, LogKey: vkey})
	if err != nil {
		t.Fatal(err)
	}
	// The counts and the dashboard's audit run until the site closes.
	bctx, stopBackground := context.WithCancel(ctx)
	var background sync.WaitGroup
	background.Add(2)
	go func() { defer background.Done(); counter.Run(bctx) }()
	go func() { defer background.Done(); d.Run(bctx) }()
	srv := httptest.NewServer(httpapi.New(l, httpapi.Config{Extra: d, Stats: counter}))
	t.Cleanup(func() {
		srv.Close()
		stopBackground()
		background.Wait()
		l.Close()
		st.Close()
		if closeWitness != nil {
			closeWitness()
		}
	})
	return &site{log: l, stats: counter, dash: d, srv: srv, dbPath: dbPath, base: time.Now().UTC().Truncate(time.Second).Add(-30 * time.Minute)}
}

type testWitness struct {
	url string
	v   note.Verifier
}

// startWitness serves a real witness that trusts the log key v.
func startWitness(t testing.TB, dir string, logKey note.Verifier) (testWitness, func()) {
	t.Helper()
	_, wpriv, _ := ed25519.GenerateKey(rand.Reader)
	wsigner := verify.NewCosignatureSigner(testWitnessName, wpriv, time.Now)
	wverifier, err := verify.NewCosignatureVerifier(verify.CosignatureVKey(testWitnessName, wpriv.Public().(ed25519.PublicKey)))
	if err != nil {
		t.Fatal(err)
	}
	wdir := filepath.Join(dir, "witness")
	if err := os.MkdirAll(wdir, 0o700); err != nil {
		t.Fatal(err)
	}
	st, err := witnessdb.Open(filepath.Join(wdir, witnessdb.FileName))
	if err != nil {
		t.Fatal(err)
	}
	w, err := witness.Open(witness.Config{State: st, Signer: wsigner, Logs: []note.Verifier{logKey}})
	if err != nil {
		t.Fatal(err)
	}
	wsrv := httptest.NewServer(w.Handler())
	return testWitness{url: wsrv.URL, v: wverifier}, func() { wsrv.Close(); w.Close() }
}

// ev builds an event of sample s, n seconds after the site's base time.
func (s *site) ev(sample, region string, action record.Action, loc, to string, n int) record.Event {
	return record.Event{Sample: sample, Region: region, Action: action, Location: loc, To: to,
		Actor: "test/1", Time: s.base.Add(time.Duration(n) * time.Second)}
}

// add appends events and waits until the dashboard's counts have them.
func (s *site) add(t testing.TB, evs ...record.Event) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.log.AddMany(ctx, evs); err != nil {
		t.Fatal(err)
	}
	s.waitCounted(t)
}

// waitCounted waits until the log's counts (and the dashboard's audit, if
// any) cover the published tree.
func (s *site) waitCounted(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		size := s.log.Checkpoint().Size
		done := s.stats.Counted() >= size
		if s.dash.auditor != nil {
			done = done && s.dash.auditor.view(size).Complete
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the counts did not reach the tree size %d within 30s", size)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// get fetches path from the site and returns status and body.
func (s *site) get(t testing.TB, path string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(s.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// cellRE matches a chart cell of the SVG.
var cellRE = regexp.MustCompile(`<g class="cell [a-z]+" data-region="([A-Z]+)" data-location="([a-z0-9-]+)" data-count="(\d+)" data-class="([a-z]+)">`)

// chartCells returns the chart's cells: region/location → count, class.
func chartCells(t testing.TB, body string) map[string]struct {
	count uint64
	class string
} {
	t.Helper()
	out := map[string]struct {
		count uint64
		class string
	}{}
	for _, m := range cellRE.FindAllStringSubmatch(body, -1) {
		n, err := strconv.ParseUint(m[3], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		out[m[1]+"/"+m[2]] = struct {
			count uint64
			class string
		}{n, m[4]}
	}
	return out
}

// workload is a small, fully known set of events: per region, n samples
// collected at the edge, transferred to ch-zrh-1, stored, analysed and
// deleted at both; with violate, EU sample 0 is also analysed at us-ash-1
// (not allowed for EU) and UK sample 0 is "stored" at ch-zrh-1 without
// having been transferred there.
func (s *site) workload(n int, violate bool) []record.Event {
	edges := []struct{ region, edge string }{{"US", "us-ash-1"}, {"EU", "de-fra-1"}, {"UK", "uk-lon-1"}, {"ROW", "sg-sin-1"}}
	var out []record.Event
	t := 0
	for _, e := range edges {
		for i := 0; i < n; i++ {
			id := fmt.Sprintf("smp-%s-%03d", e.region, i)
			steps := []record.Event{
				s.ev(id, e.region, record.Collected, e.edge, "", t),
				s.ev(id, e.region, record.Transferred, e.edge, "ch-zrh-1", t+1),
				s.ev(id, e.region, record.Stored, "ch-zrh-1", "", t+2),
				s.ev(id, e.region, record.Analysed, "ch-zrh-1", "", t+3),
			}
			if violate && i == 0 && e.region == "UK" {
				steps[1] = s.ev(id, e.region, record.Analysed, e.edge, "", t+1) // no transfer logged
			}
			if violate && i == 0 && e.region == "EU" {
				steps = append(steps, s.ev(id, e.region, record.Analysed, "us-ash-1", "", t+4))
			}
			steps = append(steps,
				s.ev(id, e.region, record.Deleted, "ch-zrh-1", "", t+5),
				s.ev(id, e.region, record.Deleted, e.edge, "", t+6))
			out = append(out, steps...)
			t += 7
		}
	}
	return out
}
