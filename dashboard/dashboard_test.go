package dashboard

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/store/sqlite/sqlitetest"
	"github.com/custodylog/custody/verify"
)

// TestChartCountsEqualLog checks that every chart cell shows the log's
// count for its region and data centre, that the cells the policy allows
// are drawn as allowed, and that events outside the policy are drawn as
// forbidden.
func TestChartCountsEqualLog(t *testing.T) {
	s := newSite(t, testPolicy(t))
	evs := s.workload(5, true)
	s.add(t, evs...)

	want := map[string]uint64{}
	for _, ev := range evs {
		want[ev.Region+"/"+ev.Location]++
	}
	status, body, h := s.get(t, "/")
	if status != http.StatusOK {
		t.Fatalf("GET / = %d:\n%s", status, body)
	}
	if ct := h.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("Content-Security-Policy = %q, want a strict one", csp)
	}
	cells := chartCells(t, body)
	p := testPolicy(t)
	if got, wantN := len(cells), len(p.Regions)*len(p.Locations); got != wantN {
		t.Fatalf("chart has %d cells, want %d (every region × data centre of the policy)", got, wantN)
	}
	var sum uint64
	for key, c := range cells {
		if c.count != want[key] {
			t.Errorf("cell %s shows %d events, the log has %d", key, c.count, want[key])
		}
		sum += c.count
		region, loc, _ := strings.Cut(key, "/")
		allowed := false
		for _, a := range p.Regions[region].Allowed {
			allowed = allowed || a == loc
		}
		wantClass := map[bool]string{true: "allowed", false: "empty"}[allowed]
		if !allowed && c.count > 0 {
			wantClass = "forbidden"
		}
		if c.class != wantClass {
			t.Errorf("cell %s has class %q, want %q", key, c.class, wantClass)
		}
	}
	if sum != uint64(len(evs)) || sum != s.log.Checkpoint().Size {
		t.Errorf("chart totals %d events; appended %d, tree size %d", sum, len(evs), s.log.Checkpoint().Size)
	}
	if cells["EU/us-ash-1"].class != "forbidden" {
		t.Errorf("the EU sample analysed at us-ash-1 is not drawn as forbidden: %+v", cells["EU/us-ash-1"])
	}
	// The same counts in the accessible table.
	for key, n := range want {
		region, loc, _ := strings.Cut(key, "/")
		cellTD := regexp.MustCompile(`<td class="[a-z]+" data-region="` + region + `" data-location="` + loc + `" data-count="(\d+)">`)
		m := cellTD.FindStringSubmatch(body)
		if m == nil || m[1] != uitoa(n) {
			t.Errorf("table cell %s = %v, want %d", key, m, n)
		}
	}
	// The checkpoint panel: size, a verified log signature and a verified
	// cosignature with its time.
	if !strings.Contains(body, `data-testid="cp-size" data-size="`+uitoa(s.log.Checkpoint().Size)+`"`) {
		t.Errorf("checkpoint panel does not show size %d", s.log.Checkpoint().Size)
	}
	for _, role := range []string{"log", "witness"} {
		row := regexp.MustCompile(`(?s)<tr data-role="` + role + `">.*?</tr>`).FindString(body)
		if !strings.Contains(row, "✓</span> verified") {
			t.Errorf("no verified %s signature row:\n%s", role, row)
		}
		if role == "witness" && !strings.Contains(row, " UTC</td>") {
			t.Errorf("the cosignature row shows no UTC time:\n%s", row)
		}
	}
}

func uitoa(n uint64) string { return strconv.FormatUint(n, 10) }

// checkProofAttrs checks a proof as the page gives it (hex attributes) with
// verify.CheckInclusion.
func checkProofAttrs(leafHex, index, size, rootHex, proof string) error {
	leaf, err := hex32(leafHex)
	if err != nil {
		return err
	}
	root, err := hex32(rootHex)
	if err != nil {
		return err
	}
	i, _ := strconv.ParseUint(index, 10, 64)
	n, _ := strconv.ParseUint(size, 10, 64)
	var hs [][32]byte
	for _, f := range strings.Fields(proof) {
		h, err := hex32(f)
		if err != nil {
			return err
		}
		hs = append(hs, h)
	}
	return verify.CheckInclusion(i, n, leaf, hs, root)
}

func hex32(s string) ([32]byte, error) {
	var h [32]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return h, fmt.Errorf("bad hash %q", s)
	}
	return [32]byte(b), nil
}

