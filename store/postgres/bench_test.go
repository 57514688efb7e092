package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/store/postgres/pgtest"
)

var prefill = flag.Int("prefill", 0, "entries the log holds before BenchmarkAppend measures (the other benchmarks use at least 100000)")

// The helpers below are those of store/sqlite/bench_test.go, so that the
// two backends' figures are comparable.

// benchLog builds realistic batches: entries of about 300 bytes, the tiles
// they change and a checkpoint. Hashes other than leaf hashes and
// identities are fake; the store does not check them.
type benchLog struct {
	size uint64
	prev *store.Checkpoint
}

func newBenchLog() *benchLog { return &benchLog{} }

// genesis returns the size-0 batch and records it: the caller must append it.
func (g *benchLog) genesis() store.Batch {
	b := g.batch(0, "genesis")
	g.apply(b)
	return b
}

func (g *benchLog) batch(n int, tag string) store.Batch {
	b := store.Batch{
		Prev:       g.prev,
		Entries:    make([]store.Entry, n),
		Tiles:      benchTiles(g.size, g.size+uint64(n)),
		Checkpoint: benchCheckpoint(g.size+uint64(n), tag),
	}
	for i := range b.Entries {
		b.Entries[i] = benchEntry(g.size+uint64(i), tag)
	}
	return b
}

func (g *benchLog) apply(b store.Batch) {
	c := b.Checkpoint
	g.prev = &c
	g.size = c.Size
}

// benchSample is the sample of entry index: 8 entries a sample, with
// identifiers in random order (as hashes of the sample number), so that an
// index on them gets no help from the order of appends.
func benchSample(index uint64) string {
	h := sha256.Sum256(binary.BigEndian.AppendUint64([]byte("sample\x00"), index/8))
	return fmt.Sprintf("S-%x", h[:8])
}

func benchEntry(index uint64, tag string) store.Entry {
	sample := benchSample(index)
	data := fmt.Appendf(make([]byte, 0, 320),
		`{"v":1,"index":%d,"sample":%q,"tag":%q,"kind":"transfer","from":"freezer-12/rack-3/box-7","to":"sequencing-lab-2","by":"operator-%04d","at":"2026-01-02T03:04:05.678Z","seal":"intact","temp_c":-80.5,"note":"`,
		index, sample, tag, index%997)
	for len(data) < 298 {
		data = append(data, 'a'+byte(len(data)%26))
	}
	data = append(data, `"}`...)
	return store.Entry{
		Index:    index,
		Identity: sha256.Sum256(append([]byte("identity\x00"), data...)),
		LeafHash: sha256.Sum256(append([]byte{0}, data...)),
		Sample:   sample,
		Data:     data,
	}
}

func benchCheckpoint(size uint64, tag string) store.Checkpoint {
	root := sha256.Sum256(fmt.Appendf(nil, "root %d %s", size, tag))
	sig := make([]byte, 76) // a cosignature; a log signature is 68 bytes
	note := fmt.Sprintf("custody.example/bench\n%d\n%s\n\n— custody.example/bench %s\n— witness.example/w1 %s\n",
		size, base64.StdEncoding.EncodeToString(root[:]), base64.StdEncoding.EncodeToString(sig[:68]), base64.StdEncoding.EncodeToString(sig))
	return store.Checkpoint{Size: size, Root: root, Note: []byte(note)}
}

// benchTiles returns the tiles (height 8) that change when the tree grows
// from oldSize to newSize, with their full new data.
func benchTiles(oldSize, newSize uint64) []store.Tile {
	var tiles []store.Tile
	for level := uint8(0); level < 8; level++ {
		shift := 8 * uint(level)
		oldN, newN := oldSize>>shift, newSize>>shift
		if newN == oldN {
			break
		}
		for index := oldN / 256; index*256 < newN; index++ {
			end := min(newN, (index+1)*256)
			data := make([]byte, 0, (end-index*256)*store.HashSize)
			for n := index * 256; n < end; n++ {
				var b [9]byte
				b[0] = level
				binary.BigEndian.PutUint64(b[1:], n)
				h := sha256.Sum256(b[:])
				data = append(data, h[:]...)
			}
			tiles = append(tiles, store.Tile{Level: level, Index: index, Data: data})
		}
	}
	return tiles
}

// benchState is a store kept across the runs of a benchmark (the testing
// package calls a benchmark several times), so that a large prefill is
// paid once. TestMain drops their schemas.
type benchState struct {
	s    *Store
	g    *benchLog
	drop func(context.Context) error
}

