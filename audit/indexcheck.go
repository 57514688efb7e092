package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/sampleindex"
	"github.com/custodylog/custody/verify"
)

// Evidence kinds this package adds to verify's (verify.Evidence.Kind).
const (
	// EvidenceSampleIndexMismatch: the map root an auditor recomputed from
	// the log's entries differs from the one the log committed in its
	// signed checkpoint's custody-sample-index line (or that line is
	// malformed): the log's sample index omits, adds or reorders events.
	// Expected is the committed root, Computed the recomputed one.
	EvidenceSampleIndexMismatch = "sample-index-mismatch"
	// EvidenceBadSampleProof: a sample proof the log served does not
	// verify against its signed checkpoint (an event dropped, added or
	// reordered, a proof for another size or sample …). Proof holds the
	// served proof's bytes, base64, as one string.
	EvidenceBadSampleProof = "bad-sample-proof"
)

// Values of AuditReport.SampleIndex.
const (
	// SampleIndexVerified: the checkpoint commits a sample index and the
	// map recomputed from the entries has its root.
	SampleIndexVerified = "verified"
	// SampleIndexNotCommitted: the checkpoint has no custody-sample-index
	// line (a log from before the index): nothing to check.
	SampleIndexNotCommitted = "not-committed"
)

// indexFlushEvery is how many entries an indexBuilder applies between two
// writes of its dirty tiles to the index file: it bounds the memory of the
// dirty tiles (about 3 KB per entry at most: the tiles on its path).
const indexFlushEvery = 1 << 14

// indexBuilder recomputes a log's sample index (sampleindex.Map) from its
// entries, with its tiles in an indexFile so that memory stays bounded
// however many samples the log holds.
type indexBuilder struct {
	m       *sampleindex.Map
	file    *indexFile
	tmpDir  string // removed by close, if set
	changes []sampleindex.Change
	pending int
	// size is the number of log entries added (events or not): the
	// size the file's commits record.
	size uint64
}

// openIndexBuilder opens the recomputed index kept in dir (a new temporary
// directory when dir is ""). It continues from the stored index if that
// covers exactly from entries, and starts over otherwise; it returns the
// size it starts at (from or 0).
func openIndexBuilder(dir string, from uint64) (*indexBuilder, uint64, error) {
	b := &indexBuilder{}
	if dir == "" {
		tmp, err := os.MkdirTemp("", "custody-audit-index-")
		if err != nil {
			return nil, 0, err
		}
		dir, b.tmpDir = tmp, tmp
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, 0, err
	}
	path := filepath.Join(dir, SampleIndexFile)
	if from > 0 {
		if f, err := openIndexFile(path); err == nil {
			if f.Size() == from {
				b.file = f
			} else {
				f.close()
			}
		}
	}
	if b.file == nil {
		f, err := createIndexFile(path)
		if err != nil {
			b.close()
			return nil, 0, err
		}
		b.file = f
	}
	b.size = b.file.Size()
	b.m = sampleindex.Open(b.file, b.size, &sampleindex.Options{CacheTiles: 1 << 15, PinnedDepth: 16})
	return b, b.size, nil
}

// add records the entry at index, an event of sample with leaf hash leaf.
func (b *indexBuilder) add(index uint64, sample string, leaf verify.Hash) {
	b.changes = append(b.changes, sampleindex.Change{Key: sampleindex.KeyOf(sample), Index: index, LeafHash: leaf})
	b.size = max(b.size, index+1)
}

// skipTo records that the log has size entries (the last ones may be
// entries of no sample).
func (b *indexBuilder) skipTo(size uint64) { b.size = max(b.size, size) }

// addBundle adds the entries of bd, whose events are events, and applies
// them; it does nothing on a nil b (a log without a committed index).
func (b *indexBuilder) addBundle(ctx context.Context, bd *verify.Bundle, events []record.Event) error {
	if b == nil {
		return nil
	}
	for j := range bd.Entries {
		if events[j].Sample != "" { // an attestation is no event of a sample
			b.add(bd.Start+uint64(j), events[j].Sample, bd.LeafHashes[j])
		}
	}
	b.skipTo(bd.Start + uint64(len(bd.Entries)))
	return b.apply(ctx)
}

// apply applies the entries added since the last apply to the map, and
// writes the dirty tiles to the file every indexFlushEvery entries.
func (b *indexBuilder) apply(ctx context.Context) error {
	if len(b.changes) == 0 {
		return nil
	}
	if _, err := b.m.Update(ctx, b.changes); err != nil {
		return fmt.Errorf("recomputing the sample index: %w", err)
	}
	b.pending += len(b.changes)
	b.changes = b.changes[:0]
	if b.pending >= indexFlushEvery {
		return b.flush(ctx)
	}
	return nil
}

