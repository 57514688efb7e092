//go:build reportbench

package report_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/cmd"
	"github.com/custodylog/custody/demo"
	"github.com/custodylog/custody/report"
	"github.com/custodylog/custody/server"
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

// BenchmarkReport1M measures report generation at 1 M entries: it builds
// a 1 M-entry log under $TMPDIR with custody prefill (CUSTODY_BENCH_REPORT
// sets another size), serves it on 127.0.0.1, audits it without state
// (audit.Auditor over HTTP, as custody audit --no-state) and times the
// report's generation alone (report.WriteAudit, from the audit's client),
// for testdata/policy.yaml (about
// 600,000 unknown-location findings: the report lists DefaultMaxProofs of
// them, each with its proof, the worst case) and testdata/bench-policy.yaml
// (clean). It reports the seconds of each and the report's bytes, times
// custody audit --report once end to end, then deletes the log. Not for CI (minutes of work and ~0.5 GB of disk): it
// builds only with the tag reportbench (it links all of custody) and runs
// only with CUSTODY_BENCH_REPORT set:
//
//	CUSTODY_BENCH_REPORT=1000000 go test -tags reportbench ./report -run '^$' -bench Report1M -benchtime 1x -v
func BenchmarkReport1M(b *testing.B) {
	n := os.Getenv("CUSTODY_BENCH_REPORT")
	if n == "" {
		b.Skip("set CUSTODY_BENCH_REPORT=1000000 to build a log of that many entries and time its report")
	}
	if _, err := strconv.ParseUint(n, 10, 64); err != nil {
		b.Fatalf("CUSTODY_BENCH_REPORT=%q: %v", n, err)
	}
	dir := filepath.Join(b.TempDir(), "log")
	custody := func(args ...string) string {
		b.Helper()
		var out, errb bytes.Buffer
		if code := cmd.Main(args, strings.NewReader(""), &out, &errb); code > 1 {
			b.Fatalf("custody %v: exit %d\n%s", args, code, errb.String())
		}
		return out.String()
	}
	custody("init", "--dir", dir, "--origin", "bench.example/report")
	start := time.Now()
	custody("prefill", "--dir", dir, "--events", n)
	b.Logf("prefill of %s events: %.1f s", n, time.Since(start).Seconds())
	tokens := filepath.Join(dir, "tokens.txt")
	if _, err := demo.WriteToken(tokens); err != nil {
		b.Fatal(err)
	}
	srv, addr, err := demo.Start(context.Background(), func(ctx context.Context, ready chan<- string) error {
		s, err := server.Open(ctx, server.Options{Dir: dir, TokenFile: tokens}, server.Config{Listen: "127.0.0.1:0", Ready: func(a string) { ready <- a }})
		if err != nil {
			return err
		}
		return s.Run(ctx)
	})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Stop(nil)
	base := "http://" + addr
	pubFile := filepath.Join(dir, "log.pub")
	vkey, err := verify.LoadVerifierKey(pubFile)
	if err != nil {
		b.Fatal(err)
	}
	v, err := verify.NewVerifier(vkey)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, pol := range []string{"policy.yaml", "bench-policy.yaml"} {
		policyFile := filepath.Join("..", "testdata", pol)
		policy, err := audit.LoadPolicy(policyFile)
		if err != nil {
			b.Fatal(err)
		}
		// The audit, as custody audit --no-state runs it, then the report
		// from the same client: the report's time alone.
		cl := verify.NewClient(verify.NewHTTPSource(base, &http.Client{}), v.Name(), note.VerifierList(v), nil)
		t0 := time.Now()
		rep, err := (&audit.Auditor{Client: cl, Policy: policy, Memory: -1}).Run(ctx)
		if err != nil {
			b.Fatal(err)
		}
		auditTime := time.Since(t0)
		path := filepath.Join(b.TempDir(), "report.html")
		t0 = time.Now()
		if err := report.WriteAudit(ctx, path, cl, pubFile, rep, nil, policyFile, nil); err != nil {
			b.Fatal(err)
		}
		reportTime := time.Since(t0)
		fi, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("%s: %d findings; audit %.2f s; report %.2f s, %d bytes", pol, len(rep.Findings), auditTime.Seconds(), reportTime.Seconds(), fi.Size())
		name := map[string]string{"policy.yaml": "findings", "bench-policy.yaml": "clean"}[pol]
		b.ReportMetric(auditTime.Seconds(), name+"-audit-s")
		b.ReportMetric(reportTime.Seconds(), name+"-report-s")
		b.ReportMetric(float64(fi.Size()), name+"-report-bytes")
	}
	// End to end: custody audit --report (the findings policy).
	path := filepath.Join(b.TempDir(), "cli.html")
	t0 := time.Now()
	custody("audit", "--log", base, "--key", pubFile, "--policy", filepath.Join("..", "testdata", "policy.yaml"), "--no-state", "--memory", "0", "--report", path)
	b.Logf("custody audit --no-state --report (findings): %.2f s", time.Since(t0).Seconds())
	fmt.Fprintln(os.Stderr, "deleting", dir)
}
