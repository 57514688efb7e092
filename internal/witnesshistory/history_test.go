package witnesshistory

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custodylog/custody/activity"
	"github.com/custodylog/custody/internal/svgchart"
	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

var day0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// memStore is a Source and Aggregator in memory that counts its reads.
type memStore struct {
	mu      sync.Mutex
	cps     []store.Checkpoint // by size
	calls   int                // Checkpoints and Checkpoint calls
	rows    int                // checkpoints returned
	aggs    map[string][]byte
	aggSize map[string]uint64
}

func (m *memStore) Checkpoints(ctx context.Context, from uint64, limit int) ([]store.Checkpoint, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	var out []store.Checkpoint
	for _, c := range m.cps {
		if c.Size >= from && len(out) < limit {
			out = append(out, c)
		}
	}
	m.rows += len(out)
	return out, nil
}

func (m *memStore) Checkpoint(ctx context.Context, size uint64) (store.Checkpoint, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	for _, c := range m.cps {
		if c.Size == size {
			m.rows++
			return c, nil
		}
	}
	return store.Checkpoint{}, store.ErrNotFound
}

func (m *memStore) SaveAggregate(ctx context.Context, name string, size uint64, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.aggs == nil {
		m.aggs, m.aggSize = map[string][]byte{}, map[string]uint64{}
	}
	m.aggs[name], m.aggSize[name] = slices.Clone(data), size
	return nil
}

func (m *memStore) LoadAggregate(ctx context.Context, name string) (uint64, []byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.aggs[name]
	if !ok {
		return 0, nil, store.ErrNotFound
	}
	return m.aggSize[name], d, nil
}

func (m *memStore) reads() (calls, rows int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls, m.rows
}

// fixture is a log key, witnesses with settable clocks, and a store.
type fixture struct {
	logSigner note.Signer
	logV      note.Verifier
	names     []string
	signers   []note.Signer
	vs        []note.Verifier
	now       time.Time
	st        *memStore
}

func newFixture(t testing.TB, witnesses int) *fixture {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, "history.test/log")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: &memStore{}}
	f.logSigner, _ = note.NewSigner(skey)
	f.logV, _ = note.NewVerifier(vkey)
	for i := 0; i < witnesses; i++ {
		name := fmt.Sprintf("witness-%c.test", 'a'+i)
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		f.names = append(f.names, name)
		f.signers = append(f.signers, verify.NewCosignatureSigner(name, priv, func() time.Time { return f.now }))
		v, err := verify.NewCosignatureVerifier(verify.CosignatureVKey(name, priv.Public().(ed25519.PublicKey)))
		if err != nil {
			t.Fatal(err)
		}
		f.vs = append(f.vs, v)
	}
	return f
}

// commit stores a checkpoint of the next size at time at, cosigned by the
// witnesses whose indexes are given.
func (f *fixture) commit(t testing.TB, at time.Time, by ...int) store.Checkpoint {
	t.Helper()
	size := uint64(len(f.st.cps)) * 10
	root := sha256.Sum256([]byte(fmt.Sprint(size)))
	text := fmt.Sprintf("history.test/log\n%d\n%s\n", size, base64.StdEncoding.EncodeToString(root[:]))
	f.now = at
	signers := []note.Signer{f.logSigner}
	for _, i := range by {
		signers = append(signers, f.signers[i])
	}
	msg, err := note.Sign(&note.Note{Text: text}, signers...)
	if err != nil {
		t.Fatal(err)
	}
	cp := store.Checkpoint{Size: size, Root: root, Note: msg}
	f.st.mu.Lock()
	f.st.cps = append(f.st.cps, cp)
	f.st.mu.Unlock()
	return cp
}

