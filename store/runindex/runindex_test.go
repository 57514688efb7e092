package runindex

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// model is the reference: a plain map per table.
type model []map[uint64][]uint64

func newModel(tables int) model {
	m := make(model, tables)
	for i := range m {
		m[i] = map[uint64][]uint64{}
	}
	return m
}

func (m model) add(first uint64, keys [][]uint64) {
	for t, ks := range keys {
		for i, k := range ks {
			m[t][k] = append(m[t][k], first+uint64(i))
		}
	}
}

// check compares every key of the model, and some absent ones, with x.
func (m model) check(t *testing.T, x *Index, what string) {
	t.Helper()
	for tb := range m {
		for k, want := range m[tb] {
			got, err := x.Lookup(tb, k, nil)
			if err != nil {
				t.Fatalf("%s: Lookup(%d, %x): %v", what, tb, k, err)
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Fatalf("%s: table %d key %x: got %v, want %v", what, tb, k, got, want)
			}
		}
		for i := range 200 {
			k := uint64(i)*0x9e3779b97f4a7c15 + 12345
			if _, ok := m[tb][k]; ok {
				continue
			}
			if got, _ := x.Lookup(tb, k, nil); len(got) != 0 {
				t.Fatalf("%s: table %d: absent key %x found at %v", what, tb, k, got)
			}
		}
	}
}

var testOpts = Options{Tables: 3, Bloom: []bool{true, false, false}, BufferEntries: 1000, FanIn: 2}

// batch makes n entries from first: identities and leaf hashes unique and
// random, samples with about 5 entries each (keys repeat across batches).
func batch(r *rand.Rand, first uint64, n int) [][]uint64 {
	keys := [][]uint64{make([]uint64, n), make([]uint64, n), make([]uint64, n)}
	for i := range n {
		keys[0][i] = r.Uint64()
		keys[1][i] = r.Uint64()
		keys[2][i] = (first + uint64(i)) / 5 * 0x100000001b3
	}
	return keys
}

func TestAddLookupAcrossFlushesMergesAndReopen(t *testing.T) {
	dir := t.TempDir()
	x, err := Open(dir, testOpts)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	m := newModel(3)
	var next uint64
	for _, n := range []int{1, 999, 1, 1500, 3000, 17, 4000, 2483} {
		keys := batch(r, next, n)
		if err := x.Add(next, keys); err != nil {
			t.Fatal(err)
		}
		m.add(next, keys)
		next += uint64(n)
		m.check(t, x, fmt.Sprintf("after %d entries", next))
	}
	if x.Next() != next {
		t.Fatalf("Next() = %d, want %d", x.Next(), next)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	// Merged runs are deleted as they are replaced, not left for the next
	// Open to clean up: the directory holds exactly the live runs.
	live := 0
	for tb := range x.runs {
		live += len(x.runs[tb])
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.run"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != live {
		t.Fatalf("after merges and Close: %d run files on disk, %d live runs", len(files), live)
	}
	x, err = Open(dir, testOpts)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if x.Watermark() != next || x.Next() != next {
		t.Fatalf("after a clean close: watermark %d next %d, want %d", x.Watermark(), x.Next(), next)
	}
	m.check(t, x, "reopened")
	// FanIn 2 and 12,000 entries in buffers of 1,000: merges happened, so
	// each table has far fewer runs than flushes.
	for tb := range x.runs {
		if n := len(x.runs[tb]); n == 0 || n > 6 {
			t.Fatalf("table %d has %d runs: %s", tb, n, x)
		}
	}
}

// abandon is a crash: background work finishes what it started, then the
// index is dropped without writing its buffers.
func (x *Index) abandon() {
	x.stop()
	x.closeRuns()
	x.unlock() // the process is gone, and with it the lock
}

func TestCrashLosesOnlyTheBufferedTail(t *testing.T) {
	dir := t.TempDir()
	x, err := Open(dir, testOpts)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	m := newModel(3)
	all := [][][]uint64{}
	var next uint64
	for range 7 {
		keys := batch(r, next, 700)
		all = append(all, keys)
		if err := x.Add(next, keys); err != nil {
			t.Fatal(err)
		}
		next += 700
	}
	if err := x.Sync(); err != nil {
		t.Fatal(err)
	}
	synced := x.Watermark()
	if synced != next {
		t.Fatalf("after Sync, watermark %d, want %d", synced, next)
	}
	for range 2 { // 1,400 more: one buffer flushed (maybe), the rest in memory
		keys := batch(r, next, 700)
		all = append(all, keys)
		if err := x.Add(next, keys); err != nil {
			t.Fatal(err)
		}
		next += 700
	}
	if _, err := Open(dir, testOpts); !errors.Is(err, ErrLocked) {
		t.Fatalf("a second Open of a directory in use: %v, want ErrLocked", err)
	}
	x.abandon()

	x, err = Open(dir, testOpts)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	wm := x.Watermark()
	if wm < synced || wm > next {
		t.Fatalf("watermark after the crash %d, want between %d and %d", wm, synced, next)
	}
	// The watermark's keys are those of entry wm-1.
	wk := x.WatermarkKeys()
	last := all[(wm-1)/700]
	j := (wm - 1) % 700
	if len(wk) != 3 || wk[0] != last[0][j] || wk[1] != last[1][j] || wk[2] != last[2][j] {
		t.Fatalf("WatermarkKeys %x are not those of entry %d", wk, wm-1)
	}
	// The caller re-adds the tail from the watermark, from the log.
	var pos uint64
	for _, keys := range all {
		n := uint64(len(keys[0]))
		if pos+n <= wm {
			m.add(pos, keys)
			pos += n
			continue
		}
		skip := wm - min(wm, pos)
		tail := [][]uint64{keys[0][skip:], keys[1][skip:], keys[2][skip:]}
		if err := x.Add(pos+skip, tail); err != nil {
			t.Fatal(err)
		}
		m.add(pos, keys)
		pos += n
	}
	m.check(t, x, "after crash and re-indexing the tail")
}

func TestOpenCleansAndRefuses(t *testing.T) {
	dir := t.TempDir()
	x, err := Open(dir, testOpts)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(5, 6))
	if err := x.Add(0, batch(r, 0, 2500)); err != nil {
		t.Fatal(err)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	// Leftovers of an interrupted flush are removed; other files are not.
	for _, n := range []string{"tmp-42.run", "0-0000000000009999.run", "MANIFEST.tmp", "notes.txt"} {
		os.WriteFile(filepath.Join(dir, n), []byte("junk"), 0o600)
	}
	if x, err = Open(dir, testOpts); err != nil {
		t.Fatal(err)
	}
	x.Close()
	for _, n := range []string{"tmp-42.run", "0-0000000000009999.run", "MANIFEST.tmp"} {
		if _, err := os.Stat(filepath.Join(dir, n)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("leftover %s not removed", n)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "notes.txt")); err != nil {
		t.Error("a file that is not the index's was removed")
	}

	// Another table layout.
	if _, err := Open(dir, Options{Tables: 2, Bloom: []bool{true, false}}); !errors.Is(err, ErrLayout) {
		t.Fatalf("another layout: %v", err)
	}
	// A damaged run: a flipped fence byte fails the checksum.
	runs, _ := filepath.Glob(filepath.Join(dir, "1-*.run"))
	if len(runs) == 0 {
		t.Fatal("no run of table 1")
	}
	b, _ := os.ReadFile(runs[0])
	n := binary.BigEndian.Uint64(b[len(b)-footerSize+8:])
	b[n*recSize] ^= 1
	os.WriteFile(runs[0], b, 0o600)
	if _, err := Open(dir, testOpts); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("damaged run: %v", err)
	}
	// A truncated run.
	os.WriteFile(runs[0], b[:len(b)-1], 0o600)
	if _, err := Open(dir, testOpts); err == nil {
		t.Fatal("truncated run accepted")
	}
}

