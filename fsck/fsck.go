// Package fsck checks a log's store against its own entries: it recomputes
// everything the store holds (leaf hashes, event columns, the sample
// index, every hash tile, every checkpoint's root and signed note) from the
// stored entries and reports every disagreement, not just the first.
//
// Check only reads, through the store.Store interface, store.TileLister
// and (when the store has it) store.IndexChecker, so it may run next to the
// servers writing the log. It checks the entries on every core, in memory
// that does not grow with the log (see Check).
package fsck

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/custodylog/custody/internal/tiles"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/site"
	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

// page is how many entries Check reads at a time: a worker's unit of
// work. About 2*Workers+2 pages are in memory at once.
const page = 8192

// Kind is the kind of a problem. The values are stable: they are printed
// and appear in JSON reports.
type Kind string

// Kinds of problems.
const (
	KindStore          Kind = "store"           // the store refuses to open: the database is damaged (reported by the caller that opens it)
	KindMissingEntry   Kind = "missing-entry"   // a hole in the entry indexes
	KindLeafHash       Kind = "leaf-hash"       // leaf_hash column is not SHA-256(0x00 || data)
	KindBadEntry       Kind = "bad-entry"       // data is not a canonical event
	KindIdentity       Kind = "identity"        // identity column is not the event's identity
	KindSample         Kind = "sample"          // sample column is not the event's sample
	KindSampleIndex    Kind = "sample-index"    // the per-sample index misses the entry
	KindIdentityIndex  Kind = "identity-index"  // the identity index (de-duplication, ByIdentity) misses the entry
	KindLeafIndex      Kind = "leaf-index"      // the leaf-hash index (ByLeafHash) misses the entry
	KindTile           Kind = "tile"            // a stored hash tile differs from the recomputed one
	KindTileMissing    Kind = "tile-missing"    // a hash tile the checkpoint needs is not stored
	KindTileWidth      Kind = "tile-width"      // a stored tile is narrower or wider than it may be
	KindTileExtra      Kind = "tile-extra"      // a stored tile no entry accounts for
	KindCheckpoint     Kind = "checkpoint"      // a checkpoint's root is not the entries' root
	KindCheckpointNote Kind = "checkpoint-note" // a checkpoint's note does not verify or disagrees with its row
	KindCheckpointSize Kind = "checkpoint-size" // a checkpoint is larger than the stored entries
	KindRollback       Kind = "rollback"        // a checkpoint seen elsewhere is larger than the stored entries
	KindFork           Kind = "fork"            // a checkpoint seen elsewhere has another root for its size
	KindNoCheckpoint   Kind = "checkpoint-none" // the store has no checkpoint at all
)

// Problem is one disagreement found.
type Problem struct {
	Kind Kind `json:"kind"`
	// Where locates it: "entry N", "checkpoint N", a tile path
	// ("tile/0/000"), "checkpoints" or "database".
	Where  string `json:"where"`
	Detail string `json:"detail"`
}

// Report is the result of Check.
type Report struct {
	// Entries counts the entries read (up to the first hole).
	Entries uint64 `json:"entries"`
	// Tiles counts the stored hash tiles, each once.
	Tiles uint64 `json:"tiles"`
	// Checkpoints counts the stored checkpoints.
	Checkpoints uint64 `json:"checkpoints"`
	// Problems lists every problem, in the order found; empty (not nil)
	// for a sound store.
	Problems []Problem `json:"problems"`
}

// Add records a problem.
func (r *Report) Add(kind Kind, where, format string, args ...any) {
	r.Problems = append(r.Problems, Problem{Kind: kind, Where: where, Detail: fmt.Sprintf(format, args...)})
}

// Options tune Check.
type Options struct {
	// Known are signed checkpoints of this log kept elsewhere (by an
	// auditor, a witness, a receipt), already verified with the log's key:
	// the stored entries must still give their roots. A store restored
	// from an older copy, or rewritten, fails here (rollback, fork) even
	// when it is consistent with itself.
	Known []verify.Checkpoint
	// Workers is how many goroutines read and check pages of entries at
	// once; 0 (the default) means one per core (runtime.GOMAXPROCS). The
	// report does not depend on it.
	Workers int
	// Sites, if set, are the site keys (a routing policy's sites) that
	// every attestation is checked against, with every event's tie to
	// one (site.Checker; problems unsigned, bad-site-signature,
	// site-not-allowed, site-key-not-valid). Without it attestation
	// entries are only checked to be stored right.
	Sites *site.Set
	// RequireSignatures, with Sites, reports every unsigned event (the
	// log's required mode), not only those at a location whose site had
	// a valid key.
	RequireSignatures bool
}

