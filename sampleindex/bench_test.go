package sampleindex

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"

	"github.com/transparency-dev/merkle/compact"
)

// benchMaps caches the stores of the benchmark maps by key count: key i
// is SHA-256 of i (8 bytes big-endian), with one event at index i.
var benchMaps sync.Map

type benchMap struct {
	store *MemTiles
	keys  int
}

func benchKey(i uint64) Hash {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], i)
	return sha256.Sum256(b[:])
}

func getBenchMap(b *testing.B, keys int) *benchMap {
	if v, ok := benchMaps.Load(keys); ok {
		return v.(*benchMap)
	}
	ctx := context.Background()
	store := NewMemTiles()
	m := Open(store, 0, nil)
	const batch = 1 << 16
	cs := make([]Change, 0, batch)
	for i := 0; i < keys; i++ {
		cs = append(cs, Change{Key: benchKey(uint64(i)), Index: uint64(i), LeafHash: benchKey(uint64(i) + 1<<40)})
		if len(cs) == batch || i == keys-1 {
			if _, err := m.Update(ctx, cs); err != nil {
				b.Fatal(err)
			}
			if err := m.Flush(ctx, store.WriteTiles); err != nil {
				b.Fatal(err)
			}
			cs = cs[:0]
		}
	}
	bm := &benchMap{store: store, keys: keys}
	benchMaps.Store(keys, bm)
	return bm
}

var benchSizes = []int{1 << 20, 10 << 20}