func TestAddRefusesGapsAndShapes(t *testing.T) {
	x, err := Open(t.TempDir(), testOpts)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if err := x.Add(5, [][]uint64{{1}, {2}, {3}}); err == nil {
		t.Error("Add from 5 on an empty index accepted")
	}
	if err := x.Add(0, [][]uint64{{1}, {2}}); err == nil {
		t.Error("two key lists for three tables accepted")
	}
	if err := x.Add(0, [][]uint64{{1, 2}, {2}, {3}}); err == nil {
		t.Error("uneven key lists accepted")
	}
	if x.Next() != 0 {
		t.Fatal("a refused Add changed Next")
	}
}

// TestHotKey adds 50,000 values of one key: each add is O(1), and every
// value comes back.
func TestHotKey(t *testing.T) {
	x, err := Open(t.TempDir(), Options{Tables: 1, Bloom: []bool{false}, BufferEntries: 20000, FanIn: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	keys := make([]uint64, 50000)
	for i := range keys {
		keys[i] = 7
	}
	if err := x.Add(0, [][]uint64{keys}); err != nil {
		t.Fatal(err)
	}
	if err := x.Add(50000, [][]uint64{keys[:10]}); err != nil {
		t.Fatal(err)
	}
	got, err := x.Lookup(0, 7, nil)
	if err != nil || len(got) != 50010 {
		t.Fatalf("hot key: %d values, %v", len(got), err)
	}
	slices.Sort(got)
	for i, v := range got {
		if v != uint64(i) {
			t.Fatalf("value %d is %d", i, v)
		}
	}
}

// FuzzIndex runs a sequence of adds (from a small key space, so keys
// repeat), syncs and reopens, and checks every key against the model.
func FuzzIndex(f *testing.F) {
	f.Add([]byte{10, 200, 1, 3, 255, 2, 40})
	f.Add([]byte{0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 24 {
			ops = ops[:24]
		}
		dir := t.TempDir()
		opts := Options{Tables: 2, Bloom: []bool{true, false}, BufferEntries: 64, FanIn: 2}
		x, err := Open(dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		m := newModel(2)
		var next uint64
		for i, op := range ops {
			switch {
			case op == 0:
				if err := x.Sync(); err != nil {
					t.Fatal(err)
				}
			case op == 1:
				if err := x.Close(); err != nil {
					t.Fatal(err)
				}
				if x, err = Open(dir, opts); err != nil {
					t.Fatal(err)
				}
			default:
				n := int(op)
				keys := [][]uint64{make([]uint64, n), make([]uint64, n)}
				for j := range n {
					keys[0][j] = uint64((i*131 + j*7) % 97)
					keys[1][j] = uint64(j % 3)
				}
				if err := x.Add(next, keys); err != nil {
					t.Fatal(err)
				}
				m.add(next, keys)
				next += uint64(n)
			}
		}
		m.check(t, x, "fuzzed sequence")
		if err := x.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// BenchmarkAppend measures what a log's store does per batch of 1,024
// entries: look up 1,024 new (absent) identities, then add the entries'
// identity, leaf hash and sample keys.
func BenchmarkAppend(b *testing.B) {
	x, err := Open(b.TempDir(), Options{Tables: 3, Bloom: []bool{true, false, false}})
	if err != nil {
		b.Fatal(err)
	}
	defer x.Close()
	r := rand.New(rand.NewPCG(7, 8))
	var next uint64
	var dst []uint64
	b.ResetTimer()
	for range b.N {
		keys := batch(r, next, 1024)
		for _, k := range keys[0] {
			if dst, err = x.Lookup(0, k, dst[:0]); err != nil || len(dst) != 0 {
				b.Fatal("absent identity found", err)
			}
		}
		if err := x.Add(next, keys); err != nil {
			b.Fatal(err)
		}
		next += 1024
	}
	b.ReportMetric(float64(next)/b.Elapsed().Seconds(), "entries/s")
}

// TestBloomMemoryBudget: whatever the budget for filters in memory (none,
// a few runs' worth, all), lookups give exactly the model's answers
// across flushes, merges and a reopen; runs beyond the budget read their
// filter from the file; the budget is never exceeded and is given back
// when runs go; a damaged filter is refused at Open even when it would
// stay in its file.
func TestBloomMemoryBudget(t *testing.T) {
	// The third budget holds the smallest filter of the layout the first
	// (unlimited) run ends with: some filters fit, not all.
	var smallest int64
	for _, budget := range []int64{0, -1, 1} {
		if budget == 1 {
			budget = smallest
		}
		t.Run(fmt.Sprint(budget), func(t *testing.T) {
			dir := t.TempDir()
			opts := testOpts
			opts.BloomMemory = budget
			x, err := Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			r := rand.New(rand.NewPCG(3, 4))
			m := newModel(3)
			var next uint64
			for _, n := range []int{999, 1, 1500, 3000, 17, 4000, 2483} {
				keys := batch(r, next, n)
				if err := x.Add(next, keys); err != nil {
					t.Fatal(err)
				}
				m.add(next, keys)
				next += uint64(n)
				m.check(t, x, fmt.Sprintf("after %d entries", next))
				if limit := x.opts.BloomMemory; x.bloomUsed.Load() > max(limit, 0) {
					t.Fatalf("%d bytes of filters in memory, budget %d", x.bloomUsed.Load(), limit)
				}
			}
			if err := x.Close(); err != nil {
				t.Fatal(err)
			}
			if used := x.bloomUsed.Load(); used != 0 {
				t.Fatalf("after Close, %d bytes of the filter budget still taken", used)
			}
			if x, err = Open(dir, opts); err != nil {
				t.Fatal(err)
			}
			m.check(t, x, "reopened")
			inMem, inFile := 0, 0
			var filtered *run
			for _, r := range x.runs[0] {
				switch {
				case r.bloom != nil:
					inMem++
					if size := int64(len(r.bloom)) * 8; smallest == 0 || size < smallest {
						smallest = size
					}
				case r.nblocks > 0:
					inFile++
					filtered = r
				}
			}
			switch {
			case budget == -1 && (inMem != 0 || inFile == 0),
				budget > 0 && (inMem == 0 || inFile == 0),
				budget == 0 && (inMem == 0 || inFile != 0):
				t.Fatalf("budget %d: %d filters in memory, %d in files", budget, inMem, inFile)
			}
			if filtered == nil {
				filtered = x.runs[0][0]
			}
			name, inMemory := filtered.f.Name(), filtered.bloom != nil
			x.Close()
			// One bit of the filter flipped: Open refuses the index.
			b, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			b[filtered.bloomAt+5] ^= 0x10
			if err := os.WriteFile(name, b, 0o600); err != nil {
				t.Fatal(err)
			}
			// A filter kept in memory is checked by Open; one left in its
			// file is checked in the background, and lookups fail.
			x, err = Open(dir, opts)
			if inMemory {
				if err == nil || !strings.Contains(err.Error(), "checksum") {
					t.Fatalf("a damaged filter in memory: Open gave %v, want a checksum error", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("a damaged filter left in its file: Open gave %v, want the check in the background", err)
			}
			defer x.Close()
			if _, err := x.Lookup(0, 12345, nil); err == nil || !strings.Contains(err.Error(), "checksum") {
				t.Fatalf("a damaged filter left in its file: Lookup gave %v, want a checksum error", err)
			}
		})
	}
}
