package log

import (
	"context"
	"errors"
	"fmt"

	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/verify"
	"github.com/transparency-dev/merkle/proof"
	"golang.org/x/mod/sumdb/note"
)

// Several servers may share one store (custody serve on PostgreSQL): one
// of them, the holder of the store's sequencer lease, appends; the others
// serve reads and forward writes to it. The store's compare-and-swap on the
// previous checkpoint keeps the log linear even if two servers append at
// once: the loser's commit fails with store.ErrConflict, its callers get
// ErrUnavailable (and retry; adds are idempotent) and it reloads.
//
// A server that is not appending follows the store with Sync; a server that
// has just taken the lease calls Invalidate so that its next batch starts
// from the store's newest checkpoint, not from what it last knew.

// ErrRollback is returned by Sync when the store's newest checkpoint is
// older than the one this server already published.
var ErrRollback = errors.New("the store's checkpoint is older than the published one")

// ErrFork is returned by Sync when the store's newest checkpoint is not an
// extension of the published one.
var ErrFork = errors.New("the store's checkpoint does not extend the published one")

// Sync publishes the store's newest checkpoint if it is newer than the
// published one (another server appended to the shared store). Before it
// publishes, it verifies the log signature, rebuilds the tree's right edge
// from the stored tiles and checks that they reproduce the checkpoint's
// root, and checks a consistency proof (from the stored tiles) from the
// published checkpoint to the new one; with a required witness quorum, the
// stored note must also carry the quorum's cosignatures. A checkpoint that
// fails any check is not published: Sync returns an error wrapping ErrFork,
// ErrRollback or the verification failure, and the server keeps serving
// what it had. Sync runs on the sequencer goroutine, after the batches in
// flight, so it never races a local commit.
func (l *Log) Sync(ctx context.Context) error {
	reply := make(chan error, 1)
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return ErrClosed
	}
	select {
	case l.syncs <- syncRequest{ctx: ctx, reply: reply}:
	case <-ctx.Done():
		l.mu.RUnlock()
		return ctx.Err()
	}
	l.mu.RUnlock()
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// syncRequest is one Sync call, served by the sequencer.
type syncRequest struct {
	ctx   context.Context
	reply chan error
}

// syncWithin is sync under the caller's ctx, cut short by the log's
// Shutdown too.
func (l *Log) syncWithin(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(l.ctx, cancel)
	defer stop()
	return l.sync(ctx)
}

// Invalidate makes the sequencer reload its state from the store before
// the next batch (call it on taking the sequencer lease: another server
// may have appended since this one last did).
func (l *Log) Invalidate() { l.broken.Store(true) }

// sync is Sync on the sequencer goroutine.
func (l *Log) sync(ctx context.Context) error {
	l.drain()
	cp, err := l.st.Latest(ctx)
	if err != nil {
		return fmt.Errorf("log: reading the store's latest checkpoint: %w", err)
	}
	old := l.snap.Load()
	if cp.Size < old.cp.Size {
		return fmt.Errorf("log: %w: store has size %d, published %d", ErrRollback, cp.Size, old.cp.Size)
	}
	if cp.Size == old.cp.Size {
		if cp.Root != old.cp.Root {
			return fmt.Errorf("log: %w: two roots for size %d", ErrFork, cp.Size)
		}
		if old.cosigned || !l.storedCosigned(cp) {
			return nil
		}
		// The same tree head, now with the witnesses' cosignatures (the
		// quorum, if one is required).
		if c, err := l.openCheckpoint(cp.Note); err != nil {
			return fmt.Errorf("log: the store's cosigned checkpoint of size %d does not verify with the log's key: %w", cp.Size, err)
		} else if c.Size != cp.Size || c.Root != cp.Root {
			return fmt.Errorf("%w: the store's cosigned checkpoint row of size %d holds a note for size %d", errCorrupt, cp.Size, c.Size)
		}
		l.snap.Store(&snapshot{cp: cp, src: old.src, cosigned: true})
		return nil
	}
	c, err := l.openCheckpoint(cp.Note)
	if err != nil {
		return fmt.Errorf("log: the store's checkpoint of size %d does not verify: %w", cp.Size, err)
	}
	if c.Size != cp.Size || c.Root != cp.Root {
		return fmt.Errorf("log: %w: checkpoint row of size %d holds a note for size %d", errCorrupt, cp.Size, c.Size)
	}
	cosigned := l.storedCosigned(cp)
	if l.witnessRequired() && !cosigned {
		return nil // the sequencer has not stored the cosigned note yet
	}
	t, err := loadTree(ctx, l.st, cp)
	if err != nil {
		return fmt.Errorf("log: %w", err)
	}
	src := t.nodeSource(l.st, l.cache)
	if old.cp.Size > 0 {
		n, err := proof.Consistency(old.cp.Size, cp.Size)
		if err != nil {
			return err
		}
		hashes, err := src.nodes(ctx, n.IDs)
		if err != nil {
			return fmt.Errorf("log: reading the consistency proof %d to %d: %w", old.cp.Size, cp.Size, err)
		}
		p, err := n.Rehash(hashes, hashChildren)
		if err != nil {
			return err
		}
		ps := make([][32]byte, len(p))
		for i, h := range p {
			ps[i] = [32]byte(h)
		}
		if err := verify.CheckConsistency(old.cp.Size, cp.Size, old.cp.Root, cp.Root, ps); err != nil {
			l.logger.Error("the shared store holds a checkpoint that does not extend the published one", "published", old.cp.Size, "stored", cp.Size, "err", err)
			return fmt.Errorf("log: %w: %w", ErrFork, err)
		}
	}
	l.clearInflight()
	l.state, l.cur = t, cp
	l.broken.Store(false)
	l.snap.Store(&snapshot{cp: cp, src: src, cosigned: cosigned})
	if l.cfg.Metrics != nil {
		l.cfg.Metrics.TreeSize.Set(float64(cp.Size))
	}
	l.committedTo(cp, nil)
	l.followIndex(ctx, cp, c)
	return nil
}