// BenchmarkUpdate measures one batch of 256 changes (half to new keys,
// half to existing ones) applied to a map of 1 M or 10 M keys, flushed
// after every batch, with the default cache. Each b.N iteration is one
// batch; the metrics are per batch and per entry.
func BenchmarkUpdate(b *testing.B) {
	for _, keys := range benchSizes {
		b.Run(fmt.Sprintf("keys=%dM", keys>>20), func(b *testing.B) {
			bm := getBenchMap(b, keys)
			// Work on a copy of the store, so the cached map stays as built.
			store := &MemTiles{tiles: make(map[TileID][]byte, len(bm.store.tiles)), size: bm.store.size, bytes: bm.store.bytes}
			for id, d := range bm.store.tiles {
				store.tiles[id] = d
			}
			ctx := context.Background()
			m := Open(store, uint64(keys), nil)
			if _, err := m.Root(ctx); err != nil {
				b.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			next := uint64(keys)
			cs := make([]Change, 256)
			start := m.Stats()
			b.ResetTimer()
			for b.Loop() {
				for i := range cs {
					k := benchKey(next)
					if i%2 == 1 {
						k = benchKey(rng.Uint64N(next))
					}
					cs[i] = Change{Key: k, Index: next, LeafHash: benchKey(next + 1<<40)}
					next++
				}
				if _, err := m.Update(ctx, cs); err != nil {
					b.Fatal(err)
				}
				if err := m.Flush(ctx, store.WriteTiles); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			st := m.Stats()
			n := float64(b.N)
			b.ReportMetric(float64(st.Hashes-start.Hashes)/n, "hashes/batch")
			b.ReportMetric(float64(st.BytesFlushed-start.BytesFlushed)/n, "Bflushed/batch")
			b.ReportMetric(float64(st.BytesFlushed-start.BytesFlushed)/n/256, "Bflushed/entry")
			b.ReportMetric(float64(st.TilesFlushed-start.TilesFlushed)/n, "tiles/batch")
			b.ReportMetric(float64(st.TilesRead-start.TilesRead)/n, "tilesread/batch")
			tiles, bytes := store.Usage()
			b.ReportMetric(float64(bytes)/float64(keys), "Bstored/key")
			b.ReportMetric(float64(tiles), "tiles")
		})
	}
}

// benchSample is a sample with 10 events in a log of keys+10 entries: the
// map of the benchmark map plus the sample, whose events are the last 10
// entries (clustered) or spread over the log (spread: then the entries at
// those indexes in the benchmark map are another key's; it changes only
// the inclusion proof, which is computed from a synthetic tree).
type benchSample struct {
	m       *Map
	sample  string
	indexes []uint64
	entries map[uint64][]byte
	size    uint64
}

// fakeNodes returns the leaf hashes of the sample's entries and a
// deterministic made-up hash for every other node of the log tree.
func (s *benchSample) nodes(ctx context.Context, ids []compact.NodeID) ([][]byte, error) {
	out := make([][]byte, len(ids))
	for i, id := range ids {
		if e, ok := s.entries[id.Index]; ok && id.Level == 0 {
			h := EntryLeafHash(e)
			out[i] = h[:]
			continue
		}
		var b [9]byte
		b[0] = byte(id.Level)
		binary.BigEndian.PutUint64(b[1:], id.Index)
		h := sha256.Sum256(b[:])
		out[i] = h[:]
	}
	return out, nil
}

func (s *benchSample) readEntries(ctx context.Context, idx []uint64) ([][]byte, error) {
	out := make([][]byte, len(idx))
	for i, x := range idx {
		out[i] = s.entries[x]
	}
	return out, nil
}

func newBenchSample(b *testing.B, keys int, spread string) *benchSample {
	bm := getBenchMap(b, keys)
	store := &MemTiles{tiles: make(map[TileID][]byte, len(bm.store.tiles))}
	for id, d := range bm.store.tiles {
		store.tiles[id] = d
	}
	ctx := context.Background()
	m := Open(store, uint64(keys), nil)
	s := &benchSample{m: m, sample: "sha256:2c26b46b68ffc68ff99b453c1d304134", entries: map[uint64][]byte{}, size: uint64(keys) + 10}
	var cs []Change
	for i := range 10 {
		idx := uint64(keys + i)
		data := testEntry(s.sample, keys+i)
		s.entries[idx] = data
		cs = append(cs, Change{Key: KeyOf(s.sample), Index: idx, LeafHash: EntryLeafHash(data)})
	}
	if _, err := m.Update(ctx, cs); err != nil {
		b.Fatal(err)
	}
	s.indexes = slices.Sorted(func(yield func(uint64) bool) {
		for k := range s.entries {
			if !yield(k) {
				return
			}
		}
	})
	if spread != "false" {
		// Same entries, moved to random indexes (the map is unchanged:
		// only the inclusion proof's size depends on the placement): of
		// the whole log ("true"), or of the last day of a log that grows
		// by its size in a year ("day": a sample handled within a day,
		// as real samples are).
		rng := rand.New(rand.NewPCG(5, 6))
		lo := uint64(0)
		if spread == "day" {
			lo = s.size - s.size/365
		}
		moved := map[uint64][]byte{}
		for _, d := range s.entries {
			moved[lo+rng.Uint64N(s.size-lo)] = d
		}
		s.entries = moved
		s.indexes = slices.Sorted(func(yield func(uint64) bool) {
			for k := range moved {
				if !yield(k) {
					return
				}
			}
		})
	}
	return s
}

// proofAndRoots returns an encoded proof of the sample and the trusted
// values it verifies against (the log root is computed from the
// synthetic tree the proof comes from).
func (s *benchSample) proofAndRoots(b *testing.B) ([]byte, Trusted) {
	ctx := context.Background()
	mp, err := s.m.Prove(ctx, KeyOf(s.sample))
	if err != nil {
		b.Fatal(err)
	}
	if s.indexes[0] < uint64(s.size-10) {
		// Spread: the map's list has the clustered indexes; rebuild the
		// list state for the moved ones.
		var rng []Hash
		for i, x := range s.indexes {
			rng = rangeAppend(rng, uint64(i), ListLeafHash(x, EntryLeafHash(s.entries[x])))
		}
		mp.List.Root = rangeRoot(rng)
	}
	p, err := BuildProof(ctx, ProofInput{Sample: s.sample, Size: s.size, Map: mp, Indexes: s.indexes, Entries: s.readEntries, Nodes: s.nodes})
	if err != nil {
		b.Fatal(err)
	}
	mapRoot, err := mp.Root()
	if err != nil {
		b.Fatal(err)
	}
	leaves := make([]Hash, len(s.indexes))
	for i, x := range s.indexes {
		leaves[i] = EntryLeafHash(s.entries[x])
	}
	v := batchVerifier{idx: s.indexes, leaves: leaves, proof: p.Inclusion}
	logRoot := v.node(0, s.size, 0, len(s.indexes))
	return p.Marshal(), Trusted{Size: s.size, LogRoot: logRoot, MapRoot: mapRoot}
}

// BenchmarkSampleProof measures, for a sample with 10 events in a log of
// 1 M or 10 M entries (one key per entry: the deepest map), the size of
// its proof (clustered: its events are the last 10 entries; spread: at
// random indexes; day: at random indexes among the last 1/365 of the
// entries, a day of a log that grows by its size in a year), generating the map proof (warm cache), building the
// whole proof, and verifying it.
func BenchmarkSampleProof(b *testing.B) {
	for _, keys := range benchSizes {
		for _, spread := range []string{"false", "true", "day"} {
			name := fmt.Sprintf("entries=%dM/spread=%s", keys>>20, spread)
			b.Run(name+"/verify", func(b *testing.B) {
				s := newBenchSample(b, keys, spread)
				data, tr := s.proofAndRoots(b)
				p, _ := ParseProof(data)
				entryBytes := 0
				for _, e := range p.Entries {
					entryBytes += len(e.Data)
				}
				b.ResetTimer()
				for b.Loop() {
					if _, err := Verify(data, req(s.sample, 0), tr); err != nil {
						b.Fatal(err)
					}
				}
				// After the loop: ResetTimer deletes metrics reported before it.
				b.ReportMetric(float64(len(data)), "proofB")
				b.ReportMetric(float64(len(data)-entryBytes), "proofB-without-entries")
				b.ReportMetric(float64(len(p.Inclusion)), "inclusion-hashes")
				b.ReportMetric(float64(len(p.Map.Siblings)), "map-depth")
			})
			if spread != "false" {
				continue
			}
			b.Run(name+"/map-proof", func(b *testing.B) {
				s := newBenchSample(b, keys, spread)
				ctx := context.Background()
				k := KeyOf(s.sample)
				b.ResetTimer()
				for b.Loop() {
					if _, err := s.m.Prove(ctx, k); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(name+"/build", func(b *testing.B) {
				s := newBenchSample(b, keys, spread)
				ctx := context.Background()
				b.ResetTimer()
				for b.Loop() {
					p, err := s.m.ProveSample(ctx, s.sample, 0, s.indexes, s.readEntries, s.nodes)
					if err != nil {
						b.Fatal(err)
					}
					_ = p.Marshal()
				}
			})
		}
	}
}

// BenchmarkUpdateNew measures what the log's sequencer does most: a batch
// of 256 changes, each to a new random sample, applied to a map of 1 M
// keys with the default cache, flushed every 64 batches (the dirty tiles
// pile up between flushes, as on a server). The cache is warmed first
// with 512 such batches (untimed), as on a server that has run a while.
// Each b.N iteration is one batch; cpu-ns/event is the process's CPU
// time (all threads, GC included) per event.
func BenchmarkUpdateNew(b *testing.B) {
	const keys = 1 << 20
	bm := getBenchMap(b, keys)
	store := &MemTiles{tiles: make(map[TileID][]byte, len(bm.store.tiles)), size: bm.store.size, bytes: bm.store.bytes}
	for id, d := range bm.store.tiles {
		store.tiles[id] = d
	}
	ctx := context.Background()
	m := Open(store, uint64(keys), nil)
	if _, err := m.Root(ctx); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	next := uint64(keys)
	cs := make([]Change, 256)
	batches := 0
	batch := func() {
		for i := range cs {
			var k Hash
			binary.BigEndian.PutUint64(k[0:], rng.Uint64())
			binary.BigEndian.PutUint64(k[8:], rng.Uint64())
			binary.BigEndian.PutUint64(k[16:], rng.Uint64())
			binary.BigEndian.PutUint64(k[24:], rng.Uint64())
			cs[i] = Change{Key: k, Index: next, LeafHash: benchKey(next + 1<<40)}
			next++
		}
		if _, err := m.Update(ctx, cs); err != nil {
			b.Fatal(err)
		}
		if batches++; batches%64 == 0 {
			if err := m.Flush(ctx, store.WriteTiles); err != nil {
				b.Fatal(err)
			}
		}
	}
	for range 512 {
		batch()
	}
	start := m.Stats()
	cpu0 := cpuTime()
	b.ResetTimer()
	for b.Loop() {
		batch()
	}
	b.StopTimer()
	st := m.Stats()
	n := float64(b.N)
	b.ReportMetric(float64(cpuTime()-cpu0)/n/256, "cpu-ns/event")
	b.ReportMetric(float64(st.Hashes-start.Hashes)/n/256, "hashes/event")
	b.ReportMetric(float64(st.TilesRead-start.TilesRead)/n/256, "tilesread/event")
}

// BenchmarkCachedTileBytes reports the heap bytes a parsed tile of the
// 1 M-key map costs in the cache: every stored tile is decoded, hashed
// (as a tile an Update touches is) and kept, and the live heap growth is
// divided by the number of tiles; heapB/tile-rehashed after every tile is
// hashed a second time (then tiles of 4+ slots keep their nodes). b.N decodes and hashes are timed (one
// tile each, round robin): the CPU cost of a cache miss.
func BenchmarkCachedTileBytes(b *testing.B) {
	bm := getBenchMap(b, 1<<20)
	ids := make([]TileID, 0, len(bm.store.tiles))
	datas := make([][]byte, 0, len(bm.store.tiles))
	for id, d := range bm.store.tiles {
		ids = append(ids, id)
		datas = append(datas, d)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	m := &Map{}
	kept := make(map[TileID]*tile, len(ids))
	for i, id := range ids {
		t, err := decodeTile(id, datas[i])
		if err != nil {
			b.Fatal(err)
		}
		m.tileRoot(t)
		kept[id] = t
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perTile := float64(after.HeapAlloc-before.HeapAlloc) / float64(len(ids))
	// A tile hashed again (touched by a second Update while cached) keeps
	// its interior nodes.
	for _, t := range kept {
		t.stale = allSlots
		m.tileRoot(t)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perTileKept := float64(after.HeapAlloc-before.HeapAlloc) / float64(len(ids))
	runtime.KeepAlive(kept)
	kept = nil
	b.ResetTimer()
	i := 0
	for b.Loop() {
		t, err := decodeTile(ids[i], datas[i])
		if err != nil {
			b.Fatal(err)
		}
		m.tileRoot(t)
		if i++; i == len(ids) {
			i = 0
		}
	}
	b.ReportMetric(perTile, "heapB/tile")
	b.ReportMetric(perTileKept, "heapB/tile-rehashed")
}

// cpuTime returns the CPU time (user and system, all threads) the process
// has used, in nanoseconds: on a shared, loaded machine it measures work
// better than wall time.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