// TestRecentEvents checks the newest events are listed newest first, with
// the events outside the policy marked.
func TestRecentEvents(t *testing.T) {
	s := newSite(t, testPolicy(t))
	evs := s.workload(10, true)
	s.add(t, evs...)
	_, body, _ := s.get(t, "/")
	rows := regexp.MustCompile(`<tr data-index="(\d+)"( class="outside")?>`).FindAllStringSubmatch(body, -1)
	if len(rows) != DefaultRecent {
		t.Fatalf("%d recent rows, want %d", len(rows), DefaultRecent)
	}
	size := len(evs)
	for i, r := range rows {
		if want := uitoa(uint64(size - 1 - i)); r[1] != want {
			t.Fatalf("recent row %d is entry %s, want %s (newest first)", i, r[1], want)
		}
	}
	// The last events are ROW samples, all inside the policy.
	for _, r := range rows {
		if r[2] != "" {
			t.Errorf("entry %s is marked outside the policy", r[1])
		}
	}
}

// TestSampleChain checks the lookup shows a sample's whole chain in log
// order, with every inclusion proof verified against the current
// checkpoint, and the policy findings of the sample.
func TestSampleChain(t *testing.T) {
	s := newSite(t, testPolicy(t))
	evs := s.workload(4, true)
	s.add(t, evs...)

	status, body, _ := s.get(t, "/sample?id=smp-EU-000")
	if status != http.StatusOK {
		t.Fatalf("GET /sample = %d:\n%s", status, body)
	}
	var want []record.Event
	for _, ev := range evs {
		if ev.Sample == "smp-EU-000" {
			want = append(want, ev)
		}
	}
	links := regexp.MustCompile(`<li class="link( outside)?" data-index="(\d+)" data-action="([a-z]+)" data-location="([a-z0-9-]+)" data-to="([a-z0-9-]*)" data-included="(true|false)">`).FindAllStringSubmatch(body, -1)
	if len(links) != len(want) {
		t.Fatalf("chain has %d events, want %d", len(links), len(want))
	}
	for i, l := range links {
		w := want[i]
		if l[3] != string(w.Action) || l[4] != w.Location || l[5] != w.To {
			t.Errorf("chain event %d = %s at %s→%s, want %s at %s→%s", i, l[3], l[4], l[5], w.Action, w.Location, w.To)
		}
		if l[6] != "true" {
			t.Errorf("chain event %d: inclusion not verified", i)
		}
		if (l[1] != "") != (w.Location == "us-ash-1") {
			t.Errorf("chain event %d at %s: outside mark %q", i, w.Location, l[1])
		}
	}
	if !strings.Contains(body, `data-all-included="true"`) {
		t.Error("summary does not say every proof verified")
	}
	if !strings.Contains(body, `<li class="bad" data-kind="reroute">`) {
		t.Error("the reroute to us-ash-1 is not shown as a finding")
	}
	// Each proof the page gives checks out with the verifier package too.
	proofs := regexp.MustCompile(`data-leaf="([0-9a-f]{64})" data-index="(\d+)" data-size="(\d+)" data-root="([0-9a-f]{64})" data-proof="([0-9a-f ]*)"`).FindAllStringSubmatch(body, -1)
	if len(proofs) != len(want) {
		t.Fatalf("%d proofs on the page, want %d", len(proofs), len(want))
	}
	for _, p := range proofs {
		if err := checkProofAttrs(p[1], p[2], p[3], p[4], p[5]); err != nil {
			t.Errorf("proof on the page: %v", err)
		}
	}
}

// TestSampleTamper edits an entry underneath the running log: the lookup
// must report that its proof no longer leads to the checkpoint's root.
func TestSampleTamper(t *testing.T) {
	s := newSite(t, testPolicy(t))
	evs := s.workload(2, false)
	s.add(t, evs...)
	// Entry 2 is "stored at ch-zrh-1" of smp-US-000: make it say us-ash-1.
	var data []byte
	sqlitetest.QueryRow(t, s.dbPath, "SELECT data FROM entries WHERE idx = 2", nil, &data)
	forged := strings.Replace(string(data), "ch-zrh-1", "de-fra-1", 1)
	if forged == string(data) {
		t.Fatalf("entry 2 has no ch-zrh-1 to forge: %s", data)
	}
	sqlitetest.Exec(t, s.dbPath, "UPDATE entries SET data = ? WHERE idx = 2", []byte(forged))
	_, body, _ := s.get(t, "/sample?id=smp-US-000")
	if !strings.Contains(body, `data-index="2" data-action="stored" data-location="de-fra-1" data-to="" data-included="false"`) {
		t.Errorf("the forged entry is not shown as failing its proof:\n%s", body)
	}
	if !strings.Contains(body, `data-all-included="false"`) || !strings.Contains(body, "proof does not match root hash") {
		t.Error("the page does not say a proof failed and why")
	}
	// The sample index's proof carries the forged entry too: the server
	// does not claim the chain complete.
	if strings.Contains(body, "Complete as of checkpoint") || !strings.Contains(body, "Completeness not proven") {
		t.Error("the page claims the chain complete with a forged entry, or does not say why not")
	}
	// The other events still verify.
	if n := strings.Count(body, `data-included="true"`); n != 5 {
		t.Errorf("%d events verified, want the other 5", n)
	}
}

