// Package hashindex is a compact in-memory multimap from 64-bit hash
// prefixes to log indexes, for stores that must find entries by identity,
// leaf hash or sample without a random-order B-tree insert per entry.
//
// A lookup returns every index whose key has the same 64-bit prefix; the
// caller confirms each candidate against the entry itself, so prefix
// collisions (accidental or crafted) cost a read, never a wrong answer.
// Memory is about 21 bytes per entry at the maximum load factor.
package hashindex

import (
	"encoding/binary"
	"math/rand/v2"
	"sync"
)

// Key is the 64-bit prefix of a SHA-256 digest (or of any other hash).
type Key uint64

// KeyOf returns the index key of a hash: its first 8 bytes, big-endian.
func KeyOf(h []byte) Key { return Key(binary.BigEndian.Uint64(h)) }

// Index is an open-addressing hash table of (key, log index) pairs. It is
// safe for concurrent use: one writer, many readers.
type Index struct {
	mu    sync.RWMutex
	keys  []uint64
	vals  []uint64 // log index + 1; 0 marks an empty slot
	count int
	seed  uint64 // random, so that nobody can choose keys that cluster
}

// New returns an index with room for about n entries before it grows.
func New(n int) *Index {
	size := 1024
	for size*3/4 < n {
		size *= 2
	}
	return &Index{keys: make([]uint64, size), vals: make([]uint64, size), seed: rand.Uint64()}
}

// Len returns the number of pairs.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.count
}

// mix spreads a key over the table. Keys are hash prefixes already, but a
// submitter can grind the hashes of its own entries until their keys would
// fall into one run of slots of a fixed function, and so make every probe
// of that run slow; the per-table random seed makes the slots unpredictable.
func (x *Index) mix(k uint64) uint64 {
	k ^= x.seed
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	return k
}

// Add records that index has key k. Adding the same pair twice stores it
// twice; callers add each entry once.
func (x *Index) Add(k Key, index uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.add(uint64(k), index)
}

// AddMany is Add for several pairs under one lock.
func (x *Index) AddMany(keys []Key, indexes []uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for i, k := range keys {
		x.add(uint64(k), indexes[i])
	}
}

func (x *Index) add(k, index uint64) {
	if (x.count+1)*4 > len(x.keys)*3 {
		x.grow()
	}
	mask := uint64(len(x.keys) - 1)
	for i := x.mix(k) & mask; ; i = (i + 1) & mask {
		if x.vals[i] == 0 {
			x.keys[i], x.vals[i] = k, index+1
			x.count++
			return
		}
	}
}

func (x *Index) grow() {
	oldK, oldV := x.keys, x.vals
	x.keys = make([]uint64, 2*len(oldK))
	x.vals = make([]uint64, 2*len(oldV))
	x.count = 0
	for i, v := range oldV {
		if v != 0 {
			x.add(oldK[i], v-1)
		}
	}
}

// Lookup appends to dst every index recorded under key k, in no particular
// order, and returns it.
func (x *Index) Lookup(dst []uint64, k Key) []uint64 {
	x.mu.RLock()
	defer x.mu.RUnlock()
	mask := uint64(len(x.keys) - 1)
	for i := x.mix(uint64(k)) & mask; x.vals[i] != 0; i = (i + 1) & mask {
		if x.keys[i] == uint64(k) {
			dst = append(dst, x.vals[i]-1)
		}
	}
	return dst
}

// Replace changes the pair (k, old) to (k, new) and reports whether there
// was such a pair. With Replace a caller can keep one mutable value per key,
// for example the newest index of a chain of entries with that key.
func (x *Index) Replace(k Key, old, new uint64) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	mask := uint64(len(x.keys) - 1)
	for i := x.mix(uint64(k)) & mask; x.vals[i] != 0; i = (i + 1) & mask {
		if x.keys[i] == uint64(k) && x.vals[i] == old+1 {
			x.vals[i] = new + 1
			return true
		}
	}
	return false
}

// Truncate removes every pair whose index is >= size (after a failed or
// rolled-back append). It rebuilds the table.
func (x *Index) Truncate(size uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	oldK, oldV := x.keys, x.vals
	x.keys = make([]uint64, len(oldK))
	x.vals = make([]uint64, len(oldV))
	x.count = 0
	for i, v := range oldV {
		if v != 0 && v-1 < size {
			x.add(oldK[i], v-1)
		}
	}
}
