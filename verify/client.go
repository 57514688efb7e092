package verify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/custodylog/custody/internal/tiles"
	merkleproof "github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// Cache and concurrency limits of a Client.
const (
	// clientMaxTrees is how many trees (checkpoints) a Client keeps
	// authenticated tiles for.
	clientMaxTrees = 8
	// clientMaxLowTiles is how many full tiles of each of levels 0 and 1
	// a Client keeps per tree (oldest dropped first); partial tiles and
	// higher levels (one tile per 16M entries) are kept without limit.
	clientMaxLowTiles = 64
	// entriesPrefetch is how many entry bundles Entries fetches at once
	// (at least; one per CPU if there are more).
	entriesPrefetch = 8
)

// Client gives verified access to a tiled log read from a Source. It trusts
// nothing the Source returns: a checkpoint must verify against the log's
// keys (and the trust policy, if any), and every hash tile is authenticated
// against a checkpoint's root before any hash in it is used (a partial tile
// by recomputing the root from the tree's partial tiles, a full tile by
// hashing it and comparing with the authenticated tile above it). Entries
// are checked against authenticated level-0 tiles.
//
// Failures that show the log misbehaving are *VerificationError with
// Evidence; Source (network, disk) failures and misuse are plain errors.
// Methods that take a Checkpoint must be given one that was verified, by
// Client.Checkpoint or OpenCheckpoint, since everything is checked against
// it. A Client is safe for concurrent use.
type Client struct {
	src       Source
	origin    string
	verifiers note.Verifiers
	trust     *TrustPolicy
	now       func() time.Time

	mu    sync.Mutex
	trees map[treeKey]*treeTiles
	notes map[treeKey][]byte
}

type treeKey struct {
	size uint64
	root Hash
}

// NewClient returns a Client for the log with the given origin read from
// src, accepting checkpoints signed by verifiers. If trust is not nil, every
// checkpoint must also satisfy it (see TrustPolicy.Evaluate); if verifiers
// is nil, the trust policy's logs are used as the verifiers.
func NewClient(src Source, origin string, verifiers note.Verifiers, trust *TrustPolicy) *Client {
	if verifiers == nil && trust != nil {
		verifiers = note.VerifierList(trust.Logs()...)
	}
	return &Client{
		src: src, origin: origin, verifiers: verifiers, trust: trust, now: time.Now,
		trees: map[treeKey]*treeTiles{}, notes: map[treeKey][]byte{},
	}
}

// Origin returns the origin the Client checks checkpoints against.
func (c *Client) Origin() string { return c.origin }

// Verifiers returns the log keys the Client checks checkpoints against
// (without the trust policy's witnesses): what OpenCheckpoint needs to
// re-check a checkpoint that was fully verified earlier, such as one an
// auditor stored, when the trust policy may have changed since.
func (c *Client) Verifiers() note.Verifiers { return c.verifiers }

// Checkpoint reads the log's current checkpoint and returns it with the
// signed note as served. It guarantees that the note is a valid signed note
// carrying a valid signature from one of the Client's verifiers, that its
// body is a strictly valid checkpoint for the Client's origin (see
// OpenCheckpoint), and, if the Client has a trust policy, that the policy's
// quorum of witnesses cosigned it. A failure of any of these is a
// *VerificationError (kind bad-signature or quorum) whose evidence holds the
// note; a failure to read it is a plain error.
func (c *Client) Checkpoint(ctx context.Context) (Checkpoint, []byte, error) {
	raw, err := c.src.ReadCheckpoint(ctx)
	if err != nil {
		return Checkpoint{}, nil, fmt.Errorf("reading checkpoint of %s: %w", c.origin, err)
	}
	cp, err := c.OpenCheckpoint(raw)
	if err != nil {
		return Checkpoint{}, nil, err
	}
	return cp, raw, nil
}

