package log

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/sampleindex"
	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/verify"
	"github.com/transparency-dev/merkle/compact"
)

// The verifiable sample index (package sampleindex, docs/sample-index.md).
//
// When the store keeps sample index tiles (store.SampleMap, both custody
// backends), the sequencer keeps a sampleindex.Map of the log: before it
// signs a batch's checkpoint it applies the batch's events to the map (key
// sampleindex.KeyOf(sample), the entry's leaf hash; entries that are not
// events, such as attestations, are not indexed), and the checkpoint
// carries the map root as an extension line (sampleindex.FormatExtension)
// after the three standard lines. So every checkpoint the log publishes
// commits the index up to its own size.
//
// The map's tiles are derived data, written to the store off the commit
// path: every SampleIndexOptions.FlushEntries entries or FlushInterval,
// between two batches once the pipeline is drained (so the stored map
// never covers an entry that is not committed), and at a clean shutdown.
// Open opens the map at the stored map size and replays the entries after
// it; a log whose map was never written gets it built from its entries
// (a log made before the index existed, whose checkpoints commit none,
// only when SampleIndexOptions.Enabled asks). The result is checked
// against the map
// root the latest checkpoint commits (if it carries one); a stored map
// that does not match is rebuilt from the log.

// Defaults for SampleIndexOptions. A write of the map costs about the
// tiles the entries since the last one touched: with random samples, on a
// map of 1 M samples, 262,144 entries already touch most of its tiles, so
// a write every 1 M entries (or 30 s) writes about 4 times fewer bytes
// than one every 262,144 for the same memory (the dirty tiles are kept
// parsed until written; docs/performance.md, "Sample index").
const (
	DefaultIndexFlushEntries  = 1 << 20
	DefaultIndexFlushInterval = 30 * time.Second
	// DefaultIndexRawCacheBytes holds the stored tiles of a log of about
	// 5 M distinct samples.
	DefaultIndexRawCacheBytes = 512 << 20
	// indexReplayPage is how many entries a replay reads and applies at
	// once.
	indexReplayPage = 1 << 14
)

// ErrNoSampleIndex is returned by SampleProof when the log keeps no sample
// index (the store has no sample index tables, or it was disabled). An
// index that failed to load or to follow the store gives an error
// wrapping ErrUnavailable instead (the server's log says why).
var ErrNoSampleIndex = errors.New("the log keeps no sample index")

// errIndexUnavailable: the index failed to load or to follow the store.
var errIndexUnavailable = fmt.Errorf("%w: the sample index is unavailable (it failed to load or to follow the store: the server's log says why)", ErrUnavailable)

// SampleIndexOptions configure the sample index of a Log.
type SampleIndexOptions struct {
	// Disabled keeps no index: checkpoints carry no index line. (For
	// measuring the index's cost; a log should not switch it off and on.)
	Disabled bool
	// Enabled keeps the index even when the log's latest checkpoint does
	// not commit one: a log created before the index existed (or without
	// it) gets it built from its entries at open, which reads every entry
	// (hours at 100 M entries). Without it the log keeps the index exactly
	// when its latest checkpoint commits one, so an upgrade never starts
	// such a build unasked, and a log that commits an index never drops
	// it.
	Enabled bool
	// FlushEntries and FlushInterval: the map's changed tiles are written
	// to the store once this many entries were indexed since the last
	// write, or this long after it (0: the defaults). More entries
	// between writes means fewer and larger writes, and more memory.
	FlushEntries  uint64
	FlushInterval time.Duration
	// Map tunes the map's cache of parsed tiles (nil: sampleindex's
	// defaults).
	Map *sampleindex.Options
	// RawCacheBytes bounds the cache of stored tiles as stored, which a
	// map just opened is loaded into with one sequential scan (0:
	// DefaultIndexRawCacheBytes; negative: none). About 95 bytes a log
	// entry (plus ~60 bytes a tile of index) hold all of a map of
	// distinct samples.
	RawCacheBytes int
}

