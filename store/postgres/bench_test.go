package postgres

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/store/postgres/pgtest"
	"github.com/custodylog/custody/store/storetest"
)

var prefill = flag.Int("prefill", 0, "entries the log holds before BenchmarkAppend measures (the other benchmarks use at least 100000)")

// bench keeps the benchmarks' stores, each in a schema of its own, across
// the runs of a benchmark (the harness is store/sqlite's too, so that the
// two backends' figures are comparable). TestMain drops the schemas.
var bench = storetest.NewBench(func(b *testing.B) (store.Store, func()) {
	ctx := context.Background()
	dsn, drop, err := pgtest.NewSchema(ctx, pgtest.Server())
	if err != nil {
		pgtest.Unavailable(b, err)
	}
	s, err := Open(ctx, dsn)
	if err != nil {
		drop(ctx)
		b.Fatal(err)
	}
	return s, func() {
		s.Close()
		if err := drop(context.Background()); err != nil {
			fmt.Fprintf(os.Stderr, "postgres benchmarks: %v\n", err)
		}
	}
})

// TestMain keeps the lookup indexes of the stores the tests open with the
// default options (in the user's cache directory) in a temporary
// directory, removed at the end.
func TestMain(m *testing.M) {
	cache, err := os.MkdirTemp("", "custody-postgres-test-cache-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	os.Setenv("XDG_CACHE_HOME", cache)
	code := m.Run()
	bench.Close()
	os.RemoveAll(cache)
	os.Exit(code)
}

// BenchmarkAppend appends batches of 1024 entries of about 300 bytes, with
// their tiles and checkpoint, each one a durable commit (as
// store/sqlite's BenchmarkAppend does).
func BenchmarkAppend(b *testing.B) { bench.Append(b, *prefill, 1024) }

// BenchmarkAppend256 is BenchmarkAppend with batches of 256 entries.
func BenchmarkAppend256(b *testing.B) { bench.Append(b, *prefill, 256) }

// BenchmarkByIdentity looks up 1024 identities, half of them in the log.
func BenchmarkByIdentity(b *testing.B) { bench.ByIdentity(b, *prefill) }

// BenchmarkByLeafHash looks up the leaf hash of one entry.
func BenchmarkByLeafHash(b *testing.B) { bench.ByLeafHash(b, *prefill) }

// BenchmarkSample looks up the 8 entries of one sample.
func BenchmarkSample(b *testing.B) { bench.Sample(b, *prefill) }

// BenchmarkEntriesBundle reads the 256 entries of one entry bundle.
func BenchmarkEntriesBundle(b *testing.B) { bench.EntriesBundle(b, *prefill) }
