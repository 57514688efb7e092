package storetest

import (
	"cmp"
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/custodylog/custody/store"
)

// RunIndexCheck is the conformance suite of store.IndexChecker, for the
// backends that implement it; their tests call it next to Run, with the
// same open and reopen.
//
// It grows a log, reopens the store (so that a backend keeping part of
// its index in memory writes it out) and grows it again, then checks
// that an IndexCheck fed every entry, in pages added concurrently and in
// no particular order, finds nothing missing; and that one fed only some
// of the entries finds nothing missing either. Damaging each backend's
// own index, and checking that the misses are found, is for the
// backend's tests.
func RunIndexCheck(t *testing.T, open func(t *testing.T) store.Store, reopen func(t *testing.T, old store.Store) store.Store) {
	ctx := context.Background()
	s, m := genesis(t, open)
	if _, ok := s.(store.IndexChecker); !ok {
		t.Fatalf("%T does not implement store.IndexChecker", s)
	}
	m.grow(t, s, "index", 7, 300, 1, 1000)
	s = reopen(t, s)
	m.grow(t, s, "index-tail", 50, 3)
	entries, err := s.Entries(ctx, 0, m.size())
	if err != nil {
		t.Fatalf("Entries(0, %d) error: %v", m.size(), err)
	}
	if diff := diffEntries(m.entries, entries); diff != "" {
		t.Fatalf("Entries(0, %d): %s", m.size(), diff)
	}
	for _, tt := range []struct {
		name string
		keep func(i int) bool
	}{
		{"every entry", func(int) bool { return true }},
		{"every third entry", func(i int) bool { return i%3 == 0 }},
		{"the first 100", func(i int) bool { return i < 100 }},
		{"none", func(int) bool { return false }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var pages [][]store.Entry
			var page []store.Entry
			for i, e := range entries {
				if tt.keep(i) {
					e.Data = nil // unused by Add
					page = append(page, e)
				}
				if len(page) == 37 || i == len(entries)-1 {
					pages = append(pages, page)
					page = nil
				}
			}
			rand.Shuffle(len(pages), func(i, j int) { pages[i], pages[j] = pages[j], pages[i] })
			ic, err := s.(store.IndexChecker).NewIndexCheck(ctx)
			if err != nil {
				t.Fatalf("NewIndexCheck() error: %v", err)
			}
			var wg sync.WaitGroup
			for w := range 2 {
				wg.Go(func() {
					for i := w; i < len(pages); i += 2 {
						if err := ic.Add(ctx, pages[i]); err != nil {
							t.Errorf("Add(entries %d...) error: %v", pages[i][0].Index, err)
						}
					}
				})
			}
			wg.Wait()
			misses, err := ic.Finish(ctx)
			if err != nil {
				t.Fatalf("Finish() error: %v", err)
			}
			if len(misses) != 0 {
				t.Errorf("Finish() of a sound store = %d misses, first %+v; want none", len(misses), misses[:min(len(misses), 5)])
			}
		})
	}
}

// CheckIndexMisses runs an IndexCheck of every entry of s and returns
// its misses, sorted, for the backends' tests of a damaged index.
func CheckIndexMisses(t *testing.T, s store.Store) []store.IndexMiss {
	t.Helper()
	ctx := context.Background()
	ic, err := s.(store.IndexChecker).NewIndexCheck(ctx)
	if err != nil {
		t.Fatalf("NewIndexCheck() error: %v", err)
	}
	for from := uint64(0); ; from += 500 {
		es, err := s.Entries(ctx, from, from+500)
		if err != nil {
			t.Fatalf("Entries(%d, %d) error: %v", from, from+500, err)
		}
		if err := ic.Add(ctx, es); err != nil {
			t.Fatalf("Add(entries from %d) error: %v", from, err)
		}
		if len(es) < 500 {
			break
		}
	}
	misses, err := ic.Finish(ctx)
	if err != nil {
		t.Fatalf("Finish() error: %v", err)
	}
	if !slices.IsSortedFunc(misses, func(a, b store.IndexMiss) int {
		return cmp.Or(cmp.Compare(a.Index, b.Index), cmp.Compare(a.Lookup, b.Lookup))
	}) {
		t.Errorf("Finish() = %v, not in index then lookup order", misses)
	}
	return misses
}
