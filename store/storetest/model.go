package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"testing"

	"github.com/custodylog/custody/store"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// model is an in-memory log: it builds batches for a store and remembers
// what the store must hold once they are appended. Entries, tiles and
// checkpoints are deterministic functions of their position and of a tag,
// so competing writers build different batches from the same state.
//
// The hashes are not those of a real Merkle tree (the store never checks
// them): leaf and identity hashes are real SHA-256 of the data, tile hashes
// and roots are SHA-256 of their coordinates.
type model struct {
	entries     []store.Entry
	checkpoints []store.Checkpoint // increasing sizes; the last is the latest
	tiles       map[tileKey][]byte
}

type tileKey struct {
	level uint8
	index uint64
}

func newModel() *model {
	return &model{tiles: make(map[tileKey][]byte)}
}

func (m *model) size() uint64 { return uint64(len(m.entries)) }

// latest returns a copy of the latest checkpoint, or nil for an empty log.
func (m *model) latest() *store.Checkpoint {
	if len(m.checkpoints) == 0 {
		return nil
	}
	c := m.checkpoints[len(m.checkpoints)-1]
	c.Note = slices.Clone(c.Note)
	return &c
}

// batch returns the batch that appends n entries made with tag to the
// model's log: Prev is the latest checkpoint, Tiles all the tiles the new
// entries change, Checkpoint the new one (made with tag).
func (m *model) batch(n int, tag string) store.Batch {
	size := m.size()
	b := store.Batch{
		Prev:       m.latest(),
		Tiles:      tilesFor(size, size+uint64(n)),
		Checkpoint: newCheckpoint(size+uint64(n), tag),
	}
	for i := range uint64(n) {
		b.Entries = append(b.Entries, newEntry(size+i, tag))
	}
	return b
}

// apply records a batch the store accepted.
func (m *model) apply(b store.Batch) {
	m.entries = append(m.entries, cloneEntries(b.Entries)...)
	c := b.Checkpoint
	c.Note = slices.Clone(c.Note)
	if n := len(m.checkpoints); n > 0 && m.checkpoints[n-1].Size == c.Size {
		m.checkpoints[n-1] = c
	} else {
		m.checkpoints = append(m.checkpoints, c)
	}
	for _, t := range b.Tiles {
		m.tiles[tileKey{t.Level, t.Index}] = slices.Clone(t.Data)
	}
}

func cloneEntries(es []store.Entry) []store.Entry {
	out := slices.Clone(es)
	for i := range out {
		out[i].Data = slices.Clone(out[i].Data)
	}
	return out
}

// samples are the sample identifiers entries get, by index modulo 3; one is
// not ASCII.
var samples = []string{"S-0001", "échantillon-β", "S-0003"}

// newEntry returns the entry at index made with tag. Its data holds bytes
// that text handling would mangle (NUL, invalid UTF-8, CR LF), and its
// length varies with the index.
func newEntry(index uint64, tag string) store.Entry {
	sample := samples[index%uint64(len(samples))]
	data := fmt.Appendf(nil, `{"index":%d,"tag":%q,"sample":%q}`, index, tag, sample)
	data = append(data, 0x00, 0xff, 0xfe, '\r', '\n')
	for i := range index % 11 {
		data = append(data, byte(index+i))
	}
	return makeEntry(index, sample, data)
}

// makeEntry returns the entry with that index, sample and data, with its
// real leaf hash and an identity derived from the data.
func makeEntry(index uint64, sample string, data []byte) store.Entry {
	return store.Entry{
		Index:    index,
		Identity: sha256.Sum256(append([]byte("custody storetest identity\x00"), data...)),
		LeafHash: sha256.Sum256(append([]byte{0x00}, data...)),
		Sample:   sample,
		Data:     data,
	}
}

// newCheckpoint returns a checkpoint of the given size made with tag.
func newCheckpoint(size uint64, tag string) store.Checkpoint {
	root := sha256.Sum256(fmt.Appendf(nil, "custody storetest root %d %s", size, tag))
	sig := sha256.Sum256([]byte(tag))
	note := fmt.Sprintf("custody.example/storetest\n%d\n%s\n\n— custody.example/storetest %s\n",
		size, base64.StdEncoding.EncodeToString(root[:]), base64.StdEncoding.EncodeToString(sig[:]))
	return store.Checkpoint{Size: size, Root: root, Note: []byte(note)}
}