// SampleIndexWriter keeps the sample index of a log in its store: it
// indexes batches of entries in log order and writes the map's tiles to
// the store now and then. The Log uses one; tools that append to a store
// directly (loadgen.Prefill) use one too, so that their checkpoints carry
// the same index line as the sequencer's. It is safe for concurrent use
// (one writer, any number of provers).
type SampleIndexWriter struct {
	sm     store.SampleMap
	st     store.Store
	opts   SampleIndexOptions
	logger *slog.Logger

	mu        sync.RWMutex
	m         *sampleindex.Map
	size      uint64 // log entries indexed (m.Size() lags it when the last ones are not events)
	base      uint64 // the stored map size m was opened at, or last written
	lastFlush time.Time
	ok        bool // m is the index of the log up to size

	// readMax is the newest stored map size the map may read tiles of:
	// base, kept apart so that the map's reads (under mu) need no lock.
	readMax atomic.Uint64
	raw     rawTiles
}

// ReadTiles reads the map's tiles (sampleindex.TileReader): those of the
// stored map this writer opened or last wrote, from the raw tile cache or
// the store; a newer one (written by another server) fails the read with
// store.ErrConflict.
func (w *SampleIndexWriter) ReadTiles(ctx context.Context, ids []sampleindex.TileID) (map[sampleindex.TileID][]byte, error) {
	out, miss := w.raw.get(ids)
	if len(miss) == 0 {
		return out, nil
	}
	got, err := w.sm.ReadSampleTiles(ctx, miss, w.readMax.Load())
	if err != nil {
		return nil, err
	}
	for id, data := range got {
		out[id] = data
		w.raw.put(id, data)
	}
	return out, nil
}

// rawTiles caches stored tiles as stored (encoded: about a third of the
// memory of the map's parsed tiles), up to a byte budget, so that the
// tiles the map's own cache evicts, and those of a map just opened, are
// parsed again rather than read from the store one lookup at a time. It
// holds the versions of the writer's stored map only: filled by a
// sequential scan at open, by reads, and by the writer's own flushes.
// The tiles live in one arena and the index holds offsets, so that the
// garbage collector has no pointer to follow in either.
type rawTiles struct {
	mu    sync.Mutex
	idx   map[sampleindex.TileID]rawRef
	arena []byte
	live  int // bytes of arena that idx refers to
	max   int
	gen   uint64 // changed by reset and by every write of the map: stops a preload
}

type rawRef struct{ off, n uint32 }

func (c *rawTiles) reset(max int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.idx, c.arena, c.live, c.max = map[sampleindex.TileID]rawRef{}, nil, 0, min(max, 1<<32-1)
	c.gen++
}

// generation returns the current generation.
func (c *rawTiles) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// newGeneration marks a write of the map: a preload of the versions
// before it stops.
func (c *rawTiles) newGeneration() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
}

// errPreloadDone stops a preload: the cache is full, or the map was
// written or reopened since it started.
var errPreloadDone = errors.New("preload done")

// preloaded adds a tile read by a preload of generation gen, unless the
// cache holds it already (a read or a write got there first).
func (c *rawTiles) preloaded(id sampleindex.TileID, data []byte, gen uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return errPreloadDone
	}
	if _, had := c.idx[id]; had {
		return nil
	}
	if len(c.arena)+len(data) > c.max {
		return errPreloadDone
	}
	c.idx[id] = rawRef{off: uint32(len(c.arena)), n: uint32(len(data))}
	c.arena = append(c.arena, data...)
	c.live += len(data)
	return nil
}

// get returns the cached tiles among ids (sub-slices of the arena, never
// modified) and the ids it does not hold.
func (c *rawTiles) get(ids []sampleindex.TileID) (map[sampleindex.TileID][]byte, []sampleindex.TileID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[sampleindex.TileID][]byte, len(ids))
	var miss []sampleindex.TileID
	for _, id := range ids {
		if r, ok := c.idx[id]; ok {
			out[id] = c.arena[r.off : r.off+r.n : r.off+r.n]
		} else {
			miss = append(miss, id)
		}
	}
	return out, miss
}

