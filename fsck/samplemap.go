package fsck

import (
	"bytes"
	"errors"
	"fmt"
	"math"

	"github.com/custodylog/custody/internal/maptiles"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/sampleindex"
	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/verify"
)

// Kinds of sample index problems (docs/sample-index.md).
const (
	// KindSampleMapTile: a stored tile of the sample index does not parse,
	// was written at a map size beyond the stored one, is not in the map
	// recomputed from the entries, or differs from its recomputed version;
	// or recomputed tiles are missing from the store.
	KindSampleMapTile Kind = "sample-map-tile"
	// KindSampleMapRoot: the stored sample index's root, or a checkpoint's
	// custody-sample-index line, is not the map root recomputed from the
	// entries (or the line is malformed).
	KindSampleMapRoot Kind = "sample-map-root"
)

// checkSampleMap checks the sample index of a store that keeps one
// (store.SampleMap): it recomputes the map from the entries read (a second
// pass over them, with the map's tiles in a temporary file so that memory
// stays bounded), compares its root with the custody-sample-index line of
// every stored checkpoint that has one, and, at the stored map's size,
// compares every stored tile with the recomputed one. Its problems come
// after all others.
func (c *checker) checkSampleMap() error {
	sm, ok := c.st.(store.SampleMap)
	if !ok {
		return nil
	}
	ctx := c.ctx
	mapSize, err := sm.SampleMapSize(ctx)
	if err != nil {
		return fmt.Errorf("reading the sample index's size: %w", err)
	}
	n := c.rep.Entries
	if mapSize > n {
		c.add(atEnd, KindSampleMapRoot, "sample index", "the stored sample index covers %d entries, but only %d are stored", mapSize, n)
	}
	b, _, err := maptiles.OpenBuilder("", "sample-index.tiles", 0)
	if err != nil {
		return fmt.Errorf("checking the sample index: %w", err)
	}
	defer b.Close()

	// The checkpoints, listed a page at a time.
	var cps []store.Checkpoint
	var from uint64
	done := false
	next := func() (store.Checkpoint, bool, error) {
		if len(cps) == 0 && !done {
			page, err := c.st.Checkpoints(ctx, from, checkpointPage)
			if err != nil {
				return store.Checkpoint{}, false, fmt.Errorf("listing checkpoints from size %d: %w", from, err)
			}
			for i, cp := range page {
				if cp.Size < from || cp.Size > n || (i > 0 && cp.Size <= page[i-1].Size) {
					page, done = page[:i], true // beyond the entries, or out of order: reported by the main check
					break
				}
			}
			if len(page) < checkpointPage {
				done = true
			}
			if len(page) > 0 {
				if last := page[len(page)-1].Size; last == math.MaxUint64 {
					done = true
				} else {
					from = last + 1
				}
			}
			cps = page
		}
		if len(cps) == 0 {
			return store.Checkpoint{}, false, nil
		}
		return cps[0], true, nil
	}
	var lines lineCheck
	// at checks what is due once the map covers size entries.
	at := func(size uint64) error {
		for {
			cp, ok, err := next()
			if err != nil {
				return err
			}
			if !ok || cp.Size > size {
				break
			}
			cps = cps[1:]
			if cp.Size < size {
				continue
			}
			if err := c.checkIndexLine(b, cp, &lines); err != nil {
				return err
			}
		}
		if size == mapSize {
			return c.compareSampleTiles(sm, b, mapSize)
		}
		return nil
	}
	if err := at(0); err != nil {
		return err
	}
	for lo := uint64(0); lo < n; lo += page {
		es, err := c.st.Entries(ctx, lo, min(lo+page, n))
		if err != nil {
			return fmt.Errorf("checking the sample index: reading entries from %d: %w", lo, err)
		}
		for _, e := range es {
			if record.KindOf(e.Data) == record.EntryEvent {
				if ev, err := record.DecodeEntry(e.Data); err == nil { // a bad entry is reported by the main check
					b.Add(e.Index, ev.Sample, sampleindex.EntryLeafHash(e.Data))
				}
			}
			b.SkipTo(e.Index + 1)
			if err := at(e.Index + 1); err != nil {
				return err
			}
		}
		if uint64(len(es)) < min(page, n-lo) {
			break // a hole: reported by the main check
		}
	}
	if lines.more > 0 {
		c.add(atEnd, KindSampleMapRoot, "checkpoints", "the %s lines of %d later checkpoints (up to size %d) differ from the entries' map roots too", sampleindex.ExtensionKeyword, lines.more, lines.last)
	}
	return nil
}

