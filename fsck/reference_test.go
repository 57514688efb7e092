package fsck

// This file is the implementation of Check before it read pages in
// parallel and checked the indexes in bulk (commit 4ef13e6), kept as the
// reference the tests compare Check's reports with, problem for problem.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/custodylog/custody/internal/tiles"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

// refPage is how many entries refCheck reads at a time.
const refPage = 4096

// Check recomputes everything in st from its entries and returns a report
// of every disagreement; verifier is the log's key, which every stored
// checkpoint note must verify with. st must implement store.TileLister (to
// find tiles no entry accounts for). The error is for failures to read
// the store, not for problems found, which are in the report.
func refCheck(ctx context.Context, st store.Store, verifier note.Verifier, opts Options) (*Report, error) {
	tl, ok := st.(store.TileLister)
	if !ok {
		return nil, fmt.Errorf("fsck: the %T store cannot list its tiles (store.TileLister)", st)
	}
	c := &refChecker{ctx: ctx, st: st, tl: tl, rep: &Report{Problems: []Problem{}}, final: math.MaxUint64,
		b: tiles.New(), origin: verifier.Name(), verifiers: note.VerifierList(verifier), seen: map[uint64][]store.Hash{}}
	for _, k := range opts.Known {
		c.seen[k.Size] = append(c.seen[k.Size], k.Root)
	}
	if err := c.run(); err != nil {
		return nil, err
	}
	return c.rep, nil
}

type refChecker struct {
	ctx       context.Context
	st        store.Store
	tl        store.TileLister
	rep       *Report
	b         *tiles.Builder
	origin    string
	verifiers note.Verifiers
	seen      map[uint64][]store.Hash // checkpoints seen elsewhere, by size
	sizes     []uint64                // sizes of the stored checkpoints not yet compared
	latest    uint64                  // size of the latest checkpoint at the start
	final     uint64                  // largest size tiles may account for: unbounded while streaming, then entries or latest at the end
}

func refShort(h [32]byte) string { return fmt.Sprintf("%x", h[:]) }

func refTileWhere(level uint8, index uint64) string {
	return verify.TileAddr{Level: level, Index: index}.Path()
}

// checkSeen compares the root of the first size entries with the
// checkpoints of that size seen elsewhere.
func (c *refChecker) checkSeen(size uint64, root store.Hash) {
	for _, r := range c.seen[size] {
		if r != root {
			c.rep.Add(KindFork, fmt.Sprintf("checkpoint %d", size), "a checkpoint of size %d signed by the log has root %s, but the stored entries give %s", size, refShort(r), refShort(root))
		}
	}
	delete(c.seen, size)
}

// checkCheckpoints checks the stored checkpoints of size n, the number of
// entries read so far.
func (c *refChecker) checkCheckpoints(n uint64) {
	for len(c.sizes) > 0 && c.sizes[0] == n {
		c.checkCheckpoint(n, c.b.Root())
		c.sizes = c.sizes[1:]
	}
}

func (c *refChecker) checkCheckpoint(size uint64, root store.Hash) {
	rep := c.rep
	rep.Checkpoints++
	where := fmt.Sprintf("checkpoint %d", size)
	cp, err := c.st.Checkpoint(c.ctx, size)
	if err != nil {
		rep.Add(KindCheckpointNote, where, "unreadable row: %v", err)
		return
	}
	signed, _, err := verify.OpenCheckpoint(cp.Note, c.origin, c.verifiers)
	if err != nil {
		rep.Add(KindCheckpointNote, where, "note does not verify with the log key: %v", err)
	} else {
		if signed.Size != cp.Size {
			rep.Add(KindCheckpointNote, where, "signed note is for size %d", signed.Size)
		}
		if signed.Root != cp.Root {
			rep.Add(KindCheckpointNote, where, "signed note has root %s but the row %s", refShort(signed.Root), refShort(cp.Root))
		}
	}
	if cp.Root != root {
		rep.Add(KindCheckpoint, where, "root %s but entries give %s", refShort(cp.Root), refShort(root))
	} else if err == nil && signed.Root != root {
		rep.Add(KindCheckpoint, where, "signed root %s but entries give %s", refShort(signed.Root), refShort(root))
	}
}

