package sqlite

import (
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/store/storetest"
)

var prefill = flag.Int("prefill", 0, "entries the log holds before BenchmarkAppend measures (the other benchmarks use at least 100000)")

// bench keeps the benchmarks' stores, each in a file of its own temporary
// directory, across the runs of a benchmark. TestMain removes them.
var bench = storetest.NewBench(func(b *testing.B) (store.Store, func()) {
	dir, err := os.MkdirTemp("", "custody-sqlite-bench-")
	if err != nil {
		b.Fatal(err)
	}
	s, err := Open(filepath.Join(dir, "custody.db"))
	if err != nil {
		os.RemoveAll(dir)
		b.Fatal(err)
	}
	return s, func() {
		s.Close()
		os.RemoveAll(dir)
	}
})

func TestMain(m *testing.M) {
	code := m.Run()
	bench.Close()
	os.Exit(code)
}

// BenchmarkAppend appends batches of 1024 entries of about 300 bytes, with
// their tiles and checkpoint, each one a durable commit.
func BenchmarkAppend(b *testing.B) { bench.Append(b, *prefill, 1024) }

// BenchmarkByIdentity looks up 1024 identities, half of them in the log.
func BenchmarkByIdentity(b *testing.B) { bench.ByIdentity(b, *prefill) }

// BenchmarkByLeafHash looks up the leaf hash of one entry.
func BenchmarkByLeafHash(b *testing.B) { bench.ByLeafHash(b, *prefill) }

// BenchmarkSample looks up the 8 entries of one sample.
func BenchmarkSample(b *testing.B) { bench.Sample(b, *prefill) }

// BenchmarkEntriesBundle reads the 256 entries of one entry bundle.
func BenchmarkEntriesBundle(b *testing.B) { bench.EntriesBundle(b, *prefill) }

// BenchmarkOpen opens a second Store on the file of a log of max(-prefill,
// 100000) entries: Open reads every entry's hashes and sample to build the
// in-memory indexes. It reports the entries indexed a second, and the heap
// the indexes take (after a garbage collection) per entry.
func BenchmarkOpen(b *testing.B) {
	st, g := bench.Store(b, max(*prefill, storetest.ReadPrefill))
	s := st.(*Store)
	s.Close() // it owns the on-disk index, which Open below must get
	var before, after runtime.MemStats
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&before)
		b.StartTimer()
		s2, err := Open(s.path)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		if got := s2.idx.indexed.Load(); got != g.Size {
			b.Fatalf("Open indexed %d entries, want %d", got, g.Size)
		}
		if err := s2.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N)*float64(g.Size)/b.Elapsed().Seconds(), "entries/s")
	b.ReportMetric(float64(g.Size), "log-size")
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(g.Size), "heap-B/entry")
}
