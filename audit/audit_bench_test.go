package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

// The audit benchmark reads a tlog-tiles directory generated once and kept
// under os.TempDir(), since writing a million entries takes a few seconds:
//
//	go test ./verify -run '^$' -bench AuditDir -benchtime 3x
//	go test ./verify -run '^$' -bench AuditDir -benchtime 3x -audit-entries 4000000
//
// The directory is custody-audit-bench-<N>-v<auditBenchFormat>; bump
// auditBenchFormat whenever the generator changes what it writes.
var auditBenchEntries = flag.Int("audit-entries", 1<<20, "entries in the log of BenchmarkAuditDir (also run at a quarter of it)")

const (
	auditBenchFormat = 1
	auditBenchOrigin = "example.com/custody-audit-bench"
	// auditBenchLive is how many samples are in flight at once: each step
	// of the generator logs the next event of one of them, picked at random.
	auditBenchLive = 1024
)

// auditBenchRoutes are the routes of the workload, all allowed by
// testdata/policy.yaml: a sample is collected at from, copied to to, stored
// and analysed there, then deleted at both.
var auditBenchRoutes = []struct{ region, from, to string }{
	{"EU", "de-fra-1", "ch-zrh-1"},
	{"US", "us-ash-1", "ch-zrh-1"},
	{"UK", "uk-lon-1", "ch-zrh-1"},
	{"ROW", "sg-sin-1", "ru-mow-1"},
	{"ROW", "sg-sin-1", "ch-zrh-1"},
	{"EU", "ch-zrh-1", "de-fra-1"},
}

// auditBenchSteps is the custody chain of every sample, six events.
var auditBenchSteps = []struct {
	action record.Action
	actor  string
	note   string
}{
	{record.Collected, "edge-sensor/4.2", ""},
	{record.Transferred, "transfer-svc", "routine transfer for analysis"},
	{record.Stored, "vault", ""},
	{record.Analysed, "sandbox-7", "static and dynamic analysis"},
	{record.Deleted, "retention", ""},
	{record.Deleted, "retention", "retention period over"},
}

// auditBenchEvents calls fn with the n events of the benchmark log, in
// order: samples of auditBenchSteps interleaved auditBenchLive at a time,
// each event a second after the one before and logged 1 to 7 s after its
// time. Samples still in flight at the end stay present somewhere, which
// is no finding. It returns the number of samples.
func auditBenchEvents(n int, fn func(i int, ev record.Event)) int {
	type live struct {
		id, customer string
		route, step  int
	}
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	samples := 0
	newSample := func() live {
		samples++
		id := fmt.Sprintf("smp-%08d", samples)
		c := sha256.Sum256([]byte("customer " + strconv.Itoa(samples%5000)))
		return live{id: id, customer: hex.EncodeToString(c[:]), route: rng.IntN(len(auditBenchRoutes))}
	}
	pool := make([]live, auditBenchLive)
	for i := range pool {
		pool[i] = newSample()
	}
	for i := 0; i < n; i++ {
		k := rng.IntN(len(pool))
		s := &pool[k]
		r, st := auditBenchRoutes[s.route], auditBenchSteps[s.step]
		ev := record.Event{
			Sample: s.id, Action: st.action, Region: r.region, Customer: s.customer,
			Actor: st.actor, Note: st.note,
			Time: base.Add(time.Duration(i) * time.Second),
		}
		ev.Logged = ev.Time.Add(time.Duration(1+i%7) * time.Second)
		switch s.step {
		case 0, 4:
			ev.Location = r.from
		case 1:
			ev.Location, ev.To = r.from, r.to
		default:
			ev.Location = r.to
		}
		fn(i, ev)
		if s.step++; s.step == len(auditBenchSteps) {
			*s = newSample()
		}
	}
	return samples
}

// auditBenchKey returns the benchmark log's signer and verifier key, from a
// fixed seed.
func auditBenchKey(tb testing.TB) (note.Signer, string) {
	return testLogKey(tb, auditBenchOrigin)
}

// writeAuditBenchLog writes the n-entry benchmark log into dir in the
// tlog-tiles layout: entry bundles and level-0 tiles 256 entries at a time,
// higher tiles, partial tiles and bundles (.p/W), and a checkpoint signed
// by signer. It shares no hashing or path code with the package: hashes are
// crypto/sha256 directly, paths indexPathRef. It returns the root and the
// number of samples.
func writeAuditBenchLog(dir string, n int, signer note.Signer) ([32]byte, int, error) {
	return writeAuditBenchLogEdited(dir, n, signer, nil)
}