func (c *refChecker) run() error {
	ctx, st, rep := c.ctx, c.st, c.rep
	latest, err := st.Latest(ctx)
	switch {
	case errors.Is(err, store.ErrNotFound):
		rep.Add(KindNoCheckpoint, "checkpoints", "the store has no checkpoint")
	case err != nil:
		return err
	}
	c.latest = latest.Size
	if c.sizes, err = refCheckpointSizes(ctx, st); err != nil {
		return err
	}
	c.checkSeen(0, c.b.Root())
	c.checkCheckpoints(0)

	var n uint64 // entries seen (the next expected index)
	for {
		es, err := st.Entries(ctx, n, n+refPage)
		if err != nil {
			return err
		}
		samples := map[string]map[uint64]bool{}
		for _, en := range es {
			if en.Index != n {
				if en.Index < n {
					return fmt.Errorf("store returned entry %d after entry %d", en.Index, n-1)
				}
				rep.Add(KindMissingEntry, fmt.Sprintf("entry %d", n), "entries %d to %d are missing", n, en.Index-1)
				// The tree cannot be recomputed past a hole.
				rep.Entries = n
				return c.finish(n)
			}
			leaf, err := c.checkEntry(en, es, samples)
			if err != nil {
				return err
			}
			// Full tiles are final: check each as it completes, in the
			// order the leaves complete them.
			for _, t := range c.b.AppendTiles([]tiles.Hash{leaf}) {
				if len(t.Data) == tiles.Width*tiles.HashSize {
					if err := c.checkTile(t.Level, t.Index, t.Data); err != nil {
						return err
					}
				}
			}
			n++
			if len(c.seen) > 0 {
				c.checkSeen(n, c.b.Root())
			}
			c.checkCheckpoints(n)
		}
		if len(es) < refPage {
			break
		}
	}
	rep.Entries = n
	for size := range c.seen {
		rep.Add(KindRollback, fmt.Sprintf("checkpoint %d", size), "the log signed a checkpoint of size %d, but only %d entries are stored: the database was rolled back or truncated", size, n)
	}
	return c.finish(n)
}

// checkEntry checks an entry's columns and sample index (es is its page,
// samples the sample indexes of the page read so far) and returns its
// recomputed leaf hash.
func (c *refChecker) checkEntry(en store.Entry, es []store.Entry, samples map[string]map[uint64]bool) (store.Hash, error) {
	rep := c.rep
	where := fmt.Sprintf("entry %d", en.Index)
	leaf := tiles.LeafHash(en.Data)
	if leaf != en.LeafHash {
		rep.Add(KindLeafHash, where, "stored %s, computed %s", refShort(en.LeafHash), refShort(leaf))
	}
	ev, err := record.DecodeEntry(en.Data)
	if err != nil {
		rep.Add(KindBadEntry, where, "%v", err)
		return leaf, nil
	}
	if id := ev.Identity(); id != en.Identity {
		rep.Add(KindIdentity, where, "stored %s, computed %s", refShort(en.Identity), refShort(id))
	}
	if ev.Sample != en.Sample {
		rep.Add(KindSample, where, "stored %q, event has %q", en.Sample, ev.Sample)
	}
	idx, ok := samples[ev.Sample]
	if !ok {
		list, err := c.st.Sample(c.ctx, ev.Sample)
		if err != nil {
			return leaf, err
		}
		idx = make(map[uint64]bool)
		// Only this page's indexes matter.
		lo := sort.Search(len(list), func(i int) bool { return list[i] >= es[0].Index })
		for _, x := range list[lo:] {
			if x > es[len(es)-1].Index {
				break
			}
			idx[x] = true
		}
		samples[ev.Sample] = idx
	}
	if !idx[en.Index] {
		rep.Add(KindSampleIndex, where, "not listed for sample %q", ev.Sample)
	}
	return leaf, nil
}