// tileHash returns the hash the model puts at position n of level.
func tileHash(level uint8, n uint64) store.Hash {
	var b [9]byte
	b[0] = level
	binary.BigEndian.PutUint64(b[1:], n)
	return sha256.Sum256(b[:])
}

// tilesFor returns the hash tiles (height 8, as in c2sp.org/tlog-tiles) that
// change when the tree grows from oldSize to newSize, each with its full
// new data. Level L holds one hash per 256^L leaves.
func tilesFor(oldSize, newSize uint64) []store.Tile {
	var tiles []store.Tile
	for level := uint8(0); level < 8; level++ {
		shift := 8 * uint(level)
		oldN, newN := oldSize>>shift, newSize>>shift
		if newN == oldN {
			break
		}
		for index := oldN / 256; index*256 < newN; index++ {
			end := min(newN, (index+1)*256)
			data := make([]byte, 0, (end-index*256)*store.HashSize)
			for n := index * 256; n < end; n++ {
				h := tileHash(level, n)
				data = append(data, h[:]...)
			}
			tiles = append(tiles, store.Tile{Level: level, Index: index, Data: data})
		}
	}
	return tiles
}

// check fails t unless s holds exactly what the model holds.
func (m *model) check(t *testing.T, s store.Store) {
	t.Helper()
	ctx := context.Background()

	got, err := s.Latest(ctx)
	if want := m.latest(); want == nil {
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Latest() = %v, %v, want ErrNotFound", got, err)
		}
	} else if err != nil {
		t.Errorf("Latest() error: %v", err)
	} else if diff := cmp.Diff(*want, got); diff != "" {
		t.Errorf("Latest() mismatch (-want +got):\n%s", diff)
	}
	for _, want := range m.checkpoints {
		got, err := s.Checkpoint(ctx, want.Size)
		if err != nil {
			t.Errorf("Checkpoint(%d) error: %v", want.Size, err)
		} else if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Checkpoint(%d) mismatch (-want +got):\n%s", want.Size, diff)
		}
	}

	entries, err := s.Entries(ctx, 0, math.MaxUint64)
	if err != nil {
		t.Errorf("Entries(0, MaxUint64) error: %v", err)
	} else if diff := diffEntries(m.entries, entries); diff != "" {
		t.Errorf("Entries(0, MaxUint64) mismatch: %s", diff)
	}

	for k, want := range m.tiles {
		got, err := s.Tile(ctx, k.level, k.index)
		if err != nil {
			t.Errorf("Tile(%d, %d) error: %v", k.level, k.index, err)
		} else if !bytes.Equal(want, got) {
			t.Errorf("Tile(%d, %d) = %d bytes, want %d bytes:\n%s", k.level, k.index, len(got), len(want), cmp.Diff(want, got))
		}
	}

	ids := make([]store.Hash, len(m.entries))
	wantIDs := make(map[store.Hash]uint64)
	firstLeaf := make(map[store.Hash]uint64)
	wantSamples := make(map[string][]uint64)
	for i, e := range m.entries {
		ids[i] = e.Identity
		wantIDs[e.Identity] = e.Index
		if _, ok := firstLeaf[e.LeafHash]; !ok {
			firstLeaf[e.LeafHash] = e.Index
		}
		wantSamples[e.Sample] = append(wantSamples[e.Sample], e.Index)
	}
	gotIDs, err := s.ByIdentity(ctx, ids)
	if err != nil {
		t.Errorf("ByIdentity(all %d identities) error: %v", len(ids), err)
	} else if maps.Equal(wantIDs, gotIDs) {
		// The common case, without cmp's reflection over a large map.
	} else if diff := cmp.Diff(wantIDs, gotIDs, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("ByIdentity(all %d identities) mismatch (-want +got):\n%s", len(ids), diff)
	}

	// Every leaf hash of a small log, a spread of them in a large one.
	stride := max(1, len(m.entries)/200)
	for i := 0; i < len(m.entries); i += stride {
		h := m.entries[i].LeafHash
		got, err := s.ByLeafHash(ctx, h)
		if err != nil || got != firstLeaf[h] {
			t.Errorf("ByLeafHash(leaf hash of entry %d) = %d, %v, want %d", i, got, err, firstLeaf[h])
		}
	}

	for sample, want := range wantSamples {
		got, err := s.Sample(ctx, sample)
		if err != nil {
			t.Errorf("Sample(%q) error: %v", sample, err)
		} else if !slices.Equal(want, got) {
			t.Errorf("Sample(%q) mismatch (-want +got):\n%s", sample, cmp.Diff(want, got))
		}
	}
}

