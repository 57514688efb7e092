package hashindex

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"testing"
)

func key(i int) Key {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(i))
	h := sha256.Sum256(b[:])
	return KeyOf(h[:])
}

func TestAddLookupGrow(t *testing.T) {
	x := New(0)
	const n = 100000
	for i := 0; i < n; i++ {
		x.Add(key(i), uint64(i))
	}
	if x.Len() != n {
		t.Fatalf("Len %d, want %d", x.Len(), n)
	}
	for i := 0; i < n; i += 7 {
		if got := x.Lookup(nil, key(i)); !slices.Equal(got, []uint64{uint64(i)}) {
			t.Fatalf("Lookup(key %d) = %v", i, got)
		}
	}
	if got := x.Lookup(nil, key(n+1)); len(got) != 0 {
		t.Fatalf("Lookup of an absent key = %v", got)
	}
}

func TestCollisionsKeepEveryIndex(t *testing.T) {
	x := New(0)
	// The same key for many indexes, as crafted prefix collisions would be,
	// and index 0, which must not look like an empty slot.
	for i := 0; i < 50; i++ {
		x.Add(Key(42), uint64(i*3))
	}
	x.Add(Key(43), 7)
	got := x.Lookup(nil, 42)
	slices.Sort(got)
	if len(got) != 50 || got[0] != 0 || got[49] != 147 {
		t.Fatalf("Lookup(42) = %v", got)
	}
	if got := x.Lookup(nil, 43); !slices.Equal(got, []uint64{7}) {
		t.Fatalf("Lookup(43) = %v", got)
	}
}

func TestReplace(t *testing.T) {
	x := New(0)
	x.Add(Key(42), 0)
	x.Add(Key(42), 5)
	x.Add(key(1), 0)
	if !x.Replace(Key(42), 0, 9) {
		t.Fatal("Replace(42, 0, 9) = false")
	}
	if x.Replace(Key(42), 0, 10) || x.Replace(Key(43), 5, 10) {
		t.Fatal("Replace of a missing pair = true")
	}
	got := x.Lookup(nil, 42)
	slices.Sort(got)
	if !slices.Equal(got, []uint64{5, 9}) || x.Len() != 3 {
		t.Fatalf("after Replace: Lookup(42) = %v, Len %d", got, x.Len())
	}
	if got := x.Lookup(nil, key(1)); !slices.Equal(got, []uint64{0}) {
		t.Fatalf("Lookup(key 1) = %v", got)
	}
}

func TestTruncate(t *testing.T) {
	x := New(0)
	for i := 0; i < 5000; i++ {
		x.Add(key(i), uint64(i))
	}
	x.Truncate(1000)
	if x.Len() != 1000 {
		t.Fatalf("Len after Truncate(1000) = %d", x.Len())
	}
	if got := x.Lookup(nil, key(999)); !slices.Equal(got, []uint64{999}) {
		t.Fatalf("kept entry lost: %v", got)
	}
	if got := x.Lookup(nil, key(1000)); len(got) != 0 {
		t.Fatalf("truncated entry still found: %v", got)
	}
}

func BenchmarkAdd(b *testing.B) {
	x := New(0)
	for i := 0; i < b.N; i++ {
		x.Add(key(i), uint64(i))
	}
}