// checkTile compares stored tile (level, index) with the recomputed data.
func (c *refChecker) checkTile(level uint8, index uint64, want []byte) error {
	rep := c.rep
	where := refTileWhere(level, index)
	data, err := c.st.Tile(c.ctx, level, index)
	minW := tiles.TileWidth(level, index, c.latest)
	if errors.Is(err, store.ErrNotFound) {
		if minW > 0 {
			rep.Add(KindTileMissing, where, "not stored, but the latest checkpoint (size %d) needs %d hashes of it", c.latest, minW)
		}
		return nil
	}
	if err != nil {
		return err
	}
	rep.Tiles++
	if len(data)%tiles.HashSize != 0 {
		rep.Add(KindTileWidth, where, "stored data is %d bytes, not a multiple of 32", len(data))
		return nil
	}
	w := len(data) / tiles.HashSize
	maxW := tiles.TileWidth(level, index, c.final)
	if w < minW {
		rep.Add(KindTileWidth, where, "stored width %d, but the latest checkpoint (size %d) needs %d", w, c.latest, minW)
	}
	if w > maxW {
		rep.Add(KindTileWidth, where, "stored width %d, but the %d entries give only %d", w, c.final, maxW)
	}
	const hs = tiles.HashSize
	var bad []int
	for i := 0; i < min(w, len(want)/hs); i++ {
		if !bytes.Equal(data[i*hs:(i+1)*hs], want[i*hs:(i+1)*hs]) {
			bad = append(bad, i)
		}
	}
	switch {
	case len(bad) == 1:
		rep.Add(KindTile, where, "hash %d differs: stored %x, computed %x", bad[0], data[bad[0]*hs:bad[0]*hs+hs], want[bad[0]*hs:bad[0]*hs+hs])
	case len(bad) > 1:
		rep.Add(KindTile, where, "hash %d differs (and %d more: %s)", bad[0], len(bad)-1, refIntList(bad[1:], 8))
	}
	return nil
}

func refIntList(xs []int, limit int) string {
	var b strings.Builder
	for i, x := range xs {
		if i == limit {
			fmt.Fprintf(&b, ", …")
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprint(&b, x)
	}
	return b.String()
}

// finish checks the partial tiles, the checkpoints beyond the n entries
// read and the tiles no entry accounts for.
func (c *refChecker) finish(n uint64) error {
	rep := c.rep
	if n < c.latest {
		rep.Add(KindMissingEntry, fmt.Sprintf("entry %d", n), "the latest checkpoint has size %d but only %d entries are stored", c.latest, n)
	}
	for _, size := range c.sizes {
		rep.Checkpoints++
		rep.Add(KindCheckpointSize, fmt.Sprintf("checkpoint %d", size), "beyond the %d stored entries", n)
	}
	c.final = n
	if l, err := c.st.Latest(c.ctx); err == nil && l.Size > c.final {
		c.final = l.Size // the log grew while fsck ran
	}
	for _, t := range c.b.Edges() {
		if err := c.checkTile(t.Level, t.Index, t.Data); err != nil {
			return err
		}
	}
	return c.tl.EachTile(c.ctx, func(t store.TileInfo) error {
		if t.Level < 0 || t.Level > 255 || t.Index < 0 {
			rep.Add(KindTileExtra, fmt.Sprintf("tile/%d/%d", t.Level, t.Index), "invalid tile address")
			return nil
		}
		if tiles.TileWidth(uint8(t.Level), uint64(t.Index), c.final) == 0 {
			rep.Tiles++
			rep.Add(KindTileExtra, refTileWhere(uint8(t.Level), uint64(t.Index)), "stored (%d hashes) but the %d entries need no such tile", t.Length/tiles.HashSize, c.final)
		}
		return nil
	})
}

// checkpointSizes lists the sizes of the stored checkpoints, smallest first.
func refCheckpointSizes(ctx context.Context, st store.Store) ([]uint64, error) {
	var out []uint64
	err := store.EachCheckpoint(ctx, st, math.MaxUint64, func(c store.Checkpoint) error {
		out = append(out, c.Size)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing checkpoints: %w", err)
	}
	return out, nil
}
