package fsck_test

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"testing"

	"github.com/custodylog/custody/fsck"
	"github.com/custodylog/custody/loadgen"
	"github.com/custodylog/custody/log"
	"github.com/custodylog/custody/store/sqlite"
	"golang.org/x/mod/sumdb/note"
)

// benchEntries is the size of the log BenchmarkCheck checks: large enough
// that the per-entry costs dominate, small enough to build in seconds.
const benchEntries = 1 << 20

// BenchmarkCheck checks a SQLite log of benchEntries prefilled entries
// (built under $TMPDIR before the timer starts, removed afterwards) and
// reports entries/s and the heap in use at the end. Benchmarks do not run
// in the normal test run; run it with
//
//	go test -run '^$' -bench Check -benchtime 1x ./fsck/
func BenchmarkCheck(b *testing.B) {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "custody.db")
	st, err := sqlite.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	sk, vk, _ := note.GenerateKey(rand.Reader, "fsck.bench/log")
	s, _ := note.NewSigner(sk)
	v, _ := note.NewVerifier(vk)
	if err := log.Create(ctx, st, s); err != nil {
		b.Fatal(err)
	}
	if _, err := loadgen.Prefill(ctx, st, s, v, benchEntries, loadgen.PrefillOptions{Batch: 16384}); err != nil {
		b.Fatal(err)
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		st, err := sqlite.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		rep, err := fsck.Check(ctx, st, v, fsck.Options{})
		st.Close()
		if err != nil {
			b.Fatal(err)
		}
		if len(rep.Problems) != 0 || rep.Entries != benchEntries {
			b.Fatalf("Check of a sound log of %d entries: %d entries, problems %+v", benchEntries, rep.Entries, rep.Problems)
		}
	}
	b.ReportMetric(float64(benchEntries)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}
