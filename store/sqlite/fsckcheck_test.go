package sqlite

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/store/storetest"
)

func reopenIndexCheck(t *testing.T, old store.Store) store.Store {
	t.Helper()
	path := old.(*Store).path
	if err := old.Close(); err != nil {
		t.Fatalf("Close() error: %v", err)
	}
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open(%s) again error: %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestIndexCheckConformance(t *testing.T) {
	storetest.RunIndexCheck(t, func(t *testing.T) store.Store { return openTemp(t) }, reopenIndexCheck)
}

// grow appends n entries to s in batches of 1000.
func grow(t *testing.T, s *Store, g *storetest.BenchLog, n int) {
	t.Helper()
	for done := 0; done < n; done += 1000 {
		b := g.Batch(min(1000, n-done), "indexcheck")
		if err := s.Append(t.Context(), b); err != nil {
			t.Fatalf("Append() error: %v", err)
		}
		g.Apply(b)
	}
}

// grownLog returns the path of a closed log of n entries (so that its
// index is all in run files), and the log.
func grownLog(t *testing.T, n int) (string, *storetest.BenchLog) {
	t.Helper()
	s := openTemp(t)
	g := &storetest.BenchLog{}
	if err := s.Append(t.Context(), g.Genesis()); err != nil {
		t.Fatalf("Append(genesis) error: %v", err)
	}
	grow(t, s, g, n)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return s.path, g
}

// runFile returns the path of the first run file of table t named by
// the MANIFEST of the index in dir.
func runFile(t *testing.T, dir string, table int) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "MANIFEST"))
	if err != nil {
		t.Fatal(err)
	}
	var m indexManifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, r := range m.Runs {
		if r.Table == table {
			return filepath.Join(dir, fmt.Sprintf("%d-%016d.run", r.Table, r.Seq))
		}
	}
	t.Fatalf("no run of table %d in %s", table, dir)
	return ""
}

// TestIndexCheckFindsDamage changes the entry index of a record of a run
// file, as a damaged disk or a tamperer would, and checks that the entry
// it listed is reported missing from that lookup's index, and nothing
// else; by the Store that owns the index and by a second Store of the
// same file (as fsck next to a running server).
func TestIndexCheckFindsDamage(t *testing.T) {
	const n = 3000
	for _, tt := range []struct {
		table  int
		lookup store.Lookup
	}{
		{tableIdentity, store.LookupIdentity},
		{tableLeaf, store.LookupLeafHash},
		{tableSample, store.LookupSample},
	} {
		for _, rec := range []int{0, 1234, n - 1} {
			t.Run(fmt.Sprintf("%v record %d", tt.lookup, rec), func(t *testing.T) {
				path, _ := grownLog(t, n)
				run := runFile(t, indexDir(path), tt.table)
				f, err := os.OpenFile(run, os.O_RDWR, 0)
				if err != nil {
					t.Fatal(err)
				}
				var v [8]byte
				if _, err := f.ReadAt(v[:], int64(16*rec+8)); err != nil {
					t.Fatal(err)
				}
				idx := binary.BigEndian.Uint64(v[:])
				binary.BigEndian.PutUint64(v[:], idx+1<<40)
				if _, err := f.WriteAt(v[:], int64(16*rec+8)); err != nil {
					t.Fatal(err)
				}
				f.Close()
				want := []store.IndexMiss{{Index: idx, Lookup: tt.lookup}}

				owner, err := Open(path)
				if err != nil {
					t.Fatal(err)
				}
				defer owner.Close()
				if owner.idx.disk == nil {
					t.Fatal("the first Store of the file does not own its index")
				}
				if got := storetest.CheckIndexMisses(t, owner); !slices.Equal(got, want) {
					t.Errorf("owner: misses %v, want %v", got, want)
				}
				other, err := Open(path)
				if err != nil {
					t.Fatal(err)
				}
				defer other.Close()
				if other.idx.disk != nil {
					t.Fatal("the second Store of the file owns its index")
				}
				if got := storetest.CheckIndexMisses(t, other); !slices.Equal(got, want) {
					t.Errorf("second Store: misses %v, want %v", got, want)
				}
			})
		}
	}
}

// TestIndexCheckTail checks a log whose newest entries the owner's index
// holds only in memory, and entries another Store appended: the owner
// finds them all, and a second Store checks the rest.
func TestIndexCheckTail(t *testing.T) {
	path, g := grownLog(t, 2000)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	other, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	grow(t, s, g, 1500)
	grow(t, other, g, 700) // not yet in s's index
	for _, st := range []*Store{s, other} {
		if got := storetest.CheckIndexMisses(t, st); len(got) != 0 {
			t.Errorf("misses %v in a sound log", got)
		}
	}
}