// writeAuditBenchLogEdited is writeAuditBenchLog with entry i replaced by
// edit(i, entry) if edit is not nil (and the tree built over the result).
func writeAuditBenchLogEdited(dir string, n int, signer note.Signer, edit func(i int, entry []byte) []byte) ([32]byte, int, error) {
	var samples int
	root, _, err := writeTilesLog(dir, auditBenchOrigin, signer, func(emit func([]byte)) {
		samples = auditBenchEvents(n, func(i int, ev record.Event) {
			e := ev.Canonical()
			if edit != nil {
				e = edit(i, e)
			}
			emit(e)
		})
	})
	return root, samples, err
}

// writeTilesLog writes the entries gen emits, in order, into dir in the
// tlog-tiles layout of the log origin, with a checkpoint signed by signer,
// and returns the root and the number of entries.
func writeTilesLog(dir, origin string, signer note.Signer, gen func(emit func(entry []byte))) ([32]byte, uint64, error) {
	var werr error
	write := func(p string, data []byte) {
		if werr != nil {
			return
		}
		name := filepath.Join(dir, filepath.FromSlash(p))
		if werr = os.MkdirAll(filepath.Dir(name), 0o755); werr == nil {
			werr = os.WriteFile(name, data, 0o644)
		}
	}
	suffix := func(w int) string {
		if w == verify.TileWidth {
			return ""
		}
		return ".p/" + strconv.Itoa(w)
	}
	var (
		levels  [][][32]byte // levels[L], L >= 1: every hash of tile level L
		leaves  [][32]byte   // the current bundle's leaf hashes
		bundle  []byte
		tile    []byte
		bundles uint64
		// stack is the RFC 6962 tree so far as perfect subtrees,
		// largest first, with their heights.
		stack []struct {
			h      [32]byte
			height int
		}
	)
	push := func(h [32]byte, height int) {
		for len(stack) > 0 && stack[len(stack)-1].height == height {
			h = refNodeHash(stack[len(stack)-1].h, h)
			stack, height = stack[:len(stack)-1], height+1
		}
		stack = append(stack, struct {
			h      [32]byte
			height int
		}{h, height})
	}
	flush := func() {
		w := len(leaves)
		tile = tile[:0]
		for _, h := range leaves {
			tile = append(tile, h[:]...)
		}
		write("tile/0/"+indexPathRef(bundles)+suffix(w), tile)
		write("tile/entries/"+indexPathRef(bundles)+suffix(w), bundle)
		if w == verify.TileWidth {
			root := refTreeHash(leaves)
			push(root, 8)
			if len(levels) < 2 {
				levels = append(levels, nil, nil)
			}
			levels[1] = append(levels[1], root)
			bundles++
		} else {
			for _, h := range leaves {
				push(h, 0)
			}
		}
		leaves, bundle = leaves[:0], bundle[:0]
	}
	var n uint64
	gen(func(e []byte) {
		n++
		bundle = binary.BigEndian.AppendUint16(bundle, uint16(len(e)))
		bundle = append(bundle, e...)
		leaves = append(leaves, sha256.Sum256(append([]byte{0}, e...)))
		if len(leaves) == verify.TileWidth {
			flush()
		}
	})
	if len(leaves) > 0 {
		flush()
	}
	// Levels 1 and up: full tiles, and the partial tile of each level.
	for L := 1; L < len(levels) && len(levels[L]) > 0; L++ {
		hs := levels[L]
		for i := 0; i*verify.TileWidth < len(hs); i++ {
			part := hs[i*verify.TileWidth : min(len(hs), (i+1)*verify.TileWidth)]
			tile = tile[:0]
			for _, h := range part {
				tile = append(tile, h[:]...)
			}
			write(fmt.Sprintf("tile/%d/%s%s", L, indexPathRef(uint64(i)), suffix(len(part))), tile)
			if len(part) == verify.TileWidth {
				if len(levels) == L+1 {
					levels = append(levels, nil)
				}
				levels[L+1] = append(levels[L+1], refTreeHash(part))
			}
		}
	}
	root := sha256.Sum256(nil)
	if len(stack) > 0 {
		root = stack[len(stack)-1].h
		for i := len(stack) - 2; i >= 0; i-- {
			root = refNodeHash(stack[i].h, root)
		}
	}
	cp := verify.Checkpoint{Origin: origin, Size: n, Root: root}
	signed, err := note.Sign(&note.Note{Text: string(cp.Marshal())}, signer)
	if err != nil {
		return root, n, err
	}
	write("checkpoint", signed)
	return root, n, werr
}

