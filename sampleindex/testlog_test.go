package sampleindex

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/custodylog/custody/record"
	"github.com/transparency-dev/merkle/compact"
	"golang.org/x/mod/sumdb/tlog"
)

// testLog is a log kept with golang.org/x/mod/sumdb/tlog (independent of
// custody's tree code): its entries, its stored hashes and each sample's
// entry indexes.
type testLog struct {
	entries [][]byte
	stored  []tlog.Hash
	bySamp  map[string][]uint64
	changes []Change // one per entry, not yet given to a Map
}

func newTestLog() *testLog { return &testLog{bySamp: map[string][]uint64{}} }

var testTime = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

// testEntry returns the canonical bytes of a valid log entry of sample,
// distinct for each i.
func testEntry(sample string, i int) []byte {
	e := record.Event{
		Sample: sample, Action: record.Stored, Location: "de-fra-1", Region: "EU",
		Time: testTime, Logged: testTime.Add(time.Duration(i) * time.Second), Actor: "test",
		Note: fmt.Sprintf("event %d", i),
	}
	if err := e.Validate(); err != nil {
		panic(err)
	}
	return e.Canonical()
}

func (l *testLog) append(sample string) {
	n := int64(len(l.entries))
	data := testEntry(sample, int(n))
	hs, err := tlog.StoredHashes(n, data, l)
	if err != nil {
		panic(err)
	}
	l.entries = append(l.entries, data)
	l.stored = append(l.stored, hs...)
	l.bySamp[sample] = append(l.bySamp[sample], uint64(n))
	l.changes = append(l.changes, Change{Key: KeyOf(sample), Index: uint64(n), LeafHash: EntryLeafHash(data)})
}

// ReadHashes implements tlog.HashReader.
func (l *testLog) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		if x < 0 || x >= int64(len(l.stored)) {
			return nil, fmt.Errorf("no stored hash %d", x)
		}
		out[i] = l.stored[x]
	}
	return out, nil
}

func (l *testLog) size() uint64 { return uint64(len(l.entries)) }

func (l *testLog) root(t testing.TB, size uint64) Hash {
	h, err := tlog.TreeHash(int64(size), l)
	if err != nil {
		t.Fatal(err)
	}
	return Hash(h)
}

// nodes is the log's NodeFunc.
func (l *testLog) nodes(ctx context.Context, ids []compact.NodeID) ([][]byte, error) {
	out := make([][]byte, len(ids))
	for i, id := range ids {
		h, err := l.ReadHashes([]int64{tlog.StoredHashIndex(int(id.Level), int64(id.Index))})
		if err != nil {
			return nil, err
		}
		out[i] = h[0][:]
	}
	return out, nil
}

func (l *testLog) readEntries(ctx context.Context, idx []uint64) ([][]byte, error) {
	out := make([][]byte, len(idx))
	for i, x := range idx {
		out[i] = l.entries[x]
	}
	return out, nil
}

// flushChanges gives the pending changes to m and returns the new root.
func (l *testLog) flushChanges(t testing.TB, m *Map) Hash {
	t.Helper()
	r, err := m.Update(context.Background(), l.changes)
	if err != nil {
		t.Fatal(err)
	}
	l.changes = nil
	return r
}

// prove returns the encoded proof of sample since at the map's size.
func (l *testLog) prove(t testing.TB, m *Map, sample string, since uint64) []byte {
	t.Helper()
	p, err := m.ProveSample(context.Background(), sample, since, l.bySamp[sample], l.readEntries, l.nodes)
	if err != nil {
		t.Fatalf("proving %q since %d: %v", sample, since, err)
	}
	return p.Marshal()
}

// trusted returns the checkpoint values at the map's size.
func (l *testLog) trusted(t testing.TB, m *Map) Trusted {
	r, err := m.Root(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return Trusted{Size: m.Size(), LogRoot: l.root(t, m.Size()), MapRoot: r}
}

// entrySample is Request.EntrySample for custody's entries.
func entrySample(entry []byte) (string, error) {
	e, err := record.DecodeEntry(entry)
	return e.Sample, err
}

func req(sample string, since uint64) Request {
	return Request{Sample: sample, Since: since, EntrySample: entrySample}
}

// TestCheckSampleMatchesRecord: the proof parser accepts exactly the
// sample identifiers record accepts.
func TestCheckSampleMatchesRecord(t *testing.T) {
	cases := []string{"", "a", "sha256:2c26b46b68ffc68ff99b453c1d304134", "a b", "é", "a/b", "A.Z_0-9:x", "\x00", "~"}
	cases = append(cases, string(make([]byte, 129)), strings.Repeat("x", 128), strings.Repeat("x", 129))
	for c := 0; c < 256; c++ {
		cases = append(cases, "x"+string(rune(c)))
	}
	for _, s := range cases {
		if (checkSample(s) == nil) != (record.CheckSample(s) == nil) {
			t.Errorf("%q: checkSample %v, record.CheckSample %v", s, checkSample(s), record.CheckSample(s))
		}
	}
}