// Check recomputes everything in st from its entries and returns a report
// of every disagreement; verifier is the log's key, which every stored
// checkpoint note must verify with. st must implement store.TileLister (to
// find tiles no entry accounts for). The error is for failures to read
// the store, not for problems found, which are in the report.
//
// Check reads the entries a page at a time and checks each page's
// entries (leaf hash, event, columns) on opts.Workers goroutines while
// one goroutine recomputes the tree from the leaf hashes in order and
// compares the tiles and checkpoints. When st implements
// store.IndexChecker, the indexes behind its lookups are checked in bulk
// (store.IndexCheck), and every entry any of them misses is reported
// (sample-index, identity-index, leaf-index); otherwise each page's
// samples are looked up with Sample. Memory stays bounded whatever the
// log's size: a few pages of entries, the tree's right edge, the problems
// found and the index check's fixed-size state. The report is the same,
// problem for problem and in the same order, whatever the number of
// workers.
func Check(ctx context.Context, st store.Store, verifier note.Verifier, opts Options) (*Report, error) {
	tl, ok := st.(store.TileLister)
	if !ok {
		return nil, fmt.Errorf("fsck: the %T store cannot list its tiles (store.TileLister)", st)
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	c := &checker{ctx: ctx, st: st, tl: tl, rep: &Report{Problems: []Problem{}}, final: math.MaxUint64, workers: workers,
		b: tiles.New(), origin: verifier.Name(), verifiers: note.VerifierList(verifier), seen: map[uint64][]store.Hash{}}
	for _, k := range opts.Known {
		c.seen[k.Size] = append(c.seen[k.Size], k.Root)
	}
	if opts.Sites != nil {
		c.sites = site.NewChecker(opts.Sites, c.origin, opts.RequireSignatures)
	}
	for size := range c.seen {
		c.seenSizes = append(c.seenSizes, size)
	}
	slices.Sort(c.seenSizes)
	if err := c.run(); err != nil {
		return nil, err
	}
	if err := c.checkSampleMap(); err != nil {
		return nil, err
	}
	slices.SortStableFunc(c.found, func(a, b found) int { return a.at.cmp(b.at) })
	for _, f := range c.found {
		c.rep.Problems = append(c.rep.Problems, f.p)
	}
	return c.rep, nil
}

// at orders the problems as a check of one entry after another finds
// them: before entry pos is read (phase 0: the tiles the previous leaf
// completed, the checkpoints of size pos), then entry pos's own problems
// (phases 1 to 4). The problems found after the last entry come last.
type at struct {
	pos   uint64
	phase uint8
}

// Phases of at.
const (
	phaseBefore   = iota // tiles completed by leaf pos-1; checks of size pos
	phaseEntry           // the entry's columns and event
	phaseSample          // the sample index
	phaseIdentity        // the identity index
	phaseLeaf            // the leaf-hash index
)

var atEnd = at{pos: math.MaxUint64, phase: math.MaxUint8}

func (a at) cmp(b at) int {
	if c := cmp.Compare(a.pos, b.pos); c != 0 {
		return c
	}
	return cmp.Compare(a.phase, b.phase)
}

type found struct {
	at at
	p  Problem
}

type checker struct {
	ctx       context.Context
	st        store.Store
	tl        store.TileLister
	rep       *Report
	found     []found // the problems, in the order found (sorted by at at the end)
	workers   int
	b         *tiles.Builder
	origin    string
	verifiers note.Verifiers
	seen      map[uint64][]store.Hash // checkpoints seen elsewhere, by size
	seenSizes []uint64                // the sizes of seen not yet reached, smallest first
	cps       []store.Checkpoint      // stored checkpoints listed but not yet compared, smallest first
	cpsFrom   uint64                  // the next size to list stored checkpoints from
	cpsDone   bool                    // every stored checkpoint up to latest was listed
	latest    uint64                  // size of the latest checkpoint at the start
	final     uint64                  // largest size tiles may account for: unbounded while streaming, then entries or latest at the end
	sites     *site.Checker           // nil: no site check (sites.go)
}

// add records a problem found at a.
func (c *checker) add(a at, kind Kind, where, format string, args ...any) {
	c.found = append(c.found, found{a, Problem{Kind: kind, Where: where, Detail: fmt.Sprintf(format, args...)}})
}

func short(h [32]byte) string { return fmt.Sprintf("%x", h[:]) }

func tileWhere(level uint8, index uint64) string {
	return verify.TileAddr{Level: level, Index: index}.Path()
}

// checkSeen compares the root of the first size entries with the
// checkpoints of that size seen elsewhere.
func (c *checker) checkSeen(size uint64, root store.Hash) {
	for _, r := range c.seen[size] {
		if r != root {
			c.add(at{size, phaseBefore}, KindFork, fmt.Sprintf("checkpoint %d", size), "a checkpoint of size %d signed by the log has root %s, but the stored entries give %s", size, short(r), short(root))
		}
	}
	delete(c.seen, size)
	for len(c.seenSizes) > 0 && c.seenSizes[0] <= size {
		c.seenSizes = c.seenSizes[1:]
	}
}

// nextCheckpoint returns the smallest stored checkpoint not yet compared,
// listing them a page at a time (so that memory does not grow with the
// number of checkpoints), or false when there is none left.
func (c *checker) nextCheckpoint() (store.Checkpoint, bool, error) {
	if len(c.cps) == 0 && !c.cpsDone {
		cps, err := c.st.Checkpoints(c.ctx, c.cpsFrom, checkpointPage)
		if err != nil {
			return store.Checkpoint{}, false, fmt.Errorf("listing checkpoints: listing checkpoints from size %d: %w", c.cpsFrom, err)
		}
		for i, cp := range cps {
			if cp.Size < c.cpsFrom || (i > 0 && cp.Size <= cps[i-1].Size) {
				return store.Checkpoint{}, false, fmt.Errorf("listing checkpoints: the store listed checkpoint %d after checkpoint %d", cp.Size, max(c.cpsFrom, 1)-1)
			}
			if cp.Size > c.latest {
				// Appended after the check started.
				cps, c.cpsDone = cps[:i], true
				break
			}
		}
		if len(cps) < checkpointPage {
			c.cpsDone = true
		}
		if len(cps) > 0 {
			if last := cps[len(cps)-1].Size; last == math.MaxUint64 {
				c.cpsDone = true
			} else {
				c.cpsFrom = last + 1
			}
		}
		c.cps = cps
	}
	if len(c.cps) == 0 {
		return store.Checkpoint{}, false, nil
	}
	return c.cps[0], true, nil
}

// checkpointPage is how many stored checkpoints Check lists at a time.
const checkpointPage = 256

// checkCheckpoints checks the stored checkpoints of size n, the number of
// entries read so far, and returns the size of the next one (or
// math.MaxUint64 when there is none).
func (c *checker) checkCheckpoints(n uint64) (uint64, error) {
	for {
		cp, ok, err := c.nextCheckpoint()
		if err != nil || !ok {
			return math.MaxUint64, err
		}
		if cp.Size != n {
			return cp.Size, nil
		}
		c.checkCheckpoint(cp, c.b.Root())
		c.cps = c.cps[1:]
	}
}

func (c *checker) checkCheckpoint(cp store.Checkpoint, root store.Hash) {
	c.rep.Checkpoints++
	size := cp.Size
	a := at{size, phaseBefore}
	where := fmt.Sprintf("checkpoint %d", size)
	signed, _, err := verify.OpenCheckpoint(cp.Note, c.origin, c.verifiers)
	if err != nil {
		c.add(a, KindCheckpointNote, where, "note does not verify with the log key: %v", err)
	} else {
		if signed.Size != cp.Size {
			c.add(a, KindCheckpointNote, where, "signed note is for size %d", signed.Size)
		}
		if signed.Root != cp.Root {
			c.add(a, KindCheckpointNote, where, "signed note has root %s but the row %s", short(signed.Root), short(cp.Root))
		}
	}
	if cp.Root != root {
		c.add(a, KindCheckpoint, where, "root %s but entries give %s", short(cp.Root), short(root))
	} else if err == nil && signed.Root != root {
		c.add(a, KindCheckpoint, where, "signed root %s but entries give %s", short(signed.Root), short(root))
	}
}

// pageResult is what a worker found in one page of entries.
type pageResult struct {
	lo     uint64       // the page's first index
	leaves []tiles.Hash // the recomputed leaf hashes of entries lo, lo+1, ... up to the end or the first hole
	more   bool         // the page was full: the log may go on
	hole   uint64       // when > lo+len(leaves): the index of the first entry after a hole at lo+len(leaves)
	found  []found      // the entries' problems
	judged []judged     // entries some of whose index misses are already accounted for
	sites  []siteItem   // the entries for the site check, in order (sites.go)
	err    error
}

// judged marks the lookups of an entry whose index misses Check does not
// report: those of a column already reported wrong (the index lists the
// entry under the right key, or the lookup confirms candidates against the
// wrong column: either way the column is the problem), and the identity
// and sample of an entry that is not an event (as before the indexes were
// checked in bulk).
type judged struct {
	index   uint64
	lookups uint8 // bit 1<<store.Lookup
}

func (c *checker) run() error {
	ctx, st := c.ctx, c.st
	latest, err := st.Latest(ctx)
	switch {
	case errors.Is(err, store.ErrNotFound):
		c.add(at{}, KindNoCheckpoint, "checkpoints", "the store has no checkpoint")
	case err != nil:
		return err
	}
	c.latest = latest.Size
	var ic store.IndexCheck
	if x, ok := st.(store.IndexChecker); ok {
		if ic, err = x.NewIndexCheck(ctx); err != nil {
			return fmt.Errorf("checking the store's indexes: %w", err)
		}
	}
	if len(c.seen) > 0 {
		c.checkSeen(0, c.b.Root())
	}
	nextCP, err := c.checkCheckpoints(0)
	if err != nil {
		return err
	}

	// Workers take pages in order from pages and hand their results to
	// this goroutine through results, which it consumes in page order.
	// At most inflight pages are read and not yet consumed.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	inflight := 2*c.workers + 2
	pages := make(chan uint64)
	tokens := make(chan struct{}, inflight)
	results := make(chan *pageResult, inflight)
	var wg sync.WaitGroup
	go func() {
		defer close(pages)
		for lo := uint64(0); ; lo += page {
			select {
			case tokens <- struct{}{}:
			case <-ctx.Done():
				return
			}
			select {
			case pages <- lo:
			case <-ctx.Done():
				return
			}
		}
	}()
	for range c.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for lo := range pages {
				r := c.checkPage(ctx, lo, ic)
				select {
				case results <- r:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	defer wg.Wait()

	skip := map[uint64]uint8{}
	pending := map[uint64]*pageResult{}
	var n uint64 // entries seen (the next expected index)
	for {
		r, ok := pending[n]
		for !ok {
			select {
			case x := <-results:
				pending[x.lo] = x
			case <-ctx.Done():
				return ctx.Err()
			}
			r, ok = pending[n]
		}
		delete(pending, n)
		<-tokens
		if r.err != nil {
			return r.err
		}
		c.found = append(c.found, r.found...)
		c.checkSites(r)
		for _, j := range r.judged {
			skip[j.index] |= j.lookups
		}
		leaves := r.leaves
		for len(leaves) > 0 {
			// Append leaves up to the next size where a checkpoint is
			// compared, checking each full tile.
			k := uint64(len(leaves))
			if len(c.seenSizes) > 0 && c.seenSizes[0] > n {
				k = min(k, c.seenSizes[0]-n)
			}
			if nextCP > n {
				k = min(k, nextCP-n)
			}
			for _, t := range c.b.AppendTiles(leaves[:k]) {
				if len(t.Data) == tiles.Width*tiles.HashSize {
					// A full tile is final: checked when its last leaf is in.
					done := (t.Index+1)<<(tiles.Height*(uint(t.Level)+1)) - 1
					if err := c.checkTile(at{done + 1, phaseBefore}, t.Level, t.Index, t.Data); err != nil {
						return err
					}
				}
			}
			leaves = leaves[k:]
			n += k
			if len(c.seenSizes) > 0 && c.seenSizes[0] == n {
				c.checkSeen(n, c.b.Root())
			}
			if nextCP == n {
				if nextCP, err = c.checkCheckpoints(n); err != nil {
					return err
				}
			}
		}
		if r.hole > n {
			c.add(at{n, phaseEntry}, KindMissingEntry, fmt.Sprintf("entry %d", n), "entries %d to %d are missing", n, r.hole-1)
			// The tree cannot be recomputed past a hole.
			break
		}
		if !r.more {
			sizes := slices.Sorted(maps.Keys(c.seen))
			for _, size := range sizes {
				c.add(atEnd, KindRollback, fmt.Sprintf("checkpoint %d", size), "the log signed a checkpoint of size %d, but only %d entries are stored: the database was rolled back or truncated", size, n)
			}
			break
		}
	}
	cancel()
	wg.Wait()
	c.rep.Entries = n
	c.finishSites()
	if ic != nil {
		if err := c.indexMisses(c.ctx, ic, n, skip); err != nil {
			return err
		}
	}
	return c.finish(n)
}

// checkPage reads and checks the page of entries from lo.
func (c *checker) checkPage(ctx context.Context, lo uint64, ic store.IndexCheck) *pageResult {
	r := &pageResult{lo: lo}
	es, err := c.st.Entries(ctx, lo, lo+page)
	if err != nil {
		r.err = err
		return r
	}
	r.more = len(es) == page
	r.leaves = make([]tiles.Hash, 0, len(es))
	var samples map[string]map[uint64]bool // without an IndexCheck: the page's sample indexes read so far
	if ic == nil {
		samples = map[string]map[uint64]bool{}
	}
	for i := range es {
		en := &es[i]
		want := lo + uint64(i)
		if en.Index != want {
			if en.Index < want {
				r.err = fmt.Errorf("store returned entry %d after entry %d", en.Index, want-1)
				return r
			}
			r.hole = en.Index
			es = es[:i]
			break
		}
		leaf, err := c.checkEntry(ctx, r, en, es, samples)
		if err != nil {
			r.err = err
			return r
		}
		r.leaves = append(r.leaves, leaf)
	}
	if ic != nil {
		if err := ic.Add(ctx, es); err != nil {
			r.err = fmt.Errorf("checking the store's indexes: %w", err)
		}
	}
	return r
}

// checkEntry checks an entry's columns and, without an IndexCheck, its
// sample index (es is its page, samples the sample indexes of the page
// read so far), and returns its recomputed leaf hash.
func (c *checker) checkEntry(ctx context.Context, r *pageResult, en *store.Entry, es []store.Entry, samples map[string]map[uint64]bool) (store.Hash, error) {
	a := at{en.Index, phaseEntry}
	where := func() string { return fmt.Sprintf("entry %d", en.Index) }
	add := func(a at, kind Kind, format string, args ...any) {
		r.found = append(r.found, found{a, Problem{Kind: kind, Where: where(), Detail: fmt.Sprintf(format, args...)}})
	}
	var skip uint8
	defer func() {
		if skip != 0 {
			r.judged = append(r.judged, judged{en.Index, skip})
		}
	}()
	leaf := tiles.LeafHash(en.Data)
	if leaf != en.LeafHash {
		add(a, KindLeafHash, "stored %s, computed %s", short(en.LeafHash), short(leaf))
		skip |= 1 << store.LookupLeafHash
	}
	if record.KindOf(en.Data) == record.EntryAttestation {
		c.checkAttestationEntry(r, en, add)
		return leaf, nil
	}
	ev, err := record.DecodeEntry(en.Data)
	if err != nil {
		add(a, KindBadEntry, "%v", err)
		skip |= 1<<store.LookupIdentity | 1<<store.LookupSample
		return leaf, nil
	}
	id := ev.Identity()
	if id != en.Identity {
		add(a, KindIdentity, "stored %s, computed %s", short(en.Identity), short(id))
		skip |= 1 << store.LookupIdentity
	}
	if ev.Sample != en.Sample {
		add(a, KindSample, "stored %q, event has %q", en.Sample, ev.Sample)
	}
	c.keepEvent(r, en.Index, &ev, id)
	if samples == nil {
		// The IndexCheck judges the sample index of the entries whose
		// stored sample is right. Both backends' Sample(ev.Sample) lists
		// only entries whose stored sample is ev.Sample, so it cannot
		// list this one.
		if ev.Sample != en.Sample {
			add(at{en.Index, phaseSample}, KindSampleIndex, "not listed for sample %q", ev.Sample)
			skip |= 1 << store.LookupSample
		}
		return leaf, nil
	}
	idx, ok := samples[ev.Sample]
	if !ok {
		list, err := c.st.Sample(ctx, ev.Sample)
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
		add(at{en.Index, phaseSample}, KindSampleIndex, "not listed for sample %q", ev.Sample)
	}
	return leaf, nil
}

// indexMisses reports the entries below n that ic found missing from an
// index, but for the lookups of each entry in skip (see judged). It
// reads the entries again for their keys, a page at a time.
func (c *checker) indexMisses(ctx context.Context, ic store.IndexCheck, n uint64, skip map[uint64]uint8) error {
	misses, err := ic.Finish(ctx)
	if err != nil {
		return fmt.Errorf("checking the store's indexes: %w", err)
	}
	var es []store.Entry // the page holding the current miss
	for _, m := range misses {
		if m.Index >= n || skip[m.Index]&(1<<m.Lookup) != 0 {
			continue
		}
		if len(es) == 0 || m.Index < es[0].Index || m.Index > es[len(es)-1].Index {
			if es, err = c.st.Entries(ctx, m.Index, min(m.Index+page, n)); err != nil {
				return err
			}
		}
		i := sort.Search(len(es), func(i int) bool { return es[i].Index >= m.Index })
		if i == len(es) || es[i].Index != m.Index {
			return fmt.Errorf("entry %d, read before, is no longer in the store", m.Index)
		}
		en := &es[i]
		where := fmt.Sprintf("entry %d", m.Index)
		switch m.Lookup {
		case store.LookupSample:
			c.add(at{m.Index, phaseSample}, KindSampleIndex, where, "not listed for sample %q", en.Sample)
		case store.LookupIdentity:
			c.add(at{m.Index, phaseIdentity}, KindIdentityIndex, where, "not listed for identity %s: ByIdentity may not find the entry, and the log may accept a duplicate of it", short(en.Identity))
		case store.LookupLeafHash:
			c.add(at{m.Index, phaseLeaf}, KindLeafIndex, where, "not listed for leaf hash %s: ByLeafHash may not find the entry", short(en.LeafHash))
		}
	}
	return nil
}

// checkTile compares stored tile (level, index) with the recomputed data;
// its problems are found at a.
func (c *checker) checkTile(a at, level uint8, index uint64, want []byte) error {
	rep := c.rep
	where := tileWhere(level, index)
	data, err := c.st.Tile(c.ctx, level, index)
	minW := tiles.TileWidth(level, index, c.latest)
	if errors.Is(err, store.ErrNotFound) {
		if minW > 0 {
			c.add(a, KindTileMissing, where, "not stored, but the latest checkpoint (size %d) needs %d hashes of it", c.latest, minW)
		}
		return nil
	}
	if err != nil {
		return err
	}
	rep.Tiles++
	if len(data)%tiles.HashSize != 0 {
		c.add(a, KindTileWidth, where, "stored data is %d bytes, not a multiple of 32", len(data))
		return nil
	}
	w := len(data) / tiles.HashSize
	maxW := tiles.TileWidth(level, index, c.final)
	if w < minW {
		c.add(a, KindTileWidth, where, "stored width %d, but the latest checkpoint (size %d) needs %d", w, c.latest, minW)
	}
	if w > maxW {
		c.add(a, KindTileWidth, where, "stored width %d, but the %d entries give only %d", w, c.final, maxW)
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
		c.add(a, KindTile, where, "hash %d differs: stored %x, computed %x", bad[0], data[bad[0]*hs:bad[0]*hs+hs], want[bad[0]*hs:bad[0]*hs+hs])
	case len(bad) > 1:
		c.add(a, KindTile, where, "hash %d differs (and %d more: %s)", bad[0], len(bad)-1, intList(bad[1:], 8))
	}
	return nil
}

func intList(xs []int, limit int) string {
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
func (c *checker) finish(n uint64) error {
	rep := c.rep
	if n < c.latest {
		c.add(atEnd, KindMissingEntry, fmt.Sprintf("entry %d", n), "the latest checkpoint has size %d but only %d entries are stored", c.latest, n)
	}
	for {
		cp, ok, err := c.nextCheckpoint()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		c.cps = c.cps[1:]
		rep.Checkpoints++
		c.add(atEnd, KindCheckpointSize, fmt.Sprintf("checkpoint %d", cp.Size), "beyond the %d stored entries", n)
	}
	c.final = n
	if l, err := c.st.Latest(c.ctx); err == nil && l.Size > c.final {
		c.final = l.Size // the log grew while fsck ran
	}
	for _, t := range c.b.Edges() {
		if err := c.checkTile(atEnd, t.Level, t.Index, t.Data); err != nil {
			return err
		}
	}
	return c.tl.EachTile(c.ctx, func(t store.TileInfo) error {
		if t.Level < 0 || t.Level > 255 || t.Index < 0 {
			c.add(atEnd, KindTileExtra, fmt.Sprintf("tile/%d/%d", t.Level, t.Index), "invalid tile address")
			return nil
		}
		if tiles.TileWidth(uint8(t.Level), uint64(t.Index), c.final) == 0 {
			rep.Tiles++
			c.add(atEnd, KindTileExtra, tileWhere(uint8(t.Level), uint64(t.Index)), "stored (%d hashes) but the %d entries need no such tile", t.Length/tiles.HashSize, c.final)
		}
		return nil
	})
}