// put copies data into the cache (replacing the cached version) if it
// fits, compacting the arena first when that makes it fit and a quarter
// of it or more is replaced versions.
func (c *rawTiles) put(id sampleindex.TileID, data []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	old, had := c.idx[id]
	if garbage := len(c.arena) - c.live; len(c.arena)+len(data) > c.max && garbage >= len(c.arena)/4 && c.live+len(data) <= c.max {
		c.compact()
	}
	if len(c.arena)+len(data) > c.max {
		if had {
			delete(c.idx, id) // never serve a stale version
			c.live -= int(old.n)
		}
		return false
	}
	if had {
		c.live -= int(old.n)
	}
	c.idx[id] = rawRef{off: uint32(len(c.arena)), n: uint32(len(data))}
	c.arena = append(c.arena, data...)
	c.live += len(data)
	return true
}

// compact copies the live tiles into a new arena.
func (c *rawTiles) compact() {
	arena := make([]byte, 0, c.live+c.live/4)
	for id, r := range c.idx {
		c.idx[id] = rawRef{off: uint32(len(arena)), n: r.n}
		arena = append(arena, c.arena[r.off:r.off+r.n]...)
	}
	c.arena = arena
}

// preload fills the cache with a sequential scan of the stored tiles of
// map size at most maxSize, in the background, until the budget is spent
// or the map is written or reopened (a new generation of the cache): so
// that opening a large log does not wait for it, and a map just opened
// parses its tiles from memory soon after. Tiles the map needs before the
// scan reaches them are read from the store as usual.
func (w *SampleIndexWriter) preload(maxSize uint64) {
	gen := w.raw.generation()
	start := time.Now()
	err := w.sm.EachSampleTile(context.Background(), func(t store.SampleTile) error {
		if t.Size > maxSize {
			return nil // another server's newer version: read when needed
		}
		id, err := sampleindex.ParseTileKey(t.Key)
		if err != nil {
			return nil // damaged: the map's read reports it
		}
		return w.raw.preloaded(id, t.Data, gen)
	})
	if err != nil && err != errPreloadDone {
		w.logger.Warn("loading the sample index tiles into memory", "err", err)
		return
	}
	w.raw.mu.Lock()
	tiles, bytes := len(w.raw.idx), w.raw.live
	w.raw.mu.Unlock()
	w.logger.Info("sample index tiles loaded into memory", "tiles", tiles, "bytes", bytes, "took", time.Since(start).Round(time.Millisecond))
}

// OpenSampleIndex returns the sample index of the log in st, brought up to
// cp, the store's latest checkpoint (already verified by the caller); or
// nil when st keeps no sample index (or opts.Disabled). It opens the map
// at the stored map size and indexes the entries after it, writing the
// map now and then; if the result does not match the root cp commits, or
// the stored map is beyond cp, it logs why, resets the stored map and
// rebuilds it from the log (progress is logged every million entries).
func OpenSampleIndex(ctx context.Context, st store.Store, cp verify.Checkpoint, opts SampleIndexOptions, logger *slog.Logger) (*SampleIndexWriter, error) {
	w := newSampleIndex(st, opts, logger)
	if w == nil {
		return nil, nil
	}
	if keep, err := keepIndex(cp, opts); err != nil || !keep {
		return nil, err
	}
	if err := w.load(ctx, cp, true, true); err != nil {
		return nil, err
	}
	return w, nil
}

// keepIndex reports whether a log whose latest checkpoint is cp keeps a
// sample index: when cp commits one, or opts.Enabled asks for it.
func keepIndex(cp verify.Checkpoint, opts SampleIndexOptions) (bool, error) {
	_, err := sampleindex.FindExtension(cp.Extensions)
	switch {
	case err == nil || opts.Enabled:
		return true, nil
	case errors.Is(err, sampleindex.ErrNoExtension):
		return false, nil
	}
	return false, fmt.Errorf("sample index: the checkpoint of size %d: %w", cp.Size, err)
}

