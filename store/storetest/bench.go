package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/custodylog/custody/store"
)

// This file is the benchmark harness every backend runs, so that the
// backends' figures are comparable: the same batches, the same lookups, the
// same metrics.

// BenchLog builds realistic batches for benchmarks (and for tests that
// want many entries): entries of about 300 bytes with 8 entries a sample,
// the tiles they change and a checkpoint with a signature and a
// cosignature. Leaf hashes and identities are real SHA-256 of the data;
// tile hashes and roots are not those of a Merkle tree (a store does not
// check them). Everything is a deterministic function of the index and of
// a tag, so batches built with different tags from the same state compete.
// The zero BenchLog is an empty log, before its genesis checkpoint.
type BenchLog struct {
	// Size is the size of the log the next batch extends.
	Size uint64
	// Prev is the latest checkpoint, which the next batch extends (nil
	// before the genesis batch).
	Prev *store.Checkpoint
}

// Genesis returns the batch of the size-0 checkpoint and records it with
// Apply: the caller must append it.
func (g *BenchLog) Genesis() store.Batch {
	b := g.Batch(0, "genesis")
	g.Apply(b)
	return b
}

// Batch returns the batch that extends the log by n entries made with tag
// (see BenchEntry): Prev is g.Prev, Tiles are all the tiles the entries
// change with their full data, Checkpoint is new, of size g.Size+n. It does
// not change g: call Apply once the store accepted the batch.
func (g *BenchLog) Batch(n int, tag string) store.Batch {
	b := store.Batch{
		Prev:       g.Prev,
		Entries:    make([]store.Entry, n),
		Tiles:      tilesFor(g.Size, g.Size+uint64(n)),
		Checkpoint: benchCheckpoint(g.Size+uint64(n), tag),
	}
	for i := range b.Entries {
		b.Entries[i] = BenchEntry(g.Size+uint64(i), tag)
	}
	return b
}

// Apply records that the store accepted b: the next batch extends it.
func (g *BenchLog) Apply(b store.Batch) {
	c := b.Checkpoint
	g.Prev = &c
	g.Size = c.Size
}

// BenchSample returns the sample of the entry at index: 8 consecutive
// entries a sample, with identifiers in random order (as hashes of the
// sample number), so that an index on them gets no help from the order of
// appends.
func BenchSample(index uint64) string {
	h := sha256.Sum256(binary.BigEndian.AppendUint64([]byte("sample\x00"), index/8))
	return fmt.Sprintf("S-%x", h[:8])
}

// BenchEntry returns the entry at index made with tag: about 300 bytes of
// JSON, in sample BenchSample(index). Entries of different tags or indexes
// have different identities and leaf hashes.
func BenchEntry(index uint64, tag string) store.Entry {
	sample := BenchSample(index)
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

// benchCheckpoint returns a checkpoint of the given size made with tag,
// with a note the size of a real one (a signature and a cosignature).
func benchCheckpoint(size uint64, tag string) store.Checkpoint {
	root := sha256.Sum256(fmt.Appendf(nil, "root %d %s", size, tag))
	sig := make([]byte, 76) // a cosignature; a log signature is 68 bytes
	note := fmt.Sprintf("custody.example/bench\n%d\n%s\n\n— custody.example/bench %s\n— witness.example/w1 %s\n",
		size, base64.StdEncoding.EncodeToString(root[:]), base64.StdEncoding.EncodeToString(sig[:68]), base64.StdEncoding.EncodeToString(sig))
	return store.Checkpoint{Size: size, Root: root, Note: []byte(note)}
}

// ReadPrefill is the smallest log the lookup benchmarks of Bench read
// (ByIdentity, ByLeafHash, Sample, EntriesBundle).
const ReadPrefill = 100_000

// Bench runs the store benchmarks on one backend. It keeps one store per
// prefill size across the runs of a benchmark (the testing package calls a
// benchmark function several times), so that a large prefill is paid once:
// the backend's TestMain must call Close after m.Run.
type Bench struct {
	open   func(b *testing.B) (store.Store, func())
	stores map[int]*benchStore
}

type benchStore struct {
	s       store.Store
	g       *BenchLog
	release func()
}

// NewBench returns the benchmarks of the backend open opens. open must
// return a new, empty store and a function that closes it and deletes its
// database (Bench.Close calls it); it may skip or fail b.
func NewBench(open func(b *testing.B) (s store.Store, release func())) *Bench {
	return &Bench{open: open, stores: make(map[int]*benchStore)}
}

// Close releases every store the benchmarks made.
func (h *Bench) Close() {
	for n, st := range h.stores {
		st.release()
		delete(h.stores, n)
	}
}

// Store returns the shared store that held n entries of BenchLog (with tag
// "prefill", after its genesis checkpoint) when it was created, and the
// BenchLog of its current state: batches built from it extend the store.
// It fails b if the store cannot be made.
func (h *Bench) Store(b *testing.B, n int) (store.Store, *BenchLog) {
	if st, ok := h.stores[n]; ok {
		return st.s, st.g
	}
	s, release := h.open(b)
	g := new(BenchLog)
	h.stores[n] = &benchStore{s: s, g: g, release: release}
	ctx := context.Background()
	if err := s.Append(ctx, g.Genesis()); err != nil {
		b.Fatal(err)
	}
	for g.Size < uint64(n) {
		batch := g.Batch(min(8192, n-int(g.Size)), "prefill")
		if err := s.Append(ctx, batch); err != nil {
			b.Fatal(err)
		}
		g.Apply(batch)
	}
	return s, g
}

// Append appends b.N batches of batchSize entries (with their tiles and
// checkpoint, each Append a durable commit) to the store of prefill
// entries, timing only the Appends. It reports the metrics entries/s,
// log-size (after the run), p99-ms and max-ms (the latency of one Append).
func (h *Bench) Append(b *testing.B, prefill, batchSize int) {
	s, g := h.Store(b, prefill)
	ctx := context.Background()
	latencies := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		batch := g.Batch(batchSize, "bench")
		b.StartTimer()
		start := time.Now()
		if err := s.Append(ctx, batch); err != nil {
			b.Fatal(err)
		}
		latencies = append(latencies, time.Since(start))
		g.Apply(batch)
	}
	b.ReportMetric(float64(b.N*batchSize)/b.Elapsed().Seconds(), "entries/s")
	b.ReportMetric(float64(g.Size), "log-size")
	slices.Sort(latencies)
	b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(latencies[len(latencies)-1].Microseconds())/1000, "max-ms")
}