// OpenCheckpoint checks a signed checkpoint note obtained elsewhere (a
// stored state, a receipt, a witness) exactly as Checkpoint checks the one
// it reads, and remembers it so that evidence about its tree can include it.
func (c *Client) OpenCheckpoint(signedNote []byte) (Checkpoint, error) {
	cp, _, err := OpenCheckpoint(signedNote, c.origin, c.verifiers)
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		if errors.Is(err, ErrMalformedNote) || errors.Is(err, ErrMalformedCheckpoint) ||
			errors.Is(err, ErrOriginMismatch) || errors.As(err, &unverified) || errors.As(err, &invalid) {
			ev := c.evidence(EvidenceBadSignature, "the checkpoint is not validly signed by the log", Checkpoint{Origin: c.origin})
			ev.setNewCheckpoint(signedNote)
			return Checkpoint{}, &VerificationError{Evidence: ev, Err: err}
		}
		return Checkpoint{}, err
	}
	if c.trust != nil {
		if _, err := c.trust.Evaluate(signedNote, cp, c.now()); err != nil {
			return Checkpoint{}, err
		}
	}
	c.remember(cp, signedNote)
	return cp, nil
}

func (c *Client) remember(cp Checkpoint, signedNote []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := treeKey{cp.Size, cp.Root}
	if _, ok := c.notes[k]; !ok && len(c.notes) >= clientMaxTrees {
		clear(c.notes)
	}
	c.notes[k] = bytes.Clone(signedNote)
}

// evidence returns Evidence of kind about the tree cp, with the signed
// checkpoint if the Client has seen it.
func (c *Client) evidence(kind, what string, cp Checkpoint) Evidence {
	c.mu.Lock()
	signed := c.notes[treeKey{cp.Size, cp.Root}]
	c.mu.Unlock()
	return Evidence{
		Kind: kind, What: what, Origin: cp.Origin,
		NewCheckpoint: string(signed), NewSize: cp.Size, Time: c.now().UTC(),
	}
}

// tree returns the authenticated-tile cache for cp.
func (c *Client) tree(cp Checkpoint) *treeTiles {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := treeKey{cp.Size, cp.Root}
	if t, ok := c.trees[k]; ok {
		return t
	}
	if len(c.trees) >= clientMaxTrees {
		clear(c.trees)
	}
	t := &treeTiles{c: c, cp: cp, tiles: map[tileKey][]Hash{}}
	c.trees[k] = t
	return t
}

// TileHashes returns the hashes of the hash tile at level and index as it is
// in the tree of cp: 256 hashes for a full tile, W for the tree's partial
// tile at that level. They are authenticated against cp.Root. A tile that
// is not part of that tree is an error.
func (c *Client) TileHashes(ctx context.Context, level uint8, index uint64, cp Checkpoint) ([]Hash, error) {
	hs, err := c.tree(cp).tile(ctx, level, index)
	if err != nil {
		return nil, err
	}
	return append([]Hash(nil), hs...), nil
}

// InclusionProof returns the RFC 6962 inclusion proof for the entry at
// index in the tree of cp, built from hash tiles authenticated against
// cp.Root, so it verifies with CheckInclusion against cp. An index not below
// cp.Size is an error wrapping ErrIndexOutOfRange.
func (c *Client) InclusionProof(ctx context.Context, index uint64, cp Checkpoint) ([]Hash, error) {
	if index >= cp.Size {
		return nil, fmt.Errorf("inclusion proof for index %d in tree of size %d: %w", index, cp.Size, ErrIndexOutOfRange)
	}
	nodes, err := merkleproof.Inclusion(index, cp.Size)
	if err != nil {
		return nil, fmt.Errorf("inclusion proof for index %d in tree of size %d: %v", index, cp.Size, err)
	}
	t := c.tree(cp)
	proof, err := t.proof(ctx, nodes)
	if err != nil {
		return nil, err
	}
	// Every hash came from authenticated tiles, so this can fail only by a
	// bug in this package; check anyway rather than hand out a bad proof.
	leaf, err := t.node(ctx, 0, index)
	if err != nil {
		return nil, err
	}
	if err := CheckInclusion(index, cp.Size, leaf, proof, cp.Root); err != nil {
		return nil, fmt.Errorf("internal error: inclusion proof built from authenticated tiles does not verify: %w", err)
	}
	return proof, nil
}