// newSampleIndex returns an unloaded index, or nil if st keeps none.
func newSampleIndex(st store.Store, opts SampleIndexOptions, logger *slog.Logger) *SampleIndexWriter {
	sm, ok := st.(store.SampleMap)
	if !ok || opts.Disabled {
		return nil
	}
	if opts.FlushEntries == 0 {
		opts.FlushEntries = DefaultIndexFlushEntries
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = DefaultIndexFlushInterval
	}
	if opts.RawCacheBytes == 0 {
		opts.RawCacheBytes = DefaultIndexRawCacheBytes
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &SampleIndexWriter{sm: sm, st: st, opts: opts, logger: logger}
}

// load reopens the map at the stored size and replays the log up to cp
// (flushing as it goes when write is set); if the result does not match
// cp's committed root and mayReset is set, it resets the stored map and
// rebuilds it from the log.
func (w *SampleIndexWriter) load(ctx context.Context, cp verify.Checkpoint, write, mayReset bool) error {
	want, err := sampleindex.FindExtension(cp.Extensions)
	committed := err == nil
	if err != nil && !errors.Is(err, sampleindex.ErrNoExtension) {
		return fmt.Errorf("sample index: the checkpoint of size %d: %w", cp.Size, err)
	}
	for attempt := 0; ; attempt++ {
		err := w.reopen(ctx, cp.Size, write)
		if err == nil && committed {
			var got sampleindex.Hash
			if got, err = w.m.Root(ctx); err == nil && got != want {
				err = fmt.Errorf("%w: the sample index rebuilt from the stored map and the log has root %x at size %d, the checkpoint commits %x", errCorrupt, got[:], cp.Size, want[:])
			}
		}
		w.mu.Lock()
		w.ok = err == nil
		w.mu.Unlock()
		if err == nil {
			return nil
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		if attempt >= 2 || !mayReset {
			return fmt.Errorf("sample index: %w", err)
		}
		if errors.Is(err, store.ErrConflict) && attempt == 0 {
			continue // another writer flushed meanwhile: read again
		}
		w.logger.Error("the stored sample index does not match the log: rebuilding it from the entries", "err", err)
		if err := w.sm.ResetSampleMap(ctx); err != nil {
			return fmt.Errorf("sample index: %w", err)
		}
	}
}

// reopen opens the map at the stored size and indexes the entries from it
// to size, writing the map every FlushEntries entries when write is set.
func (w *SampleIndexWriter) reopen(ctx context.Context, size uint64, write bool) error {
	stored, err := w.sm.SampleMapSize(ctx)
	if err != nil {
		return err
	}
	if stored > size {
		return fmt.Errorf("%w: the stored sample index covers %d entries, the log has %d (was the log restored from an older copy?)", errCorrupt, stored, size)
	}
	w.mu.Lock()
	w.readMax.Store(stored)
	w.raw.reset(w.opts.RawCacheBytes)
	if stored > 0 && w.opts.RawCacheBytes > 0 {
		go w.preload(stored)
	}
	w.m = sampleindex.Open(w, stored, w.opts.Map)
	w.size, w.base, w.lastFlush = stored, stored, time.Now()
	w.mu.Unlock()
	if stored < size {
		w.logger.Info("indexing samples", "from", stored, "to", size)
	}
	start, next := time.Now(), stored+1<<20
	for from := stored; from < size; {
		to := min(from+indexReplayPage, size)
		es, err := w.st.Entries(ctx, from, to)
		if err != nil {
			return fmt.Errorf("reading entries %d to %d: %w", from, to, err)
		}
		if uint64(len(es)) != to-from {
			return fmt.Errorf("%w: the store holds %d of the entries %d to %d", errCorrupt, len(es), from, to)
		}
		if _, err := w.add(ctx, es, false); err != nil {
			return err
		}
		from = to
		if write && from-w.base >= w.opts.FlushEntries {
			if err := w.flush(ctx); err != nil {
				return err
			}
		}
		if from >= next || from == size && size-stored >= 1<<20 {
			w.logger.Info("indexing samples", "size", from, "of", size, "took", time.Since(start).Round(time.Millisecond))
			next += 1 << 20
		}
	}
	if write && size > w.base {
		return w.flush(ctx)
	}
	return nil
}

// changesOf returns the index changes of entries: one per event entry.
func changesOf(es []store.Entry) []sampleindex.Change {
	cs := make([]sampleindex.Change, 0, len(es))
	for i := range es {
		e := &es[i]
		if record.KindOf(e.Data) != record.EntryEvent {
			continue
		}
		cs = append(cs, sampleindex.Change{Key: sampleindex.KeyOf(e.Sample), Index: e.Index, LeafHash: e.LeafHash})
	}
	return cs
}

// Size returns the number of log entries the index covers.
func (w *SampleIndexWriter) Size() uint64 {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.size
}

// Add indexes entries, the next ones of the log (consecutive indexes from
// Size), and returns the checkpoint extension line committing the index
// of the log up to and including them. On error nothing is indexed.
func (w *SampleIndexWriter) Add(ctx context.Context, entries []store.Entry) (string, error) {
	return w.add(ctx, entries, true)
}

// add is Add; during a load (!mustBeOK) the index is not available yet.
func (w *SampleIndexWriter) add(ctx context.Context, entries []store.Entry, mustBeOK bool) (string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if mustBeOK && !w.ok {
		return "", errIndexUnavailable
	}
	for i := range entries {
		if entries[i].Index != w.size+uint64(i) {
			return "", fmt.Errorf("sample index: entry %d of a batch has index %d, want %d", i, entries[i].Index, w.size+uint64(i))
		}
	}
	root, err := w.m.Update(ctx, changesOf(entries))
	if err != nil {
		return "", fmt.Errorf("sample index: %w", err)
	}
	w.size += uint64(len(entries))
	return sampleindex.FormatExtension(root), nil
}

// FlushDue reports whether the map should be written (FlushEntries or
// FlushInterval reached, with something to write).
func (w *SampleIndexWriter) FlushDue() bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	n := w.size - w.base
	return w.ok && n > 0 && (n >= w.opts.FlushEntries || time.Since(w.lastFlush) >= w.opts.FlushInterval)
}

// FlushPending reports whether entries were indexed since the map was
// last written.
func (w *SampleIndexWriter) FlushPending() bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.ok && w.size > w.base
}