func (b *indexBuilder) flush(ctx context.Context) error {
	b.pending = 0
	write := func(ctx context.Context, _ uint64, tiles []sampleindex.Tile) error {
		return b.file.WriteTiles(ctx, b.size, tiles)
	}
	if err := b.m.Flush(ctx, write); err != nil {
		return fmt.Errorf("writing the recomputed sample index: %w", err)
	}
	return nil
}

// finish applies what is left, makes the file durable at the map's size,
// and returns the map root.
func (b *indexBuilder) finish(ctx context.Context) (sampleindex.Hash, error) {
	if err := b.apply(ctx); err != nil {
		return sampleindex.Hash{}, err
	}
	if err := b.flush(ctx); err != nil {
		return sampleindex.Hash{}, err
	}
	if err := b.file.sync(); err != nil {
		return sampleindex.Hash{}, fmt.Errorf("writing the recomputed sample index: %w", err)
	}
	return b.m.Root(ctx)
}

// close closes the file and removes a temporary directory.
func (b *indexBuilder) close() {
	if b.file != nil {
		b.file.close()
	}
	if b.tmpDir != "" {
		os.RemoveAll(b.tmpDir)
	}
}

// committedIndex returns the map root cp commits, and false when cp has no
// index line. A malformed index line is a *verify.VerificationError.
func committedIndex(cp verify.Checkpoint, signed []byte) (sampleindex.Hash, bool, error) {
	root, err := sampleindex.FindExtension(cp.Extensions)
	if errors.Is(err, sampleindex.ErrNoExtension) {
		return root, false, nil
	}
	if err != nil {
		return root, false, &verify.VerificationError{Evidence: verify.Evidence{
			Kind:   EvidenceSampleIndexMismatch,
			What:   fmt.Sprintf("the signed checkpoint of size %d has a malformed %s line", cp.Size, sampleindex.ExtensionKeyword),
			Origin: cp.Origin, NewCheckpoint: string(signed), NewSize: cp.Size, Time: time.Now().UTC(),
		}, Err: err}
	}
	return root, true, nil
}

// checkIndex compares the recomputed map root with the committed one.
func checkIndex(cp verify.Checkpoint, signed []byte, want, got sampleindex.Hash) error {
	if want == got {
		return nil
	}
	return &verify.VerificationError{Evidence: verify.Evidence{
		Kind: EvidenceSampleIndexMismatch,
		What: fmt.Sprintf("the sample index recomputed from the log's %d entries has another root than the one the signed checkpoint commits in its %s line: the log's index omits, adds or reorders events",
			cp.Size, sampleindex.ExtensionKeyword),
		Origin: cp.Origin, NewCheckpoint: string(signed), NewSize: cp.Size,
		Expected: b64(want), Computed: b64(got), Time: time.Now().UTC(),
	}}
}

// rebuildIndex adds the entries [start, end) of the log to b, reading
// them again from authenticated bundles (an audit that continues from a
// state whose recomputed index is missing or stale).
func rebuildIndex(ctx context.Context, c *verify.Client, cp verify.Checkpoint, b *indexBuilder, start, end uint64) error {
	if start >= end {
		return nil
	}
	type samples struct {
		ids []string
		err error
		at  int
	}
	prepare := func(bd *verify.Bundle) {
		s, _ := bd.Scratch.(*samples)
		if s == nil {
			s = new(samples)
			bd.Scratch = s
		}
		s.ids, s.err = s.ids[:0], nil
		for j, e := range bd.Entries {
			if record.KindOf(e) == record.EntryAttestation {
				s.ids = append(s.ids, "") // no event of a sample
				continue
			}
			ev, err := record.DecodeEntry(e)
			if err != nil {
				s.err, s.at = err, j
				return
			}
			s.ids = append(s.ids, ev.Sample)
		}
	}
	consume := func(bd *verify.Bundle) error {
		s := bd.Scratch.(*samples)
		if s.err != nil {
			return fmt.Errorf("rebuilding the sample index: entry %d: %w", bd.Start+uint64(s.at), s.err)
		}
		for j, id := range s.ids {
			if id != "" {
				b.add(bd.Start+uint64(j), id, bd.LeafHashes[j])
			}
		}
		b.skipTo(bd.Start + uint64(len(bd.Entries)))
		return b.apply(ctx)
	}
	return c.ReadBundles(ctx, start, end, cp, prepare, consume)
}