// lineCheck counts the checkpoints whose index line differs from the
// recomputed root: the first is reported, the others counted (a damaged
// entry changes the root of every later checkpoint).
type lineCheck struct {
	bad, more uint64
	last      uint64
}

// maxTileProblems is how many tile problems checkSampleMap reports one by
// one; the others are counted.
const maxTileProblems = 20

// checkIndexLine compares the index line of checkpoint cp (if it has one)
// with the root of b, which covers cp.Size entries, counting mismatches
// in lines.
func (c *checker) checkIndexLine(b *maptiles.Builder, cp store.Checkpoint, lines *lineCheck) error {
	signed, _, err := verify.OpenCheckpoint(cp.Note, c.origin, c.verifiers)
	if err != nil {
		return nil // reported by the main check (checkpoint-note)
	}
	where := fmt.Sprintf("checkpoint %d", cp.Size)
	want, err := sampleindex.FindExtension(signed.Extensions)
	if errors.Is(err, sampleindex.ErrNoExtension) {
		return nil
	}
	if err != nil {
		c.add(atEnd, KindSampleMapRoot, where, "%v", err)
		return nil
	}
	got, err := b.Root(c.ctx)
	if err != nil {
		return fmt.Errorf("checking the sample index: %w", err)
	}
	if got != want {
		if lines.bad++; lines.bad == 1 {
			c.add(atEnd, KindSampleMapRoot, where, "the %s line commits map root %s but the entries give %s", sampleindex.ExtensionKeyword, short(want), short(got))
		} else {
			lines.more++
			lines.last = cp.Size
		}
	}
	return nil
}

// compareSampleTiles compares the stored tiles with those of b, which
// covers mapSize entries.
func (c *checker) compareSampleTiles(sm store.SampleMap, b *maptiles.Builder, mapSize uint64) error {
	ctx := c.ctx
	got, err := b.Finish(ctx)
	if err != nil {
		return fmt.Errorf("checking the sample index: %w", err)
	}
	where := fmt.Sprintf("sample index %d", mapSize)
	stored, err := sampleindex.Open(store.SampleTiles(sm, store.AnySampleMapSize), mapSize, nil).Root(ctx)
	if err != nil {
		c.add(atEnd, KindSampleMapRoot, where, "the stored tiles do not make a map: %v", err)
	} else if stored != got {
		c.add(atEnd, KindSampleMapRoot, where, "the stored map of %d entries has root %s but the entries give %s", mapSize, short(stored), short(got))
	}
	matched, problems := 0, 0
	add := func(where, format string, args ...any) {
		if problems++; problems <= maxTileProblems {
			c.add(atEnd, KindSampleMapTile, where, format, args...)
		}
	}
	err = sm.EachSampleTile(ctx, func(t store.SampleTile) error {
		tw := fmt.Sprintf("sample index tile %x", t.Key)
		id, err := sampleindex.ParseTileKey(t.Key)
		if err != nil {
			add(tw, "%v", err)
			return nil
		}
		tw = "sample index tile " + id.String()
		if err := sampleindex.CheckTile(id, t.Data); err != nil {
			add(tw, "%v", err)
		}
		if t.Size > mapSize {
			add(tw, "written at map size %d, beyond the stored map size %d", t.Size, mapSize)
		}
		want, err := b.File().ReadTiles(ctx, []sampleindex.TileID{id})
		if err != nil {
			return err
		}
		switch w, ok := want[id]; {
		case !ok:
			add(tw, "not in the map the entries give")
		case !bytes.Equal(w, t.Data):
			add(tw, "differs from the tile the entries give (%d bytes stored, %d recomputed)", len(t.Data), len(w))
			matched++
		default:
			matched++
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("checking the sample index: listing its tiles: %w", err)
	}
	if problems > maxTileProblems {
		c.add(atEnd, KindSampleMapTile, where, "%d more tile problems", problems-maxTileProblems)
	}
	if want := b.File().Len(); matched < want {
		c.add(atEnd, KindSampleMapTile, where, "%d of the %d tiles the entries give are not stored", want-matched, want)
	}
	return nil
}