// Flush writes the map's changed tiles and its size to the store, in one
// transaction. The caller must make sure that every entry the index
// covers is committed. If another writer flushed the stored map since
// (store.ErrConflict), it returns that error: reload the index.
func (w *SampleIndexWriter) Flush(ctx context.Context) error {
	w.mu.RLock()
	ok := w.ok
	w.mu.RUnlock()
	if !ok {
		return errIndexUnavailable
	}
	return w.flush(ctx)
}

func (w *SampleIndexWriter) flush(ctx context.Context) error {
	// Holding mu keeps Add out: the map's state is the index of the first
	// w.size entries (the map's own size is smaller when the last entries
	// are not events), and that is the size stored.
	w.mu.Lock()
	defer w.mu.Unlock()
	size := w.size
	err := w.m.Flush(ctx, func(ctx context.Context, _ uint64, tiles []sampleindex.Tile) error {
		if err := w.sm.WriteSampleMap(ctx, w.base, size, tiles); err != nil {
			return err
		}
		w.raw.newGeneration()
		for _, t := range tiles {
			w.raw.put(t.ID, t.Data)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sample index: %w", err)
	}
	w.base, w.lastFlush = size, time.Now()
	w.readMax.Store(size)
	return nil
}

// prove returns the map proof of sample's key and the log size it is for
// (Add waits for it).
func (w *SampleIndexWriter) prove(ctx context.Context, sample string) (*sampleindex.MapProof, uint64, error) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if !w.ok {
		return nil, 0, errIndexUnavailable
	}
	p, err := w.m.Prove(ctx, sampleindex.KeyOf(sample))
	if err != nil {
		return nil, 0, fmt.Errorf("sample index: %w", err)
	}
	return p, w.size, nil
}

// Log integration.

// checkpointText returns the checkpoint whose text cp's note signs: its
// origin, size and root, and its extension lines (the index line).
func (l *Log) checkpointText(cp store.Checkpoint) verify.Checkpoint {
	c := verify.Checkpoint{Origin: l.origin, Size: cp.Size, Root: cp.Root}
	if text, _, ok := bytes.Cut(cp.Note, []byte("\n\n")); ok {
		if p, err := verify.ParseCheckpoint(append(bytes.Clone(text), '\n')); err == nil && p.Origin == c.Origin && p.Size == c.Size && p.Root == c.Root {
			c.Extensions = p.Extensions
		}
	}
	return c
}

// openIndex opens the log's sample index (Open) at the store's latest
// checkpoint, l.cur, just loaded: a log that shares its store does not
// write nor reset the stored map here (it may not hold the lease).
//
// A server sharing the store whose index does not load (the stored map
// does not match, and it may not rebuild it) starts anyway, without sample
// proofs (they fail with ErrUnavailable): if it takes the lease, its first
// batch rebuilds the index before it signs anything.
func (l *Log) openIndex(ctx context.Context) error {
	l.idx = newSampleIndex(l.st, l.cfg.SampleIndex, l.logger)
	if l.idx != nil {
		c, err := l.openCheckpoint(l.cur.Note)
		if err != nil {
			return err
		}
		keep, err := keepIndex(c, l.cfg.SampleIndex)
		if err != nil {
			return err
		}
		if !keep {
			l.logger.Info("the log's checkpoints commit no sample index: keeping none (custody serve --sample-index builds it)", "size", c.Size)
			l.idx = nil
			return nil
		}
	}
	err := l.reloadIndex(ctx, l.cur, !l.cfg.Shared)
	if err != nil && l.cfg.Shared && ctx.Err() == nil {
		l.logger.Error("the sample index did not load: serving no sample proofs until it does", "err", err)
		return nil
	}
	return err
}

// indexBatch indexes a prepared batch's entries on the sequencer and
// returns the checkpoint's extension lines (none without an index). If the
// index is not at the batch's start (a batch prepared before failed after
// indexing), it marks the log broken, so that the next batch reloads.
func (l *Log) indexBatch(ctx context.Context, entries []store.Entry) ([]string, error) {
	if l.idx == nil {
		return nil, nil
	}
	if s := l.idx.Size(); s != l.cur.Size {
		l.broken.Store(true)
		return nil, fmt.Errorf("%w: the sample index covers %d entries, the log %d: reloading", ErrUnavailable, s, l.cur.Size)
	}
	line, err := l.idx.Add(ctx, entries)
	if err != nil {
		// Unavailable, or a store read failed: reload (and rebuild if
		// need be) before the next batch. A log never signs a checkpoint
		// without its index line.
		l.broken.Store(true)
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return []string{line}, nil
}

// reloadIndex brings the index to cp, just reloaded from the store, on the
// sequencer: the map may hold entries of batches that were not committed.
// mayReset (the log appends): the stored map may be written, and reset and
// rebuilt if it does not match.
func (l *Log) reloadIndex(ctx context.Context, cp store.Checkpoint, mayReset bool) error {
	if l.idx == nil {
		return nil
	}
	c, err := l.openCheckpoint(cp.Note)
	if err != nil {
		return err
	}
	if err := l.idx.load(ctx, c, mayReset, mayReset); err != nil {
		return fmt.Errorf("log: %w", err)
	}
	return nil
}

// maybeFlushIndex writes the index's tiles when due, on the sequencer
// between two batches: it first waits for the batches in flight to commit,
// so the stored map covers committed entries only.
func (l *Log) maybeFlushIndex() {
	if l.idx == nil || !l.idx.FlushDue() {
		return
	}
	l.drain()
	if l.broken.Load() {
		return // reloaded before the next batch
	}
	ctx, cancel := context.WithTimeout(l.ctx, 4*l.cfg.CommitTimeout)
	defer cancel()
	l.flushIndex(ctx)
}

// flushIndex writes the index (all batches committed); on a conflict
// (another server wrote the shared map) the next batch reloads it.
func (l *Log) flushIndex(ctx context.Context) {
	start := time.Now()
	size := l.idx.Size()
	if err := l.idx.Flush(ctx); err != nil {
		if errors.Is(err, store.ErrConflict) {
			// Another server wrote the shared map since this one
			// loaded it: expected of a server that lost the lease.
			l.logger.Info("not writing the sample index: another server wrote it", "size", size, "err", err)
			l.broken.Store(true)
			return
		}
		l.logger.Error("writing the sample index", "size", size, "err", err)
		return
	}
	l.logger.Debug("sample index written", "size", size, "took", time.Since(start))
}

// shutdownIndex writes the index at a clean shutdown (the sequencer has
// stopped, every batch is committed), unless a commit failed.
func (l *Log) shutdownIndex(ctx context.Context) {
	if l.idx == nil || l.broken.Load() || !l.idx.FlushPending() {
		return
	}
	l.flushIndex(ctx)
}

// followIndex brings the index to cp, a checkpoint another server stored
// (Sync), reading its entries from the store. A failure does not stop the
// sync: the index is reopened from the store and, failing that, marked
// unavailable (SampleProof fails) until a later sync succeeds.
func (l *Log) followIndex(ctx context.Context, cp store.Checkpoint, c verify.Checkpoint) {
	if l.idx == nil {
		return
	}
	w := l.idx
	err := func() error {
		w.mu.RLock()
		ok, m, base, from := w.ok, w.m, w.base, w.size
		w.mu.RUnlock()
		if !ok {
			return errors.New("unavailable")
		}
		// Keep memory bounded: once the leader wrote a newer map, start
		// from it.
		if stored, err := w.sm.SampleMapSize(ctx); err != nil || (stored > base && stored <= cp.Size) {
			return errors.New("the stored map moved on")
		}
		for from < cp.Size {
			to := min(from+indexReplayPage, cp.Size)
			es, err := l.st.Entries(ctx, from, to)
			if err != nil {
				return err
			}
			if uint64(len(es)) != to-from {
				return fmt.Errorf("the store holds %d of the entries %d to %d", len(es), from, to)
			}
			if _, err := w.Add(ctx, es); err != nil {
				return err
			}
			from = to
		}
		want, err := sampleindex.FindExtension(c.Extensions)
		if errors.Is(err, sampleindex.ErrNoExtension) {
			return nil
		}
		if err != nil {
			return err
		}
		if got, err := m.Root(ctx); err != nil || got != want {
			return fmt.Errorf("root %x at size %d, the checkpoint commits %x (%v)", got[:], cp.Size, want[:], err)
		}
		return nil
	}()
	if err == nil {
		return
	}
	if err := w.load(ctx, c, false, false); err != nil {
		l.logger.Error("the sample index cannot follow the store: sample proofs are unavailable until it can", "size", cp.Size, "err", err)
	}
}

// SampleProof returns the proof of the chain of a sample's entries at
// indexes since and above (all of them for since 0; docs/sample-index.md)
// against a checkpoint that commits the sample index, and that checkpoint,
// as stored: the newest one the index covers, which is the published one
// or the one being committed (SampleProof then waits for it, at most 10 s
// or Config.CommitTimeout; if its commit fails, SampleProof fails with
// ErrUnavailable until the next batch reloads the index). since beyond the checkpoint's size is an error
// wrapping ErrBeyondTree; a log without an index gives ErrNoSampleIndex.
func (l *Log) SampleProof(ctx context.Context, sample string, since uint64) (*sampleindex.Proof, store.Checkpoint, error) {
	if l.idx == nil {
		return nil, store.Checkpoint{}, ErrNoSampleIndex
	}
	if err := record.CheckSample(sample); err != nil {
		return nil, store.Checkpoint{}, err
	}
	mp, size, err := l.idx.prove(ctx, sample)
	if err != nil {
		return nil, store.Checkpoint{}, err
	}
	if since > size {
		return nil, store.Checkpoint{}, fmt.Errorf("since %d: %w of size %d", since, ErrBeyondTree, size)
	}
	snap, err := l.awaitPublished(ctx, size)
	if err != nil {
		return nil, store.Checkpoint{}, err
	}
	cp := snap.cp
	if cp.Size != size {
		if cp, err = l.st.Checkpoint(ctx, size); err != nil {
			return nil, store.Checkpoint{}, fmt.Errorf("%w: reading the checkpoint of size %d: %w", ErrUnavailable, size, err)
		}
	}
	idx, err := l.st.Sample(ctx, sample)
	if err != nil {
		return nil, store.Checkpoint{}, fmt.Errorf("%w: reading the entries of sample %q: %w", ErrUnavailable, sample, err)
	}
	p, err := sampleindex.BuildProof(ctx, sampleindex.ProofInput{
		Sample: sample, Since: since, Size: size, Map: mp, Indexes: idx,
		Entries: func(ctx context.Context, indexes []uint64) ([][]byte, error) {
			return l.entriesAt(ctx, indexes)
		},
		Nodes: func(ctx context.Context, ids []compact.NodeID) ([][]byte, error) {
			return snap.src.nodes(ctx, ids)
		},
	})
	if err != nil {
		if errors.Is(err, sampleindex.ErrIndexInconsistent) {
			l.logger.Error("the sample index does not match the store's entries", "sample", sample, "size", size, "err", err)
		}
		return nil, store.Checkpoint{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return p, cp, nil
}

// maxPublishWait bounds how long a sample proof waits for the checkpoint
// the index covers to be published (with a witness quorum, until it is
// cosigned).
const maxPublishWait = 10 * time.Second

// awaitPublished waits until a checkpoint of at least size is published
// (the batch that the index already covers is being committed) and returns
// the snapshot.
func (l *Log) awaitPublished(ctx context.Context, size uint64) (*snapshot, error) {
	snap := l.snap.Load()
	if snap.cp.Size >= size {
		return snap, nil
	}
	if l.broken.Load() {
		// The batch the index covers failed to commit: the index is
		// reloaded before the next batch.
		return nil, fmt.Errorf("%w: the sample index covers a batch whose commit failed; it is reloaded with the next batch", ErrUnavailable)
	}
	ctx, cancel := context.WithTimeout(ctx, min(l.cfg.CommitTimeout, maxPublishWait))
	defer cancel()
	t := time.NewTicker(200 * time.Microsecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: the checkpoint of size %d the sample index covers was not published in time: %w", ErrUnavailable, size, ctx.Err())
		case <-t.C:
		}
		if snap = l.snap.Load(); snap.cp.Size >= size {
			return snap, nil
		}
		if l.broken.Load() {
			return nil, fmt.Errorf("%w: the sample index covers a batch whose commit failed; it is reloaded with the next batch", ErrUnavailable)
		}
	}
}

// entriesAt reads the entries at indexes (increasing), one query per run
// of consecutive indexes.
func (l *Log) entriesAt(ctx context.Context, indexes []uint64) ([][]byte, error) {
	out := make([][]byte, 0, len(indexes))
	for len(indexes) > 0 {
		n := 1
		for n < len(indexes) && indexes[n] == indexes[n-1]+1 {
			n++
		}
		es, err := l.st.Entries(ctx, indexes[0], indexes[0]+uint64(n))
		if err != nil {
			return nil, err
		}
		if len(es) != n {
			return nil, fmt.Errorf("%w: the store holds %d of the entries %d to %d", errCorrupt, len(es), indexes[0], indexes[0]+uint64(n))
		}
		for _, e := range es {
			out = append(out, e.Data)
		}
		indexes = indexes[n:]
	}
	return out, nil
}