// ConsistencyProof returns the RFC 6962 consistency proof from the tree of
// the first oldSize entries to the tree of cp, built from hash tiles
// authenticated against cp.Root. It is empty if oldSize is 0 or cp.Size. It
// proves that cp extends the tree of oldSize entries as the log's tiles
// describe it; whether that is the tree of a checkpoint the log signed
// earlier is for CheckConsistency (or CheckExtends) to say. oldSize above
// cp.Size is an error wrapping ErrSizeOrder.
func (c *Client) ConsistencyProof(ctx context.Context, oldSize uint64, cp Checkpoint) ([]Hash, error) {
	if oldSize > cp.Size {
		return nil, fmt.Errorf("consistency proof from tree size %d to %d: %w", oldSize, cp.Size, ErrSizeOrder)
	}
	if oldSize == 0 || oldSize == cp.Size {
		return []Hash{}, nil
	}
	nodes, err := merkleproof.Consistency(oldSize, cp.Size)
	if err != nil {
		return nil, fmt.Errorf("consistency proof from tree size %d to %d: %v", oldSize, cp.Size, err)
	}
	t := c.tree(cp)
	proof, err := t.proof(ctx, nodes)
	if err != nil {
		return nil, err
	}
	oldRoot, err := t.root(ctx, oldSize)
	if err != nil {
		return nil, err
	}
	if err := CheckConsistency(oldSize, cp.Size, oldRoot, cp.Root, proof); err != nil {
		return nil, fmt.Errorf("internal error: consistency proof built from authenticated tiles does not verify: %w", err)
	}
	return proof, nil
}

// treeRoot returns the root hash of the first size entries of the tree of
// cp, computed from hash tiles authenticated against cp.Root. size above
// cp.Size is an error wrapping ErrSizeOrder.
func (c *Client) treeRoot(ctx context.Context, size uint64, cp Checkpoint) (Hash, error) {
	if size > cp.Size {
		return Hash{}, fmt.Errorf("root of tree size %d in tree of size %d: %w", size, cp.Size, ErrSizeOrder)
	}
	return c.tree(cp).root(ctx, size)
}

// CheckExtends checks that the checkpoint cp extends the older checkpoint
// old of the same log (oldNote is old's signed note, for the evidence) and
// returns the consistency proof that shows it. It fails with a
// *VerificationError of kind rollback if cp is smaller than old, fork if
// they have the same size and different roots, and inconsistent if the
// consistency proof from the log's tiles does not lead to old.Root; the
// evidence holds both signed notes and the proof. Both checkpoints must
// have been verified; checkpoints of different origins are a plain error.
func (c *Client) CheckExtends(ctx context.Context, old Checkpoint, oldNote []byte, cp Checkpoint) ([]Hash, error) {
	if old.Origin != cp.Origin {
		return nil, fmt.Errorf("checking consistency: old checkpoint is for %q, new one for %q", old.Origin, cp.Origin)
	}
	fail := func(kind, what string, proof []Hash, computed *Hash, err error) error {
		ev := c.evidence(kind, what, cp)
		ev.OldCheckpoint, ev.OldSize = string(oldNote), old.Size
		ev.Expected = b64(old.Root)
		if proof != nil {
			ev.Proof = b64Proof(proof)
		}
		if computed != nil {
			ev.Computed = b64(*computed)
		}
		return &VerificationError{Evidence: ev, Err: err}
	}
	switch {
	case cp.Size < old.Size:
		return nil, fail(EvidenceRollback, fmt.Sprintf("the log signed a checkpoint of size %d after one of size %d", cp.Size, old.Size), nil, nil, nil)
	case cp.Size == old.Size:
		if cp.Root != old.Root {
			return nil, fail(EvidenceFork, fmt.Sprintf("the log signed two checkpoints of size %d with different roots", cp.Size), nil, &cp.Root, nil)
		}
		return []Hash{}, nil
	case old.Size == 0:
		return []Hash{}, nil
	}
	proof, err := c.ConsistencyProof(ctx, old.Size, cp)
	if err != nil {
		return nil, err
	}
	if err := CheckConsistency(old.Size, cp.Size, old.Root, cp.Root, proof); err != nil {
		computed, rerr := c.tree(cp).root(ctx, old.Size)
		if rerr != nil {
			return nil, fail(EvidenceInconsistent, fmt.Sprintf("the tree of size %d does not extend the log's earlier checkpoint of size %d", cp.Size, old.Size), proof, nil, err)
		}
		return nil, fail(EvidenceInconsistent,
			fmt.Sprintf("the tree of size %d does not extend the log's earlier checkpoint of size %d: its first %d entries have another root", cp.Size, old.Size, old.Size),
			proof, &computed, err)
	}
	return proof, nil
}

