package storetest

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/custodylog/custody/store"
)

// RunAggregates tests a backend's store.Aggregator (open and reopen as for
// Run, which does not call it: a backend's tests call both). It checks
// that a missing aggregate is store.ErrNotFound, that a save is read back
// exactly (including empty data, which is not nil), that a save replaces
// the previous one whatever its size (an aggregate of a restored log may
// be smaller), that names are independent, that saves do not disturb the
// log, and that saves survive reopening the store.
func RunAggregates(t *testing.T, open func(t *testing.T) store.Store, reopen func(t *testing.T, old store.Store) store.Store) {
	ctx := context.Background()
	s, m := genesis(t, open)
	agg, ok := s.(store.Aggregator)
	if !ok {
		t.Fatalf("%T does not implement store.Aggregator", s)
	}
	load := func(agg store.Aggregator, name string, wantSize uint64, want []byte) {
		t.Helper()
		size, data, err := agg.LoadAggregate(ctx, name)
		if err != nil || size != wantSize || !bytes.Equal(data, want) || data == nil {
			t.Errorf("LoadAggregate(%q) = %d, %q (nil %v), %v; want %d, %q", name, size, data, data == nil, err, wantSize, want)
		}
	}
	if _, _, err := agg.LoadAggregate(ctx, "a"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("LoadAggregate(never saved) error = %v, want ErrNotFound", err)
	}
	for _, tt := range []struct {
		name string
		size uint64
		data []byte
	}{
		{"a", 10, []byte("first")},
		{"a", 20, []byte("second, longer")},
		{"a", 5, []byte{}}, // smaller: a restored log's
		{"b", 1 << 40, []byte{0, 1, 2, 0xff}},
		{"a", 7, nil}, // nil is saved as empty
	} {
		if err := agg.SaveAggregate(ctx, tt.name, tt.size, tt.data); err != nil {
			t.Fatalf("SaveAggregate(%q, %d) error: %v", tt.name, tt.size, err)
		}
		want := tt.data
		if want == nil {
			want = []byte{}
		}
		load(agg, tt.name, tt.size, want)
	}
	load(agg, "b", 1<<40, []byte{0, 1, 2, 0xff})
	m.grow(t, s, "x", 3, 5)
	m.check(t, s)

	s = reopen(t, s)
	agg = s.(store.Aggregator)
	load(agg, "a", 7, []byte{})
	load(agg, "b", 1<<40, []byte{0, 1, 2, 0xff})
	m.check(t, s)
}