// TestFindingsPanel checks the built-in audit reports exactly what
// audit.Engine reports for the same events.
func TestFindingsPanel(t *testing.T) {
	p := testPolicy(t)
	s := newSite(t, p)
	evs := s.workload(3, true)
	s.add(t, evs...)

	eng := audit.NewEngine(p)
	var want []audit.Finding
	for i, ev := range evs {
		ev.Logged = ev.Time // not late: same as the log, which logs them at once
		for _, f := range eng.Add(uint64(i), ev) {
			if f.Kind != audit.KindLate {
				want = append(want, f)
			}
		}
	}
	if len(want) < 2 {
		t.Fatalf("the workload has %d findings; the test needs the injected ones", len(want))
	}
	_, body, _ := s.get(t, "/")
	if !strings.Contains(body, `data-total="`+uitoa(uint64(len(want)))+`"`) {
		t.Errorf("panel does not total %d findings:\n%s", len(want), regexp.MustCompile(`data-testid="audit-progress"[^>]*`).FindString(body))
	}
	for _, f := range want {
		row := `<tr data-index="` + uitoa(f.Index) + `" data-sample="` + f.Sample + `" data-kind="` + string(f.Kind) + `">`
		if !strings.Contains(body, row) {
			t.Errorf("finding %s not in the panel", f)
		}
	}
	// Without a policy, no panel.
	s2 := newSite(t, nil)
	s2.add(t, evs[:3]...)
	_, body2, _ := s2.get(t, "/")
	if strings.Contains(body2, `id="findings"`) || !strings.Contains(body2, "no routing policy") {
		t.Error("a server without a policy shows a findings panel or no hint")
	}
	cells := chartCells(t, body2)
	for k, c := range cells {
		if c.class != "plain" {
			t.Errorf("without a policy, cell %s has class %q", k, c.class)
		}
	}
}

// TestBadRequests checks bad lookups and methods get clear answers.
func TestBadRequests(t *testing.T) {
	s := newSite(t, nil)
	s.add(t, s.ev("smp-1", "EU", record.Collected, "de-fra-1", "", 0))
	for _, tt := range []struct {
		path   string
		status int
		want   string
	}{
		{"/sample?id=bad%20id", 400, "not a valid sample ID"},
		{"/sample?id=nope", 404, "No events of sample &#34;nope&#34;"},
		{"/sample", 200, "Enter a sample ID"},
		{"/nowhere", 404, "There is no page at /nowhere."},
		{"/static/style.css", 200, "--ink"},
		{"/static/verify.js", 200, "rootFromInclusion"},
	} {
		status, body, _ := s.get(t, tt.path)
		if status != tt.status || !strings.Contains(body, tt.want) {
			t.Errorf("GET %s = %d, want %d with %q:\n%.400s", tt.path, status, tt.status, tt.want, body)
		}
	}
	resp, err := http.Post(s.srv.URL+"/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST / = %d, want 405", resp.StatusCode)
	}
	// The API is still the API.
	status, body, _ := s.get(t, "/checkpoint")
	if status != 200 || !strings.HasPrefix(body, testOrigin+"\n1\n") {
		t.Errorf("GET /checkpoint = %d %q", status, body)
	}
}

// TestNum checks the thousands separators.
func TestNum(t *testing.T) {
	for n, want := range map[uint64]string{0: "0", 999: "999", 1000: "1,000", 123456: "123,456", 1234567: "1,234,567", 18446744073709551615: "18,446,744,073,709,551,615"} {
		if got := num(n); got != want {
			t.Errorf("num(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestNewStartsNothing: New starts no goroutine, even with a policy (the
// audit runs in Run), and Run returns once its context is done.
func TestNewStartsNothing(t *testing.T) {
	s := startSite(t, testPolicy(t), false)
	s.add(t, s.workload(1, false)...)
	before := runtime.NumGoroutine()
	d, err := New(Config{Log: s.log, Stats: s.stats, Verifier: s.dash.cfg.Verifier, Policy: testPolicy(t)})
	if err != nil {
		t.Fatal(err)
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Fatalf("New started %d goroutines", after-before)
	}
	if next, _, _ := d.auditor.progress(); next != 0 {
		t.Fatalf("the audit ran without Run: %d entries audited", next)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	size := s.log.Checkpoint().Size
	for deadline := time.Now().Add(30 * time.Second); !d.auditor.view(size).Complete; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Run did not audit the log within 30 s")
		}
	}
	cancel()
	<-done
}
