package sampleindex

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// wantChain checks that c is exactly the sample's entries in l at indexes
// [since, size), with the right list states.
func wantChain(t *testing.T, l *testLog, c *Chain, sample string, since, size uint64) {
	t.Helper()
	var all, old []ListElement
	var want []Entry
	for _, x := range l.bySamp[sample] {
		if x >= size {
			break
		}
		all = append(all, ListElement{x, EntryLeafHash(l.entries[x])})
		if x < since {
			old = append(old, all[len(all)-1])
		} else {
			want = append(want, Entry{x, l.entries[x]})
		}
	}
	if len(all) == 0 {
		if !c.Absent() || len(c.Entries) != 0 {
			t.Fatalf("%q at %d: chain %d entries, absent %v; want a verified absence", sample, size, len(c.Entries), c.Absent())
		}
		return
	}
	if c.List != (ListState{uint64(len(all)), refListRoot(all)}) {
		t.Fatalf("%q at %d: list %+v, want %d elements", sample, size, c.List, len(all))
	}
	wantOld := ListState{}
	if len(old) > 0 {
		wantOld = ListState{uint64(len(old)), refListRoot(old)}
	}
	if err := c.Extends(wantOld); err != nil {
		t.Fatalf("%q at %d since %d: %v", sample, size, since, err)
	}
	if !slices.EqualFunc(c.Entries, want, func(a, b Entry) bool { return a.Index == b.Index && string(a.Data) == string(b.Data) }) {
		t.Fatalf("%q at %d since %d: %d entries, want %d", sample, size, since, len(c.Entries), len(want))
	}
}

// TestSampleProofs builds a log whose special samples have 1, 2, 255,
// 256, 257 and 3000 events among many others, and at checkpoints of many
// sizes proves and verifies each special sample's whole chain, its chain
// since earlier sizes, and absences.
func TestSampleProofs(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 13))
	counts := map[string]int{"one": 1, "two": 2, "s-255": 255, "s-256": 256, "s-257": 257, "thousands": 3000}
	var order []string
	for s, n := range counts {
		for range n {
			order = append(order, s)
		}
	}
	for i := range 1500 {
		order = append(order, fmt.Sprintf("filler-%d", i%700))
	}
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	l := newTestLog()
	store := NewMemTiles()
	m := Open(store, 0, &Options{CacheTiles: 64})
	var sizes []uint64
	kinds := map[ProofKind]int{}
	check := func() {
		tr := l.trusted(t, m)
		sinces := []uint64{0, tr.Size / 2, tr.Size}
		for _, s := range sizes {
			if rng.IntN(4) == 0 {
				sinces = append(sinces, s)
			}
		}
		for s := range counts {
			for _, since := range sinces {
				data := l.prove(t, m, s, since)
				c, err := Verify(data, req(s, since), tr)
				if err != nil {
					t.Fatalf("%q at size %d since %d: %v", s, tr.Size, since, err)
				}
				wantChain(t, l, c, s, since, tr.Size)
			}
		}
		for i := range 8 {
			s := fmt.Sprintf("never-%d", i)
			data := l.prove(t, m, s, 0)
			p, err := ParseProof(data)
			if err != nil {
				t.Fatal(err)
			}
			kinds[p.Map.Kind]++
			c, err := Verify(data, req(s, 0), tr)
			if err != nil {
				t.Fatalf("absence of %q at %d: %v", s, tr.Size, err)
			}
			wantChain(t, l, c, s, 0, tr.Size)
		}
		sizes = append(sizes, tr.Size)
	}
	check() // the empty log
	for len(l.entries) < len(order) {
		n := 1 + rng.IntN(400)
		for range n {
			if len(l.entries) == len(order) {
				break
			}
			l.append(order[len(l.entries)])
		}
		l.flushChanges(t, m)
		if rng.IntN(3) == 0 {
			if err := m.Flush(ctx, store.WriteTiles); err != nil {
				t.Fatal(err)
			}
		}
		check()
	}
	if kinds[AbsentEmpty] == 0 || kinds[AbsentOther] == 0 || kinds[Member] != 0 {
		t.Errorf("absence proofs of kinds %v, want both absence kinds", kinds)
	}
}