// ByIdentity looks up 1024 identities a call, half of them in the log of
// max(prefill, ReadPrefill) entries, and fails b unless exactly those are
// found. It reports the metric ids/s.
func (h *Bench) ByIdentity(b *testing.B, prefill int) {
	const lookups = 1024
	n := max(prefill, ReadPrefill)
	s, _ := h.Store(b, n)
	ctx := context.Background()
	ids := make([]store.Hash, lookups)
	for i := range ids {
		idx := uint64(i) * 7919 % uint64(n)
		tag := "prefill"
		if i%2 == 1 {
			tag = "absent"
		}
		ids[i] = BenchEntry(idx, tag).Identity
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

// ByLeafHash looks up the leaf hash of one entry a call in the log of
// max(prefill, ReadPrefill) entries, and fails b unless it finds the entry.
func (h *Bench) ByLeafHash(b *testing.B, prefill int) {
	n := max(prefill, ReadPrefill)
	s, _ := h.Store(b, n)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		idx := uint64(i) * 7919 % uint64(n)
		got, err := s.ByLeafHash(ctx, BenchEntry(idx, "prefill").LeafHash)
		if err != nil || got != idx {
			b.Fatalf("ByLeafHash(leaf hash of entry %d) = %d, %v", idx, got, err)
		}
	}
}

// Sample looks up the 8 entries of one sample a call in the log of
// max(prefill, ReadPrefill) entries, and fails b unless it finds them.
func (h *Bench) Sample(b *testing.B, prefill int) {
	n := max(prefill, ReadPrefill)
	s, _ := h.Store(b, n)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		idx := uint64(i) * 7919 % uint64(n) / 8 * 8
		got, err := s.Sample(ctx, BenchSample(idx))
		if err != nil || len(got) != 8 || got[0] != idx {
			b.Fatalf("Sample(sample of entry %d) = %v, %v", idx, got, err)
		}
	}
}

// EntriesBundle reads the 256 entries of one entry bundle a call from the
// log of max(prefill, ReadPrefill) entries, and fails b unless it gets 256.
func (h *Bench) EntriesBundle(b *testing.B, prefill int) {
	n := max(prefill, ReadPrefill)
	s, _ := h.Store(b, n)
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

// MustAppend appends the batch of n entries made with tag (see Batch) to
// s, records it with Apply and returns it. It fails tb if Append fails.
// MustAppend(tb, s, 0, "genesis") appends the batch Genesis returns.
func (g *BenchLog) MustAppend(tb testing.TB, s store.Store, n int, tag string) store.Batch {
	tb.Helper()
	b := g.Batch(n, tag)
	if err := s.Append(context.Background(), b); err != nil {
		tb.Fatalf("Append(batch of %d entries to size %d) error: %v", n, b.Checkpoint.Size, err)
	}
	g.Apply(b)
	return b
}
