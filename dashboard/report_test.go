package dashboard

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/custodylog/custody/report"
	"golang.org/x/mod/sumdb/note"
)

// TestReportPage: /report is the regulator's report of the live log, the
// file custody verify report checks: its checkpoint verifies with the log's
// key, it lists every finding the built-in audit kept, each with its
// entry's inclusion proof, and an edited proof no longer verifies.
func TestReportPage(t *testing.T) {
	s := startSite(t, testPolicy(t), true)
	s.add(t, s.workload(6, true)...)
	s.waitCounted(t)
	code, body, h := s.get(t, "/report")
	if code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /report: %d %s", code, h.Get("Content-Type"))
	}
	if csp := h.Get("Content-Security-Policy"); strings.Contains(csp, "script-src") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("the report's CSP allows scripts or more: %q", csp)
	}
	vs := note.VerifierList(s.dash.cfg.Verifier)
	res, err := report.Verify([]byte(body), testOrigin, vs, nil)
	if err != nil {
		t.Fatalf("the live report does not verify: %v", err)
	}
	cp := s.log.Checkpoint()
	if res.Size != cp.Size {
		t.Errorf("report checkpoint size %d, the log's %d", res.Size, cp.Size)
	}
	kept := s.dash.auditor.view(cp.Size).Recent
	if len(kept) == 0 || res.Rows != len(kept) {
		t.Fatalf("report rows %d, the audit kept %d findings (want them all, and some)", res.Rows, len(kept))
	}
	proved := map[uint64]bool{}
	for _, e := range res.Entries {
		proved[e.Index] = true
	}
	for _, f := range kept {
		if !proved[f.Index] {
			t.Errorf("finding %v: its entry has no proof in the report", f)
		}
		if !strings.Contains(body, string(f.Kind)) {
			t.Errorf("the report does not name finding kind %s", f.Kind)
		}
	}
	// The same report for the same checkpoint and audit progress.
	if _, again, _ := s.get(t, "/report"); again != body {
		t.Error("a second GET /report built a different report for the same log state")
	}

	// Tampering: a flipped character in one proof block no longer verifies.
	i := strings.Index(body, `<pre data-custody="proof"`)
	if i < 0 {
		t.Fatal("the report has no proof block")
	}
	j := i + strings.Index(body[i:], "</pre>") - 12 // the middle of the last hash line
	c := byte('A')
	if body[j] == 'A' {
		c = 'B'
	}
	edited := body[:j] + string(c) + body[j+1:]
	if _, err := report.Verify([]byte(edited), testOrigin, vs, nil); err == nil {
		t.Fatal("a report with an edited proof hash verified")
	}
}

// TestReportPageNeedsLogKey: without the log's key the dashboard serves no
// report (it could not name the key), and says what to run instead.
func TestReportPageNeedsLogKey(t *testing.T) {
	s := startSite(t, nil, false)
	s.add(t, s.workload(1, false)...)
	d, err := New(Config{Log: s.log, Stats: s.stats, Verifier: s.dash.cfg.Verifier})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	d.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/report", nil))
	if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "custody audit --report") {
		t.Fatalf("GET /report without a log key: %d\n%s", rec.Code, rec.Body.String())
	}
}
