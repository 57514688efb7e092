package sampleindex

import (
	"bytes"
	"context"
	"crypto/sha256"
	"math/rand/v2"
	"slices"
	"testing"
)

// refMap is a deliberately naive model of the index: every key's whole
// list, hashed recursively from the definitions in docs/sample-index.md.
type refMap map[Hash][]ListElement

func (r refMap) add(c Change) { r[c.Key] = append(r[c.Key], ListElement{c.Index, c.LeafHash}) }

func (r refMap) keys() []Hash {
	ks := make([]Hash, 0, len(r))
	for k := range r {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, func(a, b Hash) int { return bytes.Compare(a[:], b[:]) })
	return ks
}

// root is node(empty prefix) over the sorted keys.
func (r refMap) root() Hash { return r.node(r.keys(), 0) }

func (r refMap) node(keys []Hash, depth int) Hash {
	switch len(keys) {
	case 0:
		return EmptyMapRoot
	case 1:
		l := r[keys[0]]
		return MapLeafHash(keys[0], uint64(len(l)), refListRoot(l))
	}
	var left, right []Hash
	for _, k := range keys {
		if bit(&k, depth) == 0 {
			left = append(left, k)
		} else {
			right = append(right, k)
		}
	}
	return MapNodeHash(r.node(left, depth+1), r.node(right, depth+1))
}

// refListRoot is the RFC 6962 MTH of the list leaves, by recursion.
func refListRoot(l []ListElement) Hash {
	leaves := make([]Hash, len(l))
	for i, e := range l {
		leaves[i] = ListLeafHash(e.Index, e.LeafHash)
	}
	return refMTH(leaves)
}

func refMTH(leaves []Hash) Hash {
	switch len(leaves) {
	case 0:
		return EntryLeafHash(nil) // never used for a map leaf
	case 1:
		return leaves[0]
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	l, r := refMTH(leaves[:k]), refMTH(leaves[k:])
	return nodeHash6962(l, r)
}

func randHash(rng *rand.Rand) Hash {
	var h Hash
	for i := 0; i < HashSize; i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8; j++ {
			h[i+j] = byte(v >> (8 * j))
		}
	}
	return h
}

// TestMapRootMatchesReference applies random batches (new keys, keys seen
// before, keys sharing long prefixes) to a Map that flushes to and reopens
// from a MemTiles with a tiny cache, and compares the root after every
// batch with the reference.
func TestMapRootMatchesReference(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name              string
		batches, perBatch int
		cache             int
		flushEvery        int
	}{
		{"one-change batches", 60, 1, 1, 1},
		{"small batches", 40, 7, 4, 3},
		{"big batches", 10, 300, 16, 2},
		{"never flushed", 8, 100, 1, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(len(tc.name))))
			store := NewMemTiles()
			m := Open(store, 0, &Options{CacheTiles: tc.cache, PinnedDepth: 4})
			ref := refMap{}
			var keys []Hash
			var index uint64
			for b := 0; b < tc.batches; b++ {
				var cs []Change
				for i := 0; i < tc.perBatch; i++ {
					var k Hash
					switch x := rng.IntN(10); {
					case x < 4 || len(keys) == 0:
						k = randHash(rng)
						keys = append(keys, k)
					case x < 7:
						k = keys[rng.IntN(len(keys))]
					default:
						// A new key sharing a long prefix with an old one.
						k = keys[rng.IntN(len(keys))]
						p := rng.IntN(256)
						k[p/8] ^= 0x80 >> (p % 8)
						keys = append(keys, k)
					}
					index += uint64(rng.IntN(3))
					c := Change{Key: k, Index: index, LeafHash: randHash(rng)}
					index++
					cs = append(cs, c)
					ref.add(c)
				}
				got, err := m.Update(ctx, cs)
				if err != nil {
					t.Fatal(err)
				}
				if want := ref.root(); got != want {
					t.Fatalf("batch %d: root %x, reference %x", b, got, want)
				}
				if (b+1)%tc.flushEvery == 0 {
					if err := m.Flush(ctx, store.WriteTiles); err != nil {
						t.Fatal(err)
					}
					if b%2 == 1 {
						m = Open(store, store.Size(), &Options{CacheTiles: tc.cache, PinnedDepth: 4})
						got, err := m.Root(ctx)
						if err != nil || got != ref.root() {
							t.Fatalf("reopened at batch %d: root %x, %v; want %x", b, got, err, ref.root())
						}
					}
				}
			}
			for k, l := range ref {
				v, ok, err := m.Value(ctx, k)
				if err != nil || !ok || v.List.Size != uint64(len(l)) || v.List.Root != refListRoot(l) || v.Last != l[len(l)-1].Index {
					t.Fatalf("Value(%x) = %+v, %v, %v; want %d elements, root %x", k, v, ok, err, len(l), refListRoot(l))
				}
			}
		})
	}
}

func nodeHash6962(l, r Hash) Hash {
	var b [65]byte
	b[0] = 1
	copy(b[1:], l[:])
	copy(b[33:], r[:])
	return sha256.Sum256(b[:])
}