// auditBenchDir returns the directory of the n-entry benchmark log,
// generating it the first time into os.TempDir(), and the number of
// samples in it (kept in the file bench-samples, which is no part of the
// tlog-tiles layout).
func auditBenchDir(tb testing.TB, n int) (string, int) {
	tb.Helper()
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("custody-audit-bench-%d-v%d", n, auditBenchFormat))
	if b, err := os.ReadFile(filepath.Join(dir, "bench-samples")); err == nil {
		if samples, err := strconv.Atoi(string(b)); err == nil {
			return dir, samples
		}
	}
	signer, _ := auditBenchKey(tb)
	tmp, err := os.MkdirTemp(os.TempDir(), "custody-audit-bench-tmp-")
	if err != nil {
		tb.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	start := time.Now()
	_, samples, err := writeAuditBenchLog(tmp, n, signer)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "bench-samples"), []byte(strconv.Itoa(samples)), 0o644); err != nil {
		tb.Fatal(err)
	}
	os.RemoveAll(dir) // an incomplete one, or of another run at the same time
	if err := os.Rename(tmp, dir); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("generated %d-entry log in %s (%v)", n, dir, time.Since(start).Round(time.Millisecond))
	return dir, samples
}

// heapSampler records the peak of the Go heap while an audit runs, read
// from runtime/metrics (which does not stop the world) every millisecond.
type heapSampler struct {
	stop     chan struct{}
	done     sync.WaitGroup
	peakHeap uint64 // heap object bytes, live and not yet swept (HeapAlloc)
	peakLive uint64 // live heap as marked by the last GC
}

var heapMetrics = []string{"/memory/classes/heap/objects:bytes", "/gc/heap/live:bytes"}

