package sqlite

import (
	"bytes"
	"context"
	"testing"

	"github.com/custodylog/custody/store/storetest"
)

// TestEntriesShareNoCapacity checks what Entries promises of the buffer its
// entries' data share: each is exactly the stored bytes, with its capacity
// cut to its length, so that appending to one entry's data never changes
// another's; and the samples are right.
func TestEntriesShareNoCapacity(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	g := new(storetest.BenchLog)
	g.MustAppend(t, s, 0, "genesis")
	b := g.MustAppend(t, s, 300, "a")
	for _, r := range []struct{ start, end uint64 }{{0, 300}, {0, 1}, {5, 6}, {256, 300}, {299, 1000}, {0, 1 << 40}} {
		es, err := s.Entries(ctx, r.start, r.end)
		want := b.Entries[r.start:min(r.end, 300)]
		if err != nil || len(es) != len(want) {
			t.Fatalf("Entries(%d, %d) = %d entries, %v, want %d", r.start, r.end, len(es), err, len(want))
		}
		for i := range es {
			if cap(es[i].Data) != len(es[i].Data) {
				t.Errorf("Entries(%d, %d): entry %d has capacity %d for %d bytes", r.start, r.end, es[i].Index, cap(es[i].Data), len(es[i].Data))
			}
		}
		for i := range es {
			es[i].Data = append(es[i].Data, "XX"...)
		}
		for i, e := range es {
			w := want[i]
			if e.Index != w.Index || e.Identity != w.Identity || e.LeafHash != w.LeafHash || e.Sample != w.Sample ||
				!bytes.Equal(e.Data, append(bytes.Clone(w.Data), "XX"...)) {
				t.Errorf("Entries(%d, %d): entry %d = %+v, want %+v and XX", r.start, r.end, w.Index, e, w)
			}
		}
	}
}
