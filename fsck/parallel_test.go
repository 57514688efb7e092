package fsck

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/store/sqlite"
	"github.com/custodylog/custody/store/sqlite/sqlitetest"
	"github.com/custodylog/custody/verify"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/mod/sumdb/note"
)

// checkWith runs Check with the given number of workers, or refCheck
// (the implementation before the parallel one) when workers is 0.
func checkWith(t *testing.T, path string, v note.Verifier, opts Options, workers int) *Report {
	t.Helper()
	st, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	check := Check
	if workers == 0 {
		check = refCheck
	}
	opts.Workers = workers
	rep, err := check(context.Background(), st, v, opts)
	if err != nil {
		t.Fatalf("Check(workers %d) error: %v", workers, err)
	}
	return rep
}

// TestCheckSameReport damages a log in many ways at once (entries,
// tiles of two levels, checkpoints, checkpoints kept elsewhere) and
// (one rollback only: refCheck lists several in random order) and
// checks that Check's report, with any number of workers, is the one the
// implementation before it (refCheck) gives, problem for problem and in
// the same order.
func TestCheckSameReport(t *testing.T) {
	const n = 65536 + 300
	path, v, cp := newLog(t, n, 7000)
	bad := sha256.Sum256([]byte("not a node hash"))
	for _, q := range []struct {
		q    string
		args []any
	}{
		{"UPDATE entries SET sample = 'another sample' WHERE idx = 100", nil},
		{"UPDATE entries SET identity = ? WHERE idx = 200", []any{bad[:]}},
		{"UPDATE entries SET leaf_hash = ? WHERE idx = 250", []any{bad[:]}},
		{"UPDATE entries SET data = CAST(data || ' ' AS BLOB) WHERE idx = 300", nil},
		{"UPDATE entries SET data = CAST('{}' AS BLOB) WHERE idx = 65535", nil},
		{"UPDATE entries SET sample = 'x', identity = ? WHERE idx = 65800", []any{bad[:]}},
		{"UPDATE tiles SET data = CAST(? || substr(data, 33) AS BLOB) WHERE level = 0 AND idx = 5", []any{bad[:]}},
		{"DELETE FROM tiles WHERE level = 0 AND idx = 7", nil},
		{"UPDATE tiles SET data = CAST(data || ? AS BLOB) WHERE level = 1 AND idx = 1", []any{bad[:]}},
		{"INSERT INTO tiles (level, idx, data) VALUES (0, 999, ?)", []any{bad[:]}},
		{"UPDATE checkpoints SET root = ? WHERE size = 14000", []any{bad[:]}},
	} {
		sqlitetest.Exec(t, path, q.q, q.args...)
	}
	known := func(size uint64, root store.Hash) verify.Checkpoint {
		return verify.Checkpoint{Origin: v.Name(), Size: size, Root: root}
	}
	opts := Options{Known: []verify.Checkpoint{known(cp.Size+10, cp.Root), known(7000, bad), known(512, bad)}}
	want := checkWith(t, path, v, opts, 0)
	if len(want.Problems) < 20 {
		t.Fatalf("the reference found only %d problems: %+v", len(want.Problems), want.Problems)
	}
	for _, workers := range []int{1, 2, 5} {
		got := checkWith(t, path, v, opts, workers)
		// refCheck predates the sample index: its problems (the damaged
		// entries change the map roots) are left out here and checked by
		// TestCheckSampleMap.
		got.Problems = slices.DeleteFunc(got.Problems, func(p Problem) bool {
			return p.Kind == KindSampleMapRoot || p.Kind == KindSampleMapTile
		})
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Check(workers %d) report differs from the reference (-want +got):\n%s", workers, diff)
		}
	}
}

// damageIndexRecord changes the entry index of the first record of the
// first run of table (0 identity, 1 leaf hash, 2 sample) of the SQLite
// index beside path, and returns the entry that record listed. (The
// record format is store/runindex's: mixed key, entry index; big endian.)
func damageIndexRecord(t *testing.T, path string, table, record int) uint64 {
	t.Helper()
	dir := path + ".idx"
	b, err := os.ReadFile(filepath.Join(dir, "MANIFEST"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Runs []struct {
			Table int
			Seq   uint64
		}
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, r := range m.Runs {
		if r.Table != table {
			continue
		}
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("%d-%016d.run", r.Table, r.Seq)), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var v [8]byte
		if _, err := f.ReadAt(v[:], int64(16*record+8)); err != nil {
			t.Fatal(err)
		}
		idx := binary.BigEndian.Uint64(v[:])
		binary.BigEndian.PutUint64(v[:], idx^1<<50)
		if _, err := f.WriteAt(v[:], int64(16*record+8)); err != nil {
			t.Fatal(err)
		}
		return idx
	}
	t.Fatalf("no run of table %d in %s", table, dir)
	return 0
}

// TestCheckFindsIndexDamage damages a record of each of the SQLite
// store's on-disk indexes and checks that Check reports the entry the
// record listed, with the lookup's kind, and nothing else.
func TestCheckFindsIndexDamage(t *testing.T) {
	path, v, _ := newLog(t, 20000, 5000)
	var want []Problem
	for table, kind := range []Kind{KindIdentityIndex, KindLeafIndex, KindSampleIndex} {
		idx := damageIndexRecord(t, path, table, 100*table+7)
		want = append(want, Problem{Kind: kind, Where: fmt.Sprintf("entry %d", idx)})
	}
	rep := check(t, path, v, Options{})
	if len(rep.Problems) != len(want) {
		t.Fatalf("problems %+v, want %d: %+v", rep.Problems, len(want), want)
	}
	for _, w := range want {
		wantProblem(t, rep, w.Kind, w.Where, "not listed for")
	}
}