// Entries calls fn, in index order, with every entry of [start, end) of the
// tree of cp, read from the log's entry bundles. Before fn sees any entry of
// a bundle, the bundle must hold exactly the number of entries its place in
// the tree implies, and the leaf hash of each of its entries must equal the
// corresponding hash of the level-0 tile authenticated against cp.Root; a
// failure is a *VerificationError of kind bad-entry (or bad-tile or
// root-mismatch if the tiles fail). A partial bundle the log no longer
// serves is read from the full bundle that replaced it. An error from fn
// stops the iteration and is returned as is. fn may keep the entry slice.
// Bundles are fetched and hashed ahead of fn, several at a time.
func (c *Client) Entries(ctx context.Context, start, end uint64, cp Checkpoint, fn func(index uint64, entry []byte) error) error {
	return c.ReadBundles(ctx, start, end, cp, nil, func(b *Bundle) error {
		for j, e := range b.Entries {
			if err := fn(b.Start+uint64(j), e); err != nil {
				return err
			}
		}
		return nil
	})
}

// A Bundle is the part of one entry bundle of the log that lies in the
// range given to ReadBundles: at most TileWidth consecutive entries.
type Bundle struct {
	// Start is the index in the log of Entries[0].
	Start uint64
	// Entries are the entries, in index order. The slices are fresh for
	// every bundle: they may be kept.
	Entries [][]byte
	// LeafHashes[i] is LeafHash(Entries[i]).
	LeafHashes []Hash
	// Root is, if Entries is a whole full bundle (TileWidth entries from a
	// multiple of TileWidth), the RFC 6962 hash of the perfect subtree they
	// form (a level-8 node of the tree); the zero Hash otherwise.
	Root Hash
	// Scratch belongs to the caller of ReadBundles: prepare may store
	// anything there for consume. ReadBundles never reads it and keeps it
	// when it reuses the Bundle, so that prepare can reuse what it
	// allocated for an earlier bundle.
	Scratch any
}

// entryBundle is one entry bundle on its way through ReadBundles. The
// workers fill in everything but the authentication; the consumer gets it
// authenticated. A bundle is recycled once consumed.
type entryBundle struct {
	Bundle           // the part in the range asked for, for the callbacks
	index   uint64   // the bundle's index
	lo, hi  int      // the entries of the bundle in the range asked for
	entries [][]byte // all entries of the bundle (its width in the tree)
	leaves  []Hash   // LeafHash of every entry
	root    Hash     // tiles.SubtreeRoot(leaves), for a full bundle
	tile    []Hash   // the full level-0 tile as read, unauthenticated; nil if cached or partial
	err     error    // reading failed
	ready   chan struct{}
}

// ReadBundles is Entries for callers that process many entries: it calls
// consume, in index order, with the entries of [start, end) of the tree of
// cp one entry bundle at a time, each authenticated exactly as Entries
// describes before consume sees it, and with the leaf hashes already
// computed. An error from consume stops everything and is returned as is.
//
// Workers read bundles ahead of consume, several at a time, and hash their
// entries, one per CPU at a time; prepare, if not nil, is called by the
// worker right after, so that work on the entries (decoding them, say) runs
// in parallel on every CPU. prepare sees the entries BEFORE they are
// authenticated: it may only prepare them for consume (through
// Bundle.Scratch), never act on them; if the bundle then fails
// authentication, consume is not called and the error is returned.
//
// A Bundle belongs to prepare, then to consume, and is reused for a later
// bundle once consume returns: neither may keep the *Bundle or its
// LeafHashes. At most about two bundles per worker are held at a time, so
// memory does not grow with the range.
func (c *Client) ReadBundles(ctx context.Context, start, end uint64, cp Checkpoint, prepare func(*Bundle), consume func(*Bundle) error) error {
	return c.bundles(ctx, start, end, cp, prepare, consume)
}

