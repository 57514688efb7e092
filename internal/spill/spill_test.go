package spill

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// writeRun writes the records of m (sorted by key) as a new run.
func writeRun(t *testing.T, s *Store, m map[string]string) {
	t.Helper()
	w, err := s.NewWriter(int64(len(m)))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if err := w.Add([]byte(k), []byte(m[k])); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Finish(); err != nil {
		t.Fatal(err)
	}
}

// TestStoreAgainstMap writes many runs of random keys (overwriting older
// values, with keys that share long prefixes and keys long enough to span
// blocks) and checks Get and Iter against a map of the newest values,
// through the merges that keep the runs few; then Close removes
// everything.
func TestStoreAgainstMap(t *testing.T) {
	parent := t.TempDir()
	s, err := New(filepath.Join(parent, "sub")) // made if missing
	if err != nil {
		t.Fatal(err)
	}
	s.FilterBudget = 16 << 10 // small: the filters thin out as the store grows
	r := rand.New(rand.NewPCG(1, 2))
	want := map[string]string{}
	key := func() string {
		switch r.IntN(20) {
		case 0:
			return strings.Repeat("k", 5000+r.IntN(100)) // longer than a block
		case 1:
			return fmt.Sprintf("x%d", r.IntN(50))
		}
		return fmt.Sprintf("bench-5f2a9c01d3e4-%d", r.IntN(30000))
	}
	for run := range 40 {
		m := map[string]string{}
		for range 200 + r.IntN(2000) {
			k := key()
			m[k] = fmt.Sprintf("v%d-%s", run, strings.Repeat("z", r.IntN(30)))
		}
		writeRun(t, s, m)
		maps.Copy(want, m)
		if s.Runs() > 3*4 {
			t.Fatalf("after %d spills: %d runs", run+1, s.Runs())
		}
	}
	for k, v := range want {
		got, ok, err := s.Get(k, Hash(k))
		if err != nil || !ok || string(got) != v {
			t.Fatalf("Get(%.40q) = %.40q, %v, %v; want %.40q", k, got, ok, err, v)
		}
	}
	for i := range 2000 {
		k := fmt.Sprintf("absent-%d", i)
		if _, ok, err := s.Get(k, Hash(k)); ok || err != nil {
			t.Fatalf("Get(%q) = %v, %v", k, ok, err)
		}
	}
	it := s.Iter()
	var keys []string
	for it.Next() {
		k := string(it.Key())
		if want[k] != string(it.Value()) {
			t.Fatalf("Iter: %.40q = %.40q, want %.40q", k, it.Value(), want[k])
		}
		keys = append(keys, k)
	}
	if it.Err() != nil || !slices.Equal(keys, slices.Sorted(maps.Keys(want))) {
		t.Fatalf("Iter gave %d keys (err %v), want the %d keys in order", len(keys), it.Err(), len(want))
	}
	var filters int64
	for _, r := range s.runs {
		filters += int64(len(r.bloom)) * 8
	}
	if filters > s.FilterBudget+s.Records()*minBitsPerKey/8+int64(s.Runs())*64 || filters < s.FilterBudget/2 {
		t.Errorf("filters hold %d bytes for %d records; want about the budget, %d", filters, s.Records(), s.FilterBudget)
	}
	files, _ := filepath.Glob(filepath.Join(s.Dir(), "*"))
	for _, f := range files {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v; want 0600", f, fi.Mode(), err)
		}
	}
	if fi, err := os.Stat(s.Dir()); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("%s: %v; want mode 0700", s.Dir(), err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(parent, "sub", "*")); len(left) != 0 {
		t.Errorf("Close left %v", left)
	}
}

// TestMergeDrop: a key that Drop claims is left out of merged runs, and
// other keys keep their newest value.
func TestMergeDrop(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Drop = func(k []byte) bool { return string(k) == "b" }
	for i := range 4 {
		writeRun(t, s, map[string]string{"a": fmt.Sprint(i), "b": fmt.Sprint(i), fmt.Sprint("c", i): "x"})
	}
	if s.Runs() != 1 || s.Records() != 5 {
		t.Fatalf("after 4 runs of one level: %d runs, %d records; want 1 merged run of a, c0..c3", s.Runs(), s.Records())
	}
	if v, ok, _ := s.Get("a", Hash("a")); !ok || string(v) != "3" {
		t.Errorf("a = %q, %v; want the newest, 3", v, ok)
	}
	if _, ok, _ := s.Get("b", Hash("b")); ok {
		t.Error("b was not dropped")
	}
}

// TestWriterOrder: keys must increase.
func TestWriterOrder(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w, err := s.NewWriter(2)
	if err != nil {
		t.Fatal(err)
	}
	w.Add([]byte("b"), nil)
	if err := w.Add([]byte("a"), nil); err == nil || !strings.Contains(err.Error(), "must increase") {
		t.Errorf("Add out of order: %v", err)
	}
	if err := w.Finish(); err == nil || s.Runs() != 0 {
		t.Errorf("Finish after a failed Add: %v, %d runs", err, s.Runs())
	}
}

// TestNewRemovesStale: New removes store directories that have not
// changed for a day (left by a crash) and leaves newer ones and other
// files alone.
func TestNewRemovesStale(t *testing.T) {
	parent := t.TempDir()
	stale, live, other := filepath.Join(parent, dirPrefix+"1"), filepath.Join(parent, dirPrefix+"2"), filepath.Join(parent, "spill-3")
	for _, d := range []string{stale, live, other} {
		if err := os.MkdirAll(filepath.Join(d, "x"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	dayAgo := time.Now().Add(-25 * time.Hour)
	for _, d := range []string{stale, other} {
		os.Chtimes(d, dayAgo, dayAgo)
	}
	s, err := New(parent)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := os.Stat(stale); err == nil {
		t.Error("a day-old store directory was not removed")
	}
	for _, d := range []string{live, other} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s: %v", d, err)
		}
	}
}