// checkNotWritten fails t unless s holds exactly what the model holds and
// nothing of b that the model does not have: b was refused.
func (m *model) checkNotWritten(t *testing.T, s store.Store, b store.Batch) {
	t.Helper()
	m.check(t, s)
	ctx := context.Background()

	inModel := make(map[store.Hash]bool)
	leaves := make(map[store.Hash]bool)
	for _, e := range m.entries {
		inModel[e.Identity] = true
		leaves[e.LeafHash] = true
	}
	var ids []store.Hash
	for _, e := range b.Entries {
		if !inModel[e.Identity] {
			ids = append(ids, e.Identity)
		}
		if !leaves[e.LeafHash] {
			if got, err := s.ByLeafHash(ctx, e.LeafHash); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("ByLeafHash(leaf hash of refused entry %d) = %d, %v, want ErrNotFound", e.Index, got, err)
			}
		}
	}
	if got, err := s.ByIdentity(ctx, ids); err != nil || len(got) != 0 {
		t.Errorf("ByIdentity(identities of refused entries) = %v, %v, want empty", got, err)
	}
	for _, tile := range b.Tiles {
		if _, ok := m.tiles[tileKey{tile.Level, tile.Index}]; ok {
			continue // compared by check
		}
		if got, err := s.Tile(ctx, tile.Level, tile.Index); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Tile(%d, %d) after a refused batch = %x, %v, want ErrNotFound", tile.Level, tile.Index, got, err)
		}
	}
	if !slices.ContainsFunc(m.checkpoints, func(c store.Checkpoint) bool { return c.Size == b.Checkpoint.Size }) {
		if got, err := s.Checkpoint(ctx, b.Checkpoint.Size); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Checkpoint(%d) after a refused batch = %v, %v, want ErrNotFound", b.Checkpoint.Size, got, err)
		}
	}
}

// mustAppend appends b to s and records it in m.
func (m *model) mustAppend(t *testing.T, s store.Store, b store.Batch) {
	t.Helper()
	if err := s.Append(context.Background(), b); err != nil {
		t.Fatalf("Append(batch of %d entries to size %d) error: %v", len(b.Entries), b.Checkpoint.Size, err)
	}
	m.apply(b)
}

// grow appends batches of the given sizes to s, recording them in m.
func (m *model) grow(t *testing.T, s store.Store, tag string, sizes ...int) {
	t.Helper()
	for _, n := range sizes {
		m.mustAppend(t, s, m.batch(n, tag))
	}
}

// diffEntries describes the first difference between two lists of entries,
// or returns "". (cmp.Diff alone takes seconds on the lists of large logs.)
func diffEntries(want, got []store.Entry) string {
	for i := range min(len(want), len(got)) {
		w, g := want[i], got[i]
		if w.Index != g.Index || w.Identity != g.Identity || w.LeafHash != g.LeafHash || w.Sample != g.Sample || !bytes.Equal(w.Data, g.Data) {
			return fmt.Sprintf("entry %d of %d differs (-want +got):\n%s", i, len(want), cmp.Diff(w, g, cmpopts.EquateEmpty()))
		}
	}
	if len(want) != len(got) {
		return fmt.Sprintf("got %d entries, want %d", len(got), len(want))
	}
	return ""
}