var benchStates = make(map[int]*benchState)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, st := range benchStates {
		st.s.Close()
		if err := st.drop(context.Background()); err != nil {
			fmt.Fprintf(os.Stderr, "postgres benchmarks: %v\n", err)
		}
	}
	os.Exit(code)
}

// benchStore returns the shared store that held n entries (with tag
// "prefill") when it was created, in a schema of its own.
func benchStore(b *testing.B, n int) (*Store, *benchLog) {
	if st, ok := benchStates[n]; ok {
		return st.s, st.g
	}
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
	g := newBenchLog()
	benchStates[n] = &benchState{s: s, g: g, drop: drop}
	if err := s.Append(ctx, g.genesis()); err != nil {
		b.Fatal(err)
	}
	for g.size < uint64(n) {
		batch := g.batch(min(8192, n-int(g.size)), "prefill")
		if err := s.Append(ctx, batch); err != nil {
			b.Fatal(err)
		}
		g.apply(batch)
	}
	return s, g
}

// BenchmarkAppend appends batches of 1024 entries of about 300 bytes, with
// their tiles and checkpoint, each one a durable commit (as
// store/sqlite's BenchmarkAppend does).
func BenchmarkAppend(b *testing.B) { benchmarkAppend(b, 1024) }

// BenchmarkAppend256 is BenchmarkAppend with batches of 256 entries.
func BenchmarkAppend256(b *testing.B) { benchmarkAppend(b, 256) }

func benchmarkAppend(b *testing.B, batchSize int) {
	s, g := benchStore(b, *prefill)
	ctx := context.Background()
	latencies := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		batch := g.batch(batchSize, "bench")
		b.StartTimer()
		start := time.Now()
		if err := s.Append(ctx, batch); err != nil {
			b.Fatal(err)
		}
		latencies = append(latencies, time.Since(start))
		g.apply(batch)
	}
	b.ReportMetric(float64(b.N*batchSize)/b.Elapsed().Seconds(), "entries/s")
	b.ReportMetric(float64(g.size), "log-size")
	slices.Sort(latencies)
	b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(latencies[len(latencies)-1].Microseconds())/1000, "max-ms")
}

// BenchmarkByIdentity looks up 1024 identities, half of them in the log.
func BenchmarkByIdentity(b *testing.B) {
	const lookups = 1024
	n := max(*prefill, 100_000)
	s, _ := benchStore(b, n)
	ctx := context.Background()
	ids := make([]store.Hash, lookups)
	for i := range ids {
		idx := uint64(i) * 7919 % uint64(n)
		tag := "prefill"
		if i%2 == 1 {
			tag = "absent"
		}
		ids[i] = benchEntry(idx, tag).Identity
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		found, err := s.ByIdentity(ctx, ids)
		if err != nil {
			b.Fatal(err)
		}
		if len(found) != lookups/2 {
			b.Fatalf("ByIdentity found %d identities, want %d", len(found), lookups/2)
		}
	}
	b.ReportMetric(float64(b.N*lookups)/b.Elapsed().Seconds(), "ids/s")
}

// BenchmarkByLeafHash looks up the leaf hash of one entry.
func BenchmarkByLeafHash(b *testing.B) {
	n := max(*prefill, 100_000)
	s, _ := benchStore(b, n)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		idx := uint64(i) * 7919 % uint64(n)
		got, err := s.ByLeafHash(ctx, benchEntry(idx, "prefill").LeafHash)
		if err != nil || got != idx {
			b.Fatalf("ByLeafHash(leaf hash of entry %d) = %d, %v", idx, got, err)
		}
	}
}

// BenchmarkSample looks up the 8 entries of one sample.
func BenchmarkSample(b *testing.B) {
	n := max(*prefill, 100_000)
	s, _ := benchStore(b, n)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		idx := uint64(i) * 7919 % uint64(n) / 8 * 8
		got, err := s.Sample(ctx, benchSample(idx))
		if err != nil || len(got) != 8 || got[0] != idx {
			b.Fatalf("Sample(sample of entry %d) = %v, %v", idx, got, err)
		}
	}
}

// BenchmarkEntriesBundle reads the 256 entries of one entry bundle.
func BenchmarkEntriesBundle(b *testing.B) {
	n := max(*prefill, 100_000)
	s, _ := benchStore(b, n)
	ctx := context.Background()
	bundles := uint64(n) / 256
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := uint64(i) * 7919 % bundles * 256
		es, err := s.Entries(ctx, start, start+256)
		if err != nil || len(es) != 256 {
			b.Fatalf("Entries(%d, %d) = %d entries, %v", start, start+256, len(es), err)
		}
	}
}