// storedQuorum reports whether a stored note carries the witness quorum
// (the cosignatures the server's witness verifiers accept).
func (l *Log) storedQuorum(cp store.Checkpoint) bool {
	if l.cfg.QuorumFunc != nil {
		return l.cfg.QuorumFunc(cp.Note, l.checkpointText(cp))
	}
	n := 0
	for _, w := range l.witnesses {
		if w.cosigns(cp.Note) {
			n++
		}
	}
	return n >= l.cfg.Quorum
}

// storeCosigned durably stores cp.Note, the cosigned note of the store's
// newest checkpoint (cp's size and root, already committed), in place of its
// stored note, and returns the checkpoint as it is now stored: the one to
// publish, so that what is served is what is stored (a restart, a mirror
// made from the store and a copy all carry the cosignatures). The write is
// an Append without entries, a compare-and-swap on cp's size and root that
// only replaces a note the new one extends (store.CheckNoteExtends): it can
// never change the tree, nor drop a signature already stored. It is bounded
// by Config.CommitTimeout. If the store
// refuses it (store.ErrConflict) because another server sharing the store
// stored its own cosigned note of the same tree head first, and that note
// carries the quorum, that note is returned instead.
func (l *Log) storeCosigned(ctx context.Context, cp store.Checkpoint) (store.Checkpoint, error) {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.CommitTimeout)
	defer cancel()
	err := l.st.Append(ctx, store.Batch{Prev: &cp, Checkpoint: cp})
	if err == nil {
		return cp, nil
	}
	if errors.Is(err, store.ErrConflict) {
		got, gerr := l.st.Checkpoint(ctx, cp.Size)
		if gerr == nil && got.Root == cp.Root && l.storedCosigned(got) {
			if c, oerr := l.openCheckpoint(got.Note); oerr == nil && c.Size == cp.Size && c.Root == cp.Root {
				return got, nil
			}
		}
	}
	if m := l.cfg.Metrics; m != nil && !errors.Is(err, store.ErrConflict) {
		m.CommitErrors.Inc()
	}
	return store.Checkpoint{}, fmt.Errorf("storing the cosigned note of checkpoint %d: %w", cp.Size, err)
}

// storedCosigned reports whether a stored note carries the cosignatures
// this server waits for: the quorum if one is required, otherwise at least
// one configured witness's cosignature.
func (l *Log) storedCosigned(cp store.Checkpoint) bool {
	if len(l.witnesses) == 0 {
		return false
	}
	if l.witnessRequired() {
		return l.storedQuorum(cp)
	}
	for _, w := range l.witnesses {
		if w.cosigns(cp.Note) {
			return true
		}
	}
	return false
}

// cosigns reports whether signed (a checkpoint note) carries a valid
// cosignature of this witness.
func (c *witnessClient) cosigns(signed []byte) bool {
	n, err := note.Open(signed, note.VerifierList(c.w.Verifier))
	return err == nil && len(n.Sigs) > 0
}