func (f *fixture) history(t testing.TB, known ...int) *History {
	t.Helper()
	var vs []note.Verifier
	for _, i := range known {
		vs = append(vs, f.vs[i])
	}
	h, err := New(Config{Source: f.st, Aggregates: f.st, Log: f.logV, Witnesses: vs, Page: 100, Now: func() time.Time { return day0.AddDate(1, 0, 0) }})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func catchUp(t testing.TB, h *History) {
	t.Helper()
	for {
		n, err := h.Step(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

func byName(v View) map[string]Witness {
	out := map[string]Witness{}
	for _, w := range v.Witnesses {
		out[w.Name] = w
	}
	return out
}

// TestStoppedWitnessShowsAsGap: two witnesses cosign a checkpoint every
// six hours for ten days; the second stops after day 5. Its days end
// there, its last cosignature is its last, and the strip drawn from the
// view has gaps on the days after, where the first went on.
func TestStoppedWitnessShowsAsGap(t *testing.T) {
	f := newFixture(t, 2)
	var lastB time.Time
	for h := 0; h < 10*24; h += 6 {
		at := day0.Add(time.Duration(h)*time.Hour + 17*time.Minute)
		if h < 6*24 {
			f.commit(t, at, 0, 1)
			lastB = at
		} else {
			f.commit(t, at, 0)
		}
	}
	h := f.history(t, 0, 1)
	catchUp(t, h)
	from, to := day0, day0.AddDate(0, 0, 12)
	v := h.View(from, to, activity.Daily)
	ws := byName(v)
	a, b := ws["witness-a.test"], ws["witness-b.test"]
	if len(a.Marked) != 10 || len(b.Marked) != 6 || !a.Known || !b.Known {
		t.Fatalf("witness a cosigned on %d days, b on %d; want 10 and 6 (known %v %v)", len(a.Marked), len(b.Marked), a.Known, b.Known)
	}
	if b.Last != lastB || b.Cosigned != 24 || a.Cosigned != 40 {
		t.Errorf("b's last cosignature %v (want %v), b cosigned %d (want 24), a %d (want 40)", b.Last, lastB, b.Cosigned, a.Cosigned)
	}
	if len(v.Active) != 10 || v.Checkpoints != 40 {
		t.Errorf("%d active days, %d checkpoints; want 10, 40", len(v.Active), v.Checkpoints)
	}
	rows := []svgchart.StripRow{{Name: a.Name, Marked: a.Marked}, {Name: b.Name, Marked: b.Marked}}
	lay := svgchart.LayoutStrip(svgchart.StripInput{From: from, To: to, Bucket: 24 * time.Hour, Rows: rows, Active: v.Active})
	for d, c := range lay.Cells[1] {
		want := svgchart.CellCosigned
		if d >= 6 && d < 10 {
			want = svgchart.CellMissed
		} else if d >= 10 {
			want = svgchart.CellIdle
		}
		if c != want {
			t.Errorf("witness b, day %d: cell %d, want %d", d, c, want)
		}
	}
	// Hourly, over the last day: a has its four hours, b none.
	hv := h.View(day0.AddDate(0, 0, 9), day0.AddDate(0, 0, 10), activity.Hourly)
	if hv.Resolution != activity.Hourly || len(byName(hv)["witness-a.test"].Marked) != 4 || len(byName(hv)["witness-b.test"].Marked) != 0 {
		t.Errorf("hourly view: resolution %v, a %v, b %v", hv.Resolution, byName(hv)["witness-a.test"].Marked, byName(hv)["witness-b.test"].Marked)
	}
	// Hours older than the hourly window are shown as days.
	if r := h.View(day0, day0.Add(24*time.Hour), activity.Hourly).Resolution; r != activity.Hourly {
		// ten days is within the window of fourteen: still hourly
		t.Errorf("a range within the hourly window is shown by %v", r)
	}
}

// TestRestartRestoresWithoutRereading: a history saved after reading 2,000
// checkpoints and loaded by a new History reads one checkpoint to check
// the save and then only those stored since, and shows the same.
func TestRestartRestoresWithoutRereading(t *testing.T) {
	f := newFixture(t, 1)
	for i := 0; i < 2000; i++ {
		f.commit(t, day0.Add(time.Duration(i)*10*time.Minute), 0)
	}
	h := f.history(t, 0)
	catchUp(t, h)
	first, firstRows := f.st.reads()
	if first < 20 || firstRows < 2000 {
		t.Fatalf("the first read made %d calls returning %d checkpoints", first, firstRows)
	}
	if err := h.Save(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := 2000; i < 2005; i++ {
		f.commit(t, day0.Add(time.Duration(i)*10*time.Minute), 0)
	}
	f.st.calls, f.st.rows = 0, 0

	h2 := f.history(t, 0)
	size, err := h2.Load(context.Background())
	if err != nil || size != 1999*10 {
		t.Fatalf("Load: size %d, %v; want %d", size, err, 1999*10)
	}
	catchUp(t, h2)
	calls, rows := f.st.reads()
	t.Logf("2,000 checkpoints read in %d store calls (%d checkpoints returned); after the restart, 5 more in %d calls (%d returned)", first, firstRows, calls, rows)
	if calls > 3 || rows > 1+6+1 {
		t.Errorf("after the restart: %d store calls returning %d checkpoints; want at most 3 calls and 8 checkpoints", calls, rows)
	}
	catchUp(t, h)
	from, to := day0, day0.AddDate(0, 0, 30)
	v1, v2 := h.View(from, to, activity.Daily), h2.View(from, to, activity.Daily)
	v2.Restored = v1.Restored
	if !reflect.DeepEqual(v1, v2) {
		t.Errorf("restored and followed: %+v\nread from the start: %+v", v2, v1)
	}
	if v2.Checkpoints != 2005 || byName(v2)["witness-a.test"].Cosigned != 2005 {
		t.Errorf("restored history: %d checkpoints, %d cosigned; want 2005", v2.Checkpoints, byName(v2)["witness-a.test"].Cosigned)
	}
}

// TestLoadRefusesAnotherStore: a saved history whose checkpoint the store
// has with another root (the store was replaced) is not restored.
func TestLoadRefusesAnotherStore(t *testing.T) {
	f := newFixture(t, 1)
	for i := 0; i < 5; i++ {
		f.commit(t, day0.Add(time.Duration(i)*time.Hour), 0)
	}
	h := f.history(t, 0)
	catchUp(t, h)
	if err := h.Save(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.st.cps[4].Root[0] ^= 1
	h2 := f.history(t, 0)
	if size, err := h2.Load(context.Background()); size != 0 || err != nil {
		t.Errorf("Load of a history of another store: size %d, %v; want 0, nil", size, err)
	}
	// A damaged save is not restored either.
	f.st.cps[4].Root[0] ^= 1
	f.st.aggs[AggregateName][len(snapshotMagic)+3] ^= 1
	if size, err := f.history(t, 0).Load(context.Background()); size != 0 || err != nil {
		t.Errorf("Load of a damaged history: size %d, %v; want 0, nil", size, err)
	}
}

// TestNoteGainsCosignature: the newest checkpoint is read before its
// cosignature is stored; the next step finds it, and counts it once.
func TestNoteGainsCosignature(t *testing.T) {
	f := newFixture(t, 2)
	f.commit(t, day0, 0, 1)
	f.commit(t, day0.Add(time.Hour)) // not yet cosigned
	h := f.history(t, 0, 1)
	catchUp(t, h)
	if w := byName(h.View(day0, day0.AddDate(0, 0, 1), activity.Hourly)); len(w["witness-a.test"].Marked) != 1 {
		t.Fatalf("before: a marked %v", w["witness-a.test"].Marked)
	}
	// The store's newest note gains a's cosignature, then b's.
	for _, by := range [][]int{{0}, {0, 1}} {
		f.st.cps = f.st.cps[:1]
		f.commit(t, day0.Add(time.Hour), by...)
		catchUp(t, h)
	}
	v := h.View(day0, day0.AddDate(0, 0, 1), activity.Hourly)
	for _, name := range []string{"witness-a.test", "witness-b.test"} {
		if w := byName(v)[name]; w.Cosigned != 2 || len(w.Marked) != 2 {
			t.Errorf("%s: cosigned %d, marked %v; want 2 and 2 hours", name, w.Cosigned, w.Marked)
		}
	}
	if v.Checkpoints != 2 {
		t.Errorf("%d checkpoints counted, want 2", v.Checkpoints)
	}
}

// TestVerification: a known witness's forged cosignature is not kept (it
// is counted as bad); an unknown witness is kept, marked unverified; the
// log's own signature is not a cosignature.
func TestVerification(t *testing.T) {
	f := newFixture(t, 2)
	cp := f.commit(t, day0, 0, 1)
	// Forge a's signature: flip a bit of its last byte.
	lines := strings.Split(string(cp.Note), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "— witness-a.test ") {
			b64 := l[strings.LastIndexByte(l, ' ')+1:]
			raw, _ := base64.StdEncoding.DecodeString(b64)
			raw[len(raw)-1] ^= 1
			lines[i] = l[:strings.LastIndexByte(l, ' ')+1] + base64.StdEncoding.EncodeToString(raw)
		}
	}
	f.st.cps[0].Note = []byte(strings.Join(lines, "\n"))
	h := f.history(t, 0) // knows a, not b
	catchUp(t, h)
	v := h.View(day0, day0.AddDate(0, 0, 1), activity.Daily)
	ws := byName(v)
	if v.Bad != 1 || ws["witness-a.test"].Cosigned != 0 {
		t.Errorf("a forged cosignature: bad %d, a cosigned %d; want 1, 0", v.Bad, ws["witness-a.test"].Cosigned)
	}
	if b := ws["witness-b.test"]; b.Known || b.Cosigned != 1 {
		t.Errorf("unknown witness b: known %v, cosigned %d", b.Known, b.Cosigned)
	}
	if _, ok := ws["history.test/log"]; ok {
		t.Errorf("the log's signature is listed as a cosignature")
	}
}

// TestBounds: more witnesses than MaxWitnesses are kept under OtherName;
// days beyond MaxDays are dropped, oldest first; a cosignature time far in
// the future is not placed.
func TestBounds(t *testing.T) {
	f := newFixture(t, 0)
	h := f.history(t)
	h.mu.Lock()
	for i := 0; i < MaxWitnesses+10; i++ {
		w := h.witness(key{fmt.Sprintf("w%02d.test", i), uint32(i)}, false)
		w.cosigned++
		w.place(day0.Unix())
	}
	w := h.witness(key{"w00.test", 0}, false)
	for d := 0; d < MaxDays+200; d++ {
		w.cosigned++
		w.place(day0.AddDate(0, 0, d).Unix())
	}
	h.mu.Unlock()
	v := h.View(day0.AddDate(-1, 0, 0), day0.AddDate(20, 0, 0), activity.Daily)
	if len(v.Witnesses) != MaxWitnesses+1 || byName(v)[OtherName].Cosigned != 10 {
		t.Errorf("%d witnesses kept, other cosigned %d; want %d, 10", len(v.Witnesses), byName(v)[OtherName].Cosigned, MaxWitnesses+1)
	}
	if n := len(byName(v)["w00.test"].Marked); n != MaxDays {
		t.Errorf("%d days kept, want %d", n, MaxDays)
	}
	// A round trip of the bounded history.
	data, _ := h.MarshalBinary()
	s, err := unmarshalState(data)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s.marshal(), data) {
		t.Errorf("the history does not survive a round trip")
	}

	// A cosignature dated next year (the fixture's now is a year after
	// day0) plus two days is not placed.
	f2 := newFixture(t, 1)
	f2.commit(t, day0.AddDate(1, 0, 2), 0)
	h2 := f2.history(t, 0)
	catchUp(t, h2)
	if w := byName(h2.View(day0, day0.AddDate(2, 0, 0), activity.Daily))["witness-a.test"]; w.Untimed != 1 || len(w.Marked) != 0 {
		t.Errorf("a future cosignature: untimed %d, marked %v", w.Untimed, w.Marked)
	}
}

// FuzzWitnessHistory: unmarshalState never panics, and what it accepts is
// canonical (marshals back to the same bytes).
func FuzzWitnessHistory(f *testing.F) {
	fx := newFixture(f, 2)
	for i := 0; i < 30; i++ {
		fx.commit(f, day0.Add(time.Duration(i)*7*time.Hour), i%2, 1-i%2)
	}
	h := fx.history(f, 0)
	catchUp(f, h)
	data, _ := h.MarshalBinary()
	f.Add(data)
	empty, _ := fx.history(f).MarshalBinary()
	f.Add(empty)
	f.Fuzz(func(t *testing.T, data []byte) {
		// As it is, and with its checksum made right (so the fuzzer
		// reaches the fields, not just the checksum).
		fixed := data
		if len(data) >= len(snapshotMagic)+sha256.Size {
			fixed = seal(data[len(snapshotMagic) : len(data)-sha256.Size])
		}
		for _, in := range [][]byte{data, fixed} {
			s, err := unmarshalState(in)
			if err != nil {
				continue
			}
			if got := s.marshal(); !bytes.Equal(got, in) {
				t.Errorf("accepted a non-canonical history:\n%x\nmarshals to\n%x", in, got)
			}
		}
	})
}

// BenchmarkCatchUp reads 1,000 stored checkpoints, each cosigned by two
// witnesses the server knows (two signatures verified per checkpoint):
// what a first start costs per checkpoint, before the history is saved.
//
//	go test ./internal/witnesshistory -run NONE -bench CatchUp
func BenchmarkCatchUp(b *testing.B) {
	f := newFixture(b, 2)
	for i := 0; i < 1000; i++ {
		f.commit(b, day0.Add(time.Duration(i)*time.Minute), 0, 1)
	}
	for b.Loop() {
		h := f.history(b, 0, 1)
		catchUp(b, h)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "µs/checkpoint")
}