// bundles runs the entry bundles of [start, end) of the tree of cp through
// a pipeline. Workers, entriesPrefetch or one per CPU, whichever is more,
// read each bundle and (if it is full and its level-0 tile is not cached)
// its level-0 tile; then, one per CPU at a time, hash the entries and call
// prepare, if not nil, on the bundle. They work at most one bundle per
// worker ahead of the consumer, so memory does not grow with the range. In
// index order, each bundle's tile is then authenticated, the leaf hashes
// are checked against it as Entries describes, and consume is called. An
// error from consume stops everything and is returned as is.
func (c *Client) bundles(ctx context.Context, start, end uint64, cp Checkpoint, prepare func(*Bundle), consume func(*Bundle) error) error {
	if start > end || end > cp.Size {
		return fmt.Errorf("entries [%d, %d) of tree of size %d: not a range within the tree", start, end, cp.Size)
	}
	if start == end {
		return nil
	}
	t := c.tree(cp)
	first, last := start/TileWidth, (end-1)/TileWidth
	cpus := runtime.GOMAXPROCS(0)
	workers := int(min(uint64(max(entriesPrefetch, cpus)), last-first+1))

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	queue := make(chan *entryBundle, workers) // in index order, to the consumer
	jobs := make(chan *entryBundle)           // to the workers
	free := make(chan *entryBundle, 2*workers+2)
	cpu := make(chan struct{}, cpus) // a token per CPU, for hashing and prepare
	wg.Add(1 + workers)
	go func() {
		defer wg.Done()
		defer close(queue)
		defer close(jobs)
		for b := first; b <= last; b++ {
			var bb *entryBundle
			select {
			case bb = <-free:
			default:
				bb = &entryBundle{ready: make(chan struct{}, 1)}
			}
			bb.index, bb.lo, bb.hi = b, 0, t.width(0, b)
			if b == first {
				bb.lo = int(start % TileWidth)
			}
			if b == last {
				bb.hi = int((end-1)%TileWidth) + 1
			}
			select {
			case queue <- bb:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- bb:
			case <-ctx.Done():
				return
			}
		}
	}()
	for range workers {
		go func() {
			defer wg.Done()
			var w bundleWorker
			for bb := range jobs {
				t.readBundle(ctx, bb)
				if bb.err == nil {
					cpu <- struct{}{}
					w.hash(bb)
					bb.view()
					if prepare != nil {
						prepare(&bb.Bundle)
					}
					<-cpu
				}
				bb.ready <- struct{}{}
			}
		}()
	}

	b := first
	for bb := range queue {
		select {
		case <-bb.ready:
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if bb.err != nil {
			return bb.err
		}
		if err := t.checkBundle(ctx, bb); err != nil {
			return err
		}
		if err := consume(&bb.Bundle); err != nil {
			return err
		}
		bb.tile = nil
		bb.Bundle = Bundle{Scratch: bb.Scratch}
		select {
		case free <- bb:
		default:
		}
		b++
	}
	if b != last+1 {
		if err := ctx.Err(); err != nil {
			return err
		}
		return errors.New("internal error: entry bundle fetching stopped early")
	}
	return nil
}

// readBundle reads bundle bb.index and, if it is full and its level-0 tile
// is not cached, the tile. Errors go to bb.err.
func (t *treeTiles) readBundle(ctx context.Context, bb *entryBundle) {
	bb.tile = nil
	bb.entries, bb.err = t.bundle(ctx, bb.index)
	if bb.err == nil && len(bb.entries) == TileWidth && !t.cached(0, bb.index) {
		bb.tile, bb.err = t.readHashTile(ctx, TileAddr{Level: 0, Index: bb.index})
	}
}

// view sets bb.Bundle to the entries of the range in bb.
func (bb *entryBundle) view() {
	bb.Start = bb.index*TileWidth + uint64(bb.lo)
	bb.Entries = bb.entries[bb.lo:bb.hi:bb.hi]
	bb.LeafHashes = bb.leaves[bb.lo:bb.hi:bb.hi]
	bb.Root = Hash{}
	if bb.lo == 0 && bb.hi == TileWidth {
		bb.Root = bb.root
	}
}

// bundleWorker holds a worker's scratch space.
type bundleWorker struct {
	buf   []byte // 0x00 || entry, for hashing
	level []Hash // for tiles.SubtreeRootInPlace
}

// hash computes the leaf hashes of bb's entries and, for a full bundle,
// their subtree root.
func (w *bundleWorker) hash(bb *entryBundle) {
	bb.leaves = bb.leaves[:0]
	for _, e := range bb.entries {
		w.buf = append(append(w.buf[:0], 0x00), e...)
		bb.leaves = append(bb.leaves, sha256.Sum256(w.buf))
	}
	if len(bb.leaves) == TileWidth {
		w.level = append(w.level[:0], bb.leaves...)
		bb.root = tiles.SubtreeRootInPlace(w.level)
	}
}

// checkBundle authenticates the level-0 tile of bb (the one bb.tile holds,
// or the cached or partial one) and checks bb's leaf hashes against it.
func (t *treeTiles) checkBundle(ctx context.Context, bb *entryBundle) error {
	var hashes []Hash
	var err error
	switch {
	case bb.tile != nil && slices.Equal(bb.tile, bb.leaves):
		// The tile's subtree root is that of the leaves, computed already.
		hashes, err = t.authenticateRoot(ctx, 0, bb.index, bb.tile, bb.root)
	case bb.tile != nil:
		hashes, err = t.authenticate(ctx, 0, bb.index, bb.tile)
	default:
		hashes, err = t.tile(ctx, 0, bb.index)
	}
	if err != nil {
		return err
	}
	for j, got := range bb.leaves {
		if got != hashes[j] {
			index := bb.index*TileWidth + uint64(j)
			ev := t.c.evidence(EvidenceBadEntry,
				fmt.Sprintf("entry %d in the log's entry bundle does not match the leaf hash in its authenticated level-0 tile", index), t.cp)
			ev.Index, ev.Expected, ev.Computed = &index, b64(hashes[j]), b64(got)
			ev.Tile = TileAddr{Entries: true, Index: bb.index, Width: t.width(0, bb.index) % TileWidth}.Path()
			return &VerificationError{Evidence: ev}
		}
	}
	return nil
}

// treeTiles holds the tiles of one tree (one checkpoint) that have been
// authenticated against its root.
type treeTiles struct {
	c  *Client
	cp Checkpoint

	mu    sync.Mutex
	spine bool // the tree's partial tiles are authenticated and cached
	tiles map[tileKey][]Hash
	fifo  [2][]tileKey // cached full tiles of levels 0 and 1, oldest first
}

type tileKey struct {
	level uint8
	index uint64
}

// width returns the width of tile (level, index) in this tree: TileWidth
// for a full tile, the partial width for the last tile of the level, and 0
// if the tile is not in the tree.
func (t *treeTiles) width(level uint8, index uint64) int {
	switch full := FullTiles(level, t.cp.Size); {
	case index < full:
		return TileWidth
	case index == full:
		return PartialWidth(level, t.cp.Size)
	default:
		return 0
	}
}

func (t *treeTiles) cached(level uint8, index uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.tiles[tileKey{level, index}]
	return ok
}

// tile returns the authenticated hashes of tile (level, index) of the tree.
func (t *treeTiles) tile(ctx context.Context, level uint8, index uint64) ([]Hash, error) {
	w := t.width(level, index)
	if w == 0 {
		return nil, fmt.Errorf("tile %d/%d is not in the tree of size %d", level, index, t.cp.Size)
	}
	k := tileKey{level, index}
	t.mu.Lock()
	hs, ok := t.tiles[k]
	t.mu.Unlock()
	if ok {
		return hs, nil
	}
	if w < TileWidth {
		if err := t.authenticateSpine(ctx); err != nil {
			return nil, err
		}
		t.mu.Lock()
		hs = t.tiles[k]
		t.mu.Unlock()
		return hs, nil
	}
	raw, err := t.readHashTile(ctx, TileAddr{Level: level, Index: index})
	if err != nil {
		return nil, err
	}
	return t.authenticate(ctx, level, index, raw)
}

// authenticate checks the full tile (level, index) with hashes hs against
// its parent tile, itself authenticated (recursively, up to the tree's
// partial tiles, which are checked against the root), and caches it.
func (t *treeTiles) authenticate(ctx context.Context, level uint8, index uint64, hs []Hash) ([]Hash, error) {
	if len(hs) != TileWidth {
		return nil, fmt.Errorf("internal error: authenticating tile %d/%d of %d hashes as a full tile", level, index, len(hs))
	}
	return t.authenticateRoot(ctx, level, index, hs, tiles.SubtreeRoot(hs))
}

// authenticateRoot is authenticate for a tile whose subtree root, root, the
// caller computed from hs.
func (t *treeTiles) authenticateRoot(ctx context.Context, level uint8, index uint64, hs []Hash, root Hash) ([]Hash, error) {
	if len(hs) != TileWidth || t.width(level, index) != TileWidth {
		return nil, fmt.Errorf("internal error: authenticating tile %d/%d of %d hashes as a full tile", level, index, len(hs))
	}
	parent, err := t.tile(ctx, level+1, index/TileWidth)
	if err != nil {
		return nil, err
	}
	want := parent[index%TileWidth]
	if got := root; got != want {
		a := TileAddr{Level: level, Index: index}
		ev := t.c.evidence(EvidenceBadTile, fmt.Sprintf("hash tile %s does not hash to the value its authenticated parent tile holds for it", a.Path()), t.cp)
		ev.Tile, ev.Expected, ev.Computed = a.Path(), b64(want), b64(got)
		return nil, &VerificationError{Evidence: ev}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	k := tileKey{level, index}
	if _, ok := t.tiles[k]; !ok {
		if int(level) < len(t.fifo) {
			fifo := &t.fifo[level]
			if len(*fifo) >= clientMaxLowTiles {
				delete(t.tiles, (*fifo)[0])
				*fifo = (*fifo)[1:]
			}
			*fifo = append(*fifo, k)
		}
		t.tiles[k] = hs
	}
	return hs, nil
}

// authenticateSpine reads the tree's partial tiles, recomputes the root
// from them and, if it is the checkpoint's root, caches them.
func (t *treeTiles) authenticateSpine(ctx context.Context) error {
	t.mu.Lock()
	done := t.spine
	t.mu.Unlock()
	if done {
		return nil
	}
	partials := PartialTiles(t.cp.Size)
	got := make(map[uint8][]Hash, len(partials))
	for _, a := range partials {
		hs, err := t.readHashTile(ctx, a)
		if err != nil {
			return err
		}
		got[a.Level] = hs
	}
	root := tiles.RootFromEdges(t.cp.Size, func(level uint8) []Hash { return got[level] })
	if root != t.cp.Root {
		ev := t.c.evidence(EvidenceRootMismatch,
			fmt.Sprintf("the log's partial hash tiles for size %d recompute to a root other than the one in its signed checkpoint", t.cp.Size), t.cp)
		ev.Expected, ev.Computed = b64(t.cp.Root), b64(root)
		return &VerificationError{Evidence: ev}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, a := range partials {
		t.tiles[tileKey{a.Level, a.Index}] = got[a.Level]
	}
	t.spine = true
	return nil
}

// readWithFallback reads tile or bundle a; when a partial one is missing
// (tlog-tiles lets a log delete it once the full one exists) it reads the
// full one instead. It returns the data and the address actually read.
func (t *treeTiles) readWithFallback(ctx context.Context, a TileAddr, what string) ([]byte, TileAddr, error) {
	data, err := t.c.src.ReadTile(ctx, a)
	if err != nil && a.Width != 0 && errors.Is(err, ErrTileNotFound) {
		full := a
		full.Width = 0
		data, ferr := t.c.src.ReadTile(ctx, full)
		if ferr != nil {
			return nil, a, fmt.Errorf("reading %s %s: %w (and the full one: %v)", what, a.Path(), err, ferr)
		}
		return data, full, nil
	}
	if err != nil {
		return nil, a, fmt.Errorf("reading %s %s: %w", what, a.Path(), err)
	}
	return data, a, nil
}

// readHashTile reads hash tile a (with the width a has in this tree) and
// checks its length, falling back to the full tile, cut to width, when a
// partial tile is missing. The hashes are not authenticated.
func (t *treeTiles) readHashTile(ctx context.Context, a TileAddr) ([]Hash, error) {
	data, read, err := t.readWithFallback(ctx, a, "hash tile")
	if err != nil {
		return nil, err
	}
	want := TileWidth
	if read.Width != 0 {
		want = read.Width
	}
	if len(data) != want*HashSize {
		ev := t.c.evidence(EvidenceBadTile, fmt.Sprintf("hash tile %s is %d bytes, want %d", read.Path(), len(data), want*HashSize), t.cp)
		ev.Tile = read.Path()
		return nil, &VerificationError{Evidence: ev}
	}
	n := TileWidth
	if a.Width != 0 {
		n = a.Width
	}
	hs := make([]Hash, n)
	for i := range hs {
		copy(hs[i][:], data[i*HashSize:])
	}
	return hs, nil
}

// bundle reads and parses entry bundle b of the tree, falling back to the
// full bundle, cut to width, when the partial one is missing. The entries
// are not authenticated.
func (t *treeTiles) bundle(ctx context.Context, b uint64) ([][]byte, error) {
	w := t.width(0, b)
	a := TileAddr{Entries: true, Index: b, Width: w % TileWidth}
	data, read, err := t.readWithFallback(ctx, a, "entry bundle")
	if err != nil {
		return nil, err
	}
	want := TileWidth
	if read.Width != 0 {
		want = read.Width
	}
	entries, err := ParseBundle(data, want)
	if err != nil {
		ev := t.c.evidence(EvidenceBadEntry, fmt.Sprintf("entry bundle %s is malformed or holds the wrong number of entries", read.Path()), t.cp)
		ev.Tile = read.Path()
		return nil, &VerificationError{Evidence: ev, Err: err}
	}
	return entries[:w], nil
}

// node returns the hash of the perfect subtree node at (level, index),
// which must lie within the tree, from authenticated tiles.
func (t *treeTiles) node(ctx context.Context, level uint, index uint64) (Hash, error) {
	if level >= 64 || index >= t.cp.Size>>level {
		return Hash{}, fmt.Errorf("internal error: node %d/%d is not within the tree of size %d", level, index, t.cp.Size)
	}
	tl, r := uint8(level/TileHeight), level%TileHeight
	pos := index << r
	hs, err := t.tile(ctx, tl, pos/TileWidth)
	if err != nil {
		return Hash{}, err
	}
	off, n := pos%TileWidth, uint64(1)<<r
	if off+n > uint64(len(hs)) {
		return Hash{}, fmt.Errorf("internal error: node %d/%d is beyond tile %d/%d", level, index, tl, pos/TileWidth)
	}
	return tiles.SubtreeRoot(hs[off : off+n]), nil
}

// proof fetches the nodes of a merkle proof.Nodes and rehashes them into the
// proof.
func (t *treeTiles) proof(ctx context.Context, nodes merkleproof.Nodes) ([]Hash, error) {
	hs := make([][]byte, len(nodes.IDs))
	for i, id := range nodes.IDs {
		h, err := t.node(ctx, id.Level, id.Index)
		if err != nil {
			return nil, err
		}
		hs[i] = h[:]
	}
	p, err := nodes.Rehash(hs, rfc6962.DefaultHasher.HashChildren)
	if err != nil {
		return nil, fmt.Errorf("internal error: %v", err)
	}
	out := make([]Hash, len(p))
	for i, h := range p {
		if len(h) != HashSize {
			return nil, errors.New("internal error: proof hash of wrong size")
		}
		out[i] = Hash(h)
	}
	return out, nil
}

// root returns the root of the first size entries (size <= tree size) from
// authenticated tiles.
func (t *treeTiles) root(ctx context.Context, size uint64) (Hash, error) {
	if size == 0 {
		return EmptyRoot, nil
	}
	var hs []Hash
	var begin uint64
	for level := 63; level >= 0; level-- {
		if size&(1<<uint(level)) == 0 {
			continue
		}
		h, err := t.node(ctx, uint(level), begin>>uint(level))
		if err != nil {
			return Hash{}, err
		}
		hs = append(hs, h)
		begin += 1 << uint(level)
	}
	return tiles.FoldRoot(hs), nil
}