func startHeapSampler() *heapSampler {
	s := &heapSampler{stop: make(chan struct{})}
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		ms := make([]metrics.Sample, len(heapMetrics))
		for i, name := range heapMetrics {
			ms[i].Name = name
		}
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(ms)
			s.peakHeap = max(s.peakHeap, ms[0].Value.Uint64())
			s.peakLive = max(s.peakLive, ms[1].Value.Uint64())
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

func (s *heapSampler) finish() (peakHeap, peakLive uint64) {
	close(s.stop)
	s.done.Wait()
	return s.peakHeap, s.peakLive
}

// heapLive returns the live heap after a GC. It collects twice, so that
// what sync.Pools held (such as encoding/json's buffers) is gone too.
func heapLive() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkAuditDir audits a generated log of -audit-entries entries (and
// one of a quarter of that) from its tiles directory, as `custody audit
// --no-state --log DIR --policy testdata/policy.yaml` does, and reports
// entries/s and the heap: peak-heap-MB is the peak of the heap's objects
// (live and garbage) above what was in use before, peak-live-MB the peak of
// the live heap marked by the GC (also per sample of the log: the engine
// keeps state per sample, see BenchmarkEngineState), state-MB what the
// report and state returned by Audit hold (mostly the engine's state). The
// files are read from the page cache after the first run.
func BenchmarkAuditDir(b *testing.B) {
	pol, err := LoadPolicy(filepath.Join("..", "testdata", "policy.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{*auditBenchEntries / 4, *auditBenchEntries} {
		b.Run("entries="+strconv.Itoa(n), func(b *testing.B) {
			dir, samples := auditBenchDir(b, n)
			_, vkey := auditBenchKey(b)
			vs := mustVerifiers(b, vkey)
			ctx := context.Background()
			var peakHeap, peakLive, retained uint64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				base := heapLive()
				s := startHeapSampler()
				b.StartTimer()
				c := verify.NewClient(verify.NewDirSource(dir), auditBenchOrigin, vs, nil)
				rep, st, err := Audit(ctx, c, AuditOptions{Policy: pol})
				b.StopTimer()
				ph, pl := s.finish()
				if err != nil {
					b.Fatal(err)
				}
				// Audit fails unless the root it recomputed is the signed one.
				var counted uint64
				for _, m := range rep.Counts {
					for _, k := range m {
						counted += k
					}
				}
				if rep.Size != uint64(n) || counted != uint64(n) || len(rep.Findings) != 0 {
					b.Fatalf("audit of %d entries: size %d, %d events counted, %d findings (first %v)",
						n, rep.Size, counted, len(rep.Findings), rep.Findings[:min(1, len(rep.Findings))])
				}
				peakHeap = max(peakHeap, ph-min(ph, base))
				peakLive = max(peakLive, pl-min(pl, base))
				r := heapLive()
				retained = max(retained, r-min(r, base))
				runtime.KeepAlive(rep)
				runtime.KeepAlive(st)
				b.StartTimer()
			}
			b.StopTimer()
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
			b.ReportMetric(float64(samples), "samples")
			b.ReportMetric(float64(peakHeap)/(1<<20), "peak-heap-MB")
			b.ReportMetric(float64(peakLive)/(1<<20), "peak-live-MB")
			b.ReportMetric(float64(peakLive)/float64(samples), "peak-live-B/sample")
			b.ReportMetric(float64(retained)/(1<<20), "state-MB")
		})
	}
}

// BenchmarkEngineState measures the policy engine's memory per sample on
// the workload of BenchmarkAuditDir (-audit-entries events; all but about
// auditBenchLive of the samples are deleted everywhere by the end): the
// heap the engine holds, after a GC, divided by the number of samples, and
// the size of its MarshalState.
func BenchmarkEngineState(b *testing.B) {
	pol, err := LoadPolicy(filepath.Join("..", "testdata", "policy.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	n := *auditBenchEntries
	var held, state uint64
	var samples int
	for i := 0; i < b.N; i++ {
		base := heapLive()
		e := NewEngine(pol)
		findings := 0
		samples = auditBenchEvents(n, func(i int, ev record.Event) {
			findings += len(e.Add(uint64(i), ev))
		})
		if findings != 0 {
			b.Fatalf("%d findings", findings)
		}
		h := heapLive()
		held = h - min(h, base)
		js, err := e.MarshalState()
		if err != nil {
			b.Fatal(err)
		}
		state = uint64(len(js))
		runtime.KeepAlive(e)
	}
	b.ReportMetric(float64(samples), "samples")
	b.ReportMetric(float64(held)/(1<<20), "engine-MB")
	b.ReportMetric(float64(held)/float64(samples), "engine-B/sample")
	b.ReportMetric(float64(state)/float64(samples), "state-B/sample")
}

// TestAuditBenchLog audits a small log from the benchmark's generator,
// with partial bundles and tiles, so that the generator and the audit keep
// agreeing: no findings, and the root the audit recomputes is the one the
// generator signed.
func TestAuditBenchLog(t *testing.T) {
	pol, err := LoadPolicy(filepath.Join("..", "testdata", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	signer, vkey := auditBenchKey(t)
	for _, n := range []int{1, 255, 256, 5*verify.TileWidth + 77, verify.TileWidth*verify.TileWidth + 3} {
		dir := t.TempDir()
		root, samples, err := writeAuditBenchLog(dir, n, signer)
		if err != nil {
			t.Fatal(err)
		}
		var leaves [][32]byte
		auditBenchEvents(n, func(_ int, ev record.Event) { leaves = append(leaves, refLeafHash(ev.Canonical())) })
		if want := refTreeHash(leaves); root != want {
			t.Fatalf("n=%d: generator root %x, reference %x", n, root, want)
		}
		c := verify.NewClient(verify.NewDirSource(dir), auditBenchOrigin, mustVerifiers(t, vkey), nil)
		rep, _, err := Audit(context.Background(), c, AuditOptions{Policy: pol})
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if rep.Size != uint64(n) || len(rep.Findings) != 0 || rep.Root != b64(root) {
			t.Fatalf("n=%d: size %d, root %s, findings %v; want root %s, none", n, rep.Size, rep.Root, rep.Findings, b64(root))
		}
		var total uint64
		for _, m := range rep.Counts {
			for _, k := range m {
				total += k
			}
		}
		if total != uint64(n) || samples < 1 {
			t.Fatalf("n=%d: counts add up to %d, %d samples", n, total, samples)
		}
	}
}

// TestAuditBenchLogResumeAndTamper audits the benchmark log in two steps
// (the first ending inside a bundle), which must give what one audit gives,
// and logs with a corrupted bundle and with a signed entry that is not a
// canonical event, which must give the right evidence.
func TestAuditBenchLogResumeAndTamper(t *testing.T) {
	pol, err := LoadPolicy(filepath.Join("..", "testdata", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	signer, vkey := auditBenchKey(t)
	ctx := context.Background()
	audit := func(dir string, st *AuditState) (*AuditReport, *AuditState, error) {
		c := verify.NewClient(verify.NewDirSource(dir), auditBenchOrigin, mustVerifiers(t, vkey), nil)
		return Audit(ctx, c, AuditOptions{Policy: pol, State: st})
	}
	write := func(n int, edit func(int, []byte) []byte) string {
		dir := t.TempDir()
		if _, _, err := writeAuditBenchLogEdited(dir, n, signer, edit); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	const n1, n2 = 3*verify.TileWidth + 100, 9*verify.TileWidth + 5
	_, st1, err := audit(write(n1, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	big := write(n2, nil)
	rep, st2, err := audit(big, st1)
	if err != nil {
		t.Fatal(err)
	}
	wantRep, want, err := audit(big, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.From != n1 || rep.Root != wantRep.Root || !bytes.Equal(st2.Tree, want.Tree) || !bytes.Equal(st2.Engine, want.Engine) {
		t.Errorf("resumed audit: from %d, root %s, state differs from one audit: %v", rep.From, rep.Root,
			!bytes.Equal(st2.Tree, want.Tree) || !bytes.Equal(st2.Engine, want.Engine))
	}

	// A byte of entry 600 changed in its bundle: the leaf hash is wrong.
	dir := write(n2, nil)
	name := filepath.Join(dir, "tile", "entries", "002")
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	off := 0
	for range 600 - 2*verify.TileWidth {
		off += 2 + int(binary.BigEndian.Uint16(b[off:]))
	}
	b[off+2+5] ^= 1
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = audit(dir, nil)
	if ve, ok := verify.IsVerificationError(err); !ok || ve.Evidence.Kind != verify.EvidenceBadEntry || ve.Evidence.Index == nil ||
		*ve.Evidence.Index != 600 || ve.Evidence.Tile != "tile/entries/002" {
		t.Errorf("audit with a corrupted bundle: %v", err)
	}

	// Entry 1000 is signed into the log but is not canonical.
	dir = write(n2, func(i int, e []byte) []byte {
		if i == 1000 {
			return append(e, ' ')
		}
		return e
	})
	_, _, err = audit(dir, nil)
	if ve, ok := verify.IsVerificationError(err); !ok || ve.Evidence.Kind != verify.EvidenceBadEntry || ve.Evidence.Index == nil ||
		*ve.Evidence.Index != 1000 || ve.Evidence.Tile != "" {
		t.Errorf("audit with a non-canonical entry: %v", err)
	}
}

// TestEngineMarshalStateIsJSON holds MarshalState, which writes the state
// directly for speed, to exactly what encoding/json writes for it, names
// that need escaping (or are not UTF-8) included.
func TestEngineMarshalStateIsJSON(t *testing.T) {
	p := testPolicy(t)
	odd := []string{`a"b`, "<x>", "a&b", "é", "\u2028", "\x01q", "\xff", `back\slash`}
	for seed := uint64(0); seed < 20; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		events := randomEvents(seed, 300)
		e := NewEngine(p)
		for i, x := range events {
			switch r.IntN(10) {
			case 0:
				x.Sample = odd[r.IntN(len(odd))]
			case 1:
				x.Location = odd[r.IntN(len(odd))]
			case 2:
				x.Region = odd[r.IntN(len(odd))]
			}
			e.Add(uint64(i), x)
			if i%50 != 49 {
				continue
			}
			want := engineState{Version: stateVersion, Next: e.Next(), Samples: map[string]sampleJSON{}, Counts: e.Counts()}
			for n := range e.s.n {
				st := e.s.rec(n)
				id := string(e.s.keys.get(st.key))
				sj := sampleJSON{Region: e.regList[st.region].name, First: st.first}
				if st.set != 0 {
					sj.Present = slices.Clone(e.presentNames(st))
				}
				if st.gone != 0 {
					g := st.gone - 1
					sj.Gone = &g
				}
				want.Samples[id] = sj
			}
			wantJSON, err := json.Marshal(want)
			if err != nil {
				t.Fatal(err)
			}
			got, err := e.MarshalState()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, wantJSON) {
				t.Fatalf("seed %d, %d events: MarshalState\n%s\nencoding/json\n%s", seed, i+1, got, wantJSON)
			}
		}
	}
}
