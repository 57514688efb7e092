package audit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/custodylog/custody/internal/benchcpu"
	"github.com/custodylog/custody/internal/sitetest"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/verify"
)

// auditBenchBatch is how many events one attestation of the signed
// benchmark log covers (a site's batch).
const auditBenchBatch = 1000

// auditBenchSite is the one site of the signed benchmark log; it speaks
// for every location of testdata/policy.yaml.
func auditBenchSite(tb testing.TB) (sitetest.Key, *Policy) {
	k := sitetest.NewKey(tb, "dc", 7)
	b, err := os.ReadFile(filepath.Join("..", "testdata", "policy.yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	b = append(b, fmt.Sprintf("sites:\n  dc:\n    locations: [us-ash-1, de-fra-1, uk-lon-1, sg-sin-1, ch-zrh-1, ru-mow-1]\n    keys:\n      - {key: %s, from: 2026-01-01T00:00:00Z}\n", k.VKey)...)
	p, err := ParsePolicy(b)
	if err != nil {
		tb.Fatal(err)
	}
	return k, p
}

// auditBenchSignedDir is auditBenchDir for the benchmark log with every
// auditBenchBatch events followed by the site's attestation of them
// (signed at the last one's logged time).
func auditBenchSignedDir(tb testing.TB, n int) (string, uint64) {
	tb.Helper()
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("custody-audit-bench-signed-%d-v%d", n, auditBenchFormat))
	if b, err := os.ReadFile(filepath.Join(dir, "bench-entries")); err == nil {
		if size, err := strconv.ParseUint(string(b), 10, 64); err == nil {
			return dir, size
		}
	}
	k, _ := auditBenchSite(tb)
	signer, _ := auditBenchKey(tb)
	tmp, err := os.MkdirTemp(os.TempDir(), "custody-audit-bench-tmp-")
	if err != nil {
		tb.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	_, size, err := writeTilesLog(tmp, auditBenchOrigin, signer, func(emit func([]byte)) {
		var batch []record.Event
		flush := func() {
			if len(batch) > 0 {
				emit(sitetest.Sign(tb, k, auditBenchOrigin, batch[len(batch)-1].Logged, batch))
				batch = batch[:0]
			}
		}
		auditBenchEvents(n, func(_ int, ev record.Event) {
			emit(ev.Canonical())
			batch = append(batch, ev)
			if len(batch) == auditBenchBatch {
				flush()
			}
		})
		flush()
	})
	if err != nil {
		tb.Fatal(err)
	}
	os.WriteFile(filepath.Join(tmp, "bench-entries"), []byte(strconv.FormatUint(size, 10)), 0o644)
	os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		tb.Fatal(err)
	}
	return dir, size
}

// BenchmarkAuditSites measures the audit of the benchmark log of
// -audit-entries events without site signatures (testdata/policy.yaml)
// and with every event signed (one attestation per 1000 events, a policy
// with one site for every location): events/s, CPU time per event (all
// cores: the audit decodes on every core), and the bytes of the entry
// bundles per event.
//
//	go test ./audit -run '^$' -bench AuditSites -benchtime 3x -count 3
func BenchmarkAuditSites(b *testing.B) {
	n := *auditBenchEntries
	plain, err := LoadPolicy(filepath.Join("..", "testdata", "policy.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	_, signedPolicy := auditBenchSite(b)
	_, vkey := auditBenchKey(b)
	vs := mustVerifiers(b, vkey)
	for _, signed := range []bool{false, true} {
		name := "unsigned"
		if signed {
			name = "signed"
		}
		b.Run(name, func(b *testing.B) {
			dir, _ := auditBenchDir(b, n)
			size, pol := uint64(n), plain
			if signed {
				dir, size = auditBenchSignedDir(b, n)
				pol = signedPolicy
			}
			b.ResetTimer()
			cpu := benchcpu.Now()
			for i := 0; i < b.N; i++ {
				c := verify.NewClient(verify.NewDirSource(dir), auditBenchOrigin, vs, nil)
				rep, _, err := Audit(context.Background(), c, AuditOptions{Policy: pol})
				if err != nil {
					b.Fatal(err)
				}
				if rep.Size != size || len(rep.Findings) != 0 || signed && (rep.Sites == nil || rep.Sites.Signed != uint64(n)) {
					b.Fatalf("audit: size %d, %d findings (first %v), sites %+v", rep.Size, len(rep.Findings), rep.Findings[:min(1, len(rep.Findings))], rep.Sites)
				}
				runtime.KeepAlive(rep)
			}
			b.StopTimer()
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64((benchcpu.Now()-cpu).Nanoseconds())/float64(n)/float64(b.N), "cpu-ns/event")
			b.ReportMetric(float64(dirBytes(b, filepath.Join(dir, "tile", "entries")))/float64(n), "bundle-B/event")
		})
	}
}

// dirBytes is the size of the files under dir.
func dirBytes(tb testing.TB, dir string) int64 {
	var total int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			total += fi.Size()
		}
		return nil
	})
	return total
}