// TestVerifyRejects edits honest proofs the ways a lying server would
// and checks that Verify names the check that fails.
func TestVerifyRejects(t *testing.T) {
	l := newTestLog()
	m := Open(NewMemTiles(), 0, nil)
	for i := range 300 {
		l.append([]string{"a", "b", "c", "d", "e"}[i%5])
		if i%2 == 0 {
			l.append(fmt.Sprintf("x-%d", i))
		}
	}
	l.flushChanges(t, m)
	tr := l.trusted(t, m)
	parse := func(b []byte) *Proof {
		p, err := ParseProof(b)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	honest := parse(l.prove(t, m, "a", 0))
	since := parse(l.prove(t, m, "a", 200))
	absent := parse(l.prove(t, m, "zz", 0))
	otherEntry := l.entries[l.bySamp["b"][3]]
	// refit recomputes the list state, map proof and inclusion proof the
	// way a server would to hide the edit from the first checks.
	refit := func(p *Proof) {
		var rng []Hash
		var idx []uint64
		for i, e := range p.Entries {
			rng = rangeAppend(rng, uint64(i), ListLeafHash(e.Index, EntryLeafHash(e.Data)))
			idx = append(idx, e.Index)
		}
		p.List = ListState{uint64(len(p.Entries)), rangeRoot(rng)}
		p.Map.List = p.List
		incl, err := ProveBatchInclusion(context.Background(), p.Size, idx, l.nodes)
		if err == nil {
			p.Inclusion = incl
		}
	}
	for _, tc := range []struct {
		name   string
		base   *Proof
		edit   func(p *Proof, tr *Trusted)
		sample string
		want   error
	}{
		{"one event dropped", honest, func(p *Proof, _ *Trusted) { p.Entries = slices.Delete(p.Entries, 10, 11) }, "a", ErrDroppedEntry},
		{"one event dropped, list refitted", honest, func(p *Proof, _ *Trusted) { p.Entries = slices.Delete(p.Entries, 10, 11); refit(p) }, "a", ErrMapRootMismatch},
		{"last event dropped, list refitted", honest, func(p *Proof, _ *Trusted) { p.Entries = p.Entries[:len(p.Entries)-1]; refit(p) }, "a", ErrMapRootMismatch},
		{"one event added", honest, func(p *Proof, _ *Trusted) {
			p.Entries = append(p.Entries, Entry{l.bySamp["b"][3], otherEntry})
		}, "a", ErrAddedEntry},
		{"one event added, list refitted", honest, func(p *Proof, _ *Trusted) {
			p.Entries = append(p.Entries, Entry{l.bySamp["b"][3], otherEntry})
			slices.SortFunc(p.Entries, func(a, b Entry) int { return int(a.Index) - int(b.Index) })
			refit(p)
		}, "a", ErrMapRootMismatch},
		{"an index twice", honest, func(p *Proof, _ *Trusted) { p.Entries[5] = p.Entries[4] }, "a", ErrAddedEntry},
		{"two events swapped", honest, func(p *Proof, _ *Trusted) { p.Entries[3], p.Entries[4] = p.Entries[4], p.Entries[3] }, "a", ErrReorderedEntries},
		{"two events' bytes swapped", honest, func(p *Proof, _ *Trusted) {
			p.Entries[3].Data, p.Entries[4].Data = p.Entries[4].Data, p.Entries[3].Data
		}, "a", ErrListRootMismatch},
		{"an event of another sample", honest, func(p *Proof, _ *Trusted) { p.Entries[3].Data = otherEntry }, "a", ErrWrongEntry},
		{"an index moved", honest, func(p *Proof, _ *Trusted) { p.Entries[3].Index++ }, "a", ErrListRootMismatch},
		{"an index moved, list refitted", honest, func(p *Proof, _ *Trusted) { p.Entries[3].Index++; refit(p) }, "a", ErrMapRootMismatch},
		{"a proof for another size", honest, func(_ *Proof, tr *Trusted) { tr.Size--; tr.LogRoot = l.root(t, tr.Size) }, "a", ErrWrongSize},
		{"a proof relabelled to another size", honest, func(p *Proof, tr *Trusted) {
			tr.Size--
			tr.LogRoot = l.root(t, tr.Size)
			p.Size--
		}, "a", ErrBadInclusion},
		{"another since", since, func(p *Proof, _ *Trusted) { p.Since = 199 }, "a", ErrWrongSize},
		{"a map root that does not match", honest, func(_ *Proof, tr *Trusted) { tr.MapRoot[0] ^= 1 }, "a", ErrMapRootMismatch},
		{"absence with a map root that does not match", absent, func(_ *Proof, tr *Trusted) { tr.MapRoot[0] ^= 1 }, "zz", ErrMapRootMismatch},
		{"another sample", honest, nil, "b", ErrWrongSample},
		{"a bad inclusion hash", honest, func(p *Proof, _ *Trusted) { p.Inclusion[2][0] ^= 1 }, "a", ErrBadInclusion},
		{"an inclusion hash short", honest, func(p *Proof, _ *Trusted) { p.Inclusion = p.Inclusion[1:] }, "a", ErrBadInclusion},
		{"an inclusion hash more", honest, func(p *Proof, _ *Trusted) { p.Inclusion = append(p.Inclusion, Hash{}) }, "a", ErrBadInclusion},
		{"another log root", honest, func(_ *Proof, tr *Trusted) { tr.LogRoot[5] ^= 1 }, "a", ErrBadInclusion},
		{"a map sibling flipped", honest, func(p *Proof, _ *Trusted) { p.Map.Siblings[1][0] ^= 1 }, "a", ErrMapRootMismatch},
		{"since: a new event dropped", since, func(p *Proof, _ *Trusted) { p.Entries = p.Entries[1:] }, "a", ErrDroppedEntry},
		{"since: a new event hidden in the old part", since, func(p *Proof, _ *Trusted) {
			p.OldRange = rangeAppend(p.OldRange, p.OldSize-1, ListLeafHash(p.OldLast.Index, p.OldLast.LeafHash))
			p.OldLast = ListElement{p.Entries[0].Index, EntryLeafHash(p.Entries[0].Data)}
			p.OldSize++
			p.Entries = p.Entries[1:]
			p.Inclusion, _ = ProveBatchInclusion(context.Background(), p.Size, []uint64{p.Entries[0].Index}, l.nodes)
		}, "a", ErrBadConsistency},
		{"since: an old event shown as new", since, func(p *Proof, _ *Trusted) { p.Since = 0; p.OldSize = 0 }, "a", ErrWrongSize},
		{"absence with entries", absent, func(p *Proof, _ *Trusted) { p.Entries = []Entry{{1, l.entries[1]}} }, "zz", ErrAddedEntry},
		{"absence of a present sample", absent, nil, "a", ErrWrongSample},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := parse(tc.base.Marshal())
			tr2 := tr
			if tc.edit != nil {
				tc.edit(p, &tr2)
			}
			_, err := VerifyProof(p, req(tc.sample, tc.base.Since), tr2)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			// The same through the encoding, when it still parses.
			if q, perr := ParseProof(p.Marshal()); perr == nil {
				if _, err := VerifyProof(q, req(tc.sample, tc.base.Since), tr2); !errors.Is(err, tc.want) {
					t.Fatalf("after encoding: got %v, want %v", err, tc.want)
				}
			}
		})
	}
	// The unedited proofs verify.
	for _, p := range []*Proof{honest, since} {
		if _, err := VerifyProof(p, req("a", p.Since), tr); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDishonestMapCaught builds the map of a log with one event left out:
// its proofs verify (a verifier cannot tell), but its root differs from
// the reference an auditor recomputes from all the entries.
func TestDishonestMapCaught(t *testing.T) {
	l := newTestLog()
	for i := range 50 {
		l.append([]string{"a", "b", "c"}[i%3])
	}
	honest := Open(NewMemTiles(), 0, nil)
	liar := Open(NewMemTiles(), 0, nil)
	ref := refMap{}
	for _, c := range l.changes {
		ref.add(c)
	}
	hr, err := honest.Update(context.Background(), l.changes)
	if err != nil {
		t.Fatal(err)
	}
	lr, err := liar.Update(context.Background(), slices.Delete(slices.Clone(l.changes), 7, 8))
	if err != nil {
		t.Fatal(err)
	}
	if hr != ref.root() {
		t.Fatal("honest map root differs from the reference")
	}
	if lr == ref.root() {
		t.Fatal("a map leaving out an event has the reference root")
	}
}
