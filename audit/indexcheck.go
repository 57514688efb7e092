package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/custodylog/custody/internal/maptiles"
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

// SampleIndexFile is the name, in an audit state directory, of the file
// holding the tiles of the sample index the audit recomputed from the
// entries (internal/maptiles). It is derived data: when it is missing,
// damaged or for another size than the state, the next audit rebuilds it
// from the log's entries.
const SampleIndexFile = "sample-index.tiles"

// indexBuilder is the audit's recomputed sample index.
type indexBuilder struct{ *maptiles.Builder }

// openIndexBuilder opens the recomputed index kept in dir (a temporary
// directory when dir is ""), continuing from it if it covers exactly from
// entries; it returns the size it starts at (from or 0).
func openIndexBuilder(dir string, from uint64) (*indexBuilder, uint64, error) {
	b, start, err := maptiles.OpenBuilder(dir, SampleIndexFile, from)
	if err != nil {
		return nil, 0, err
	}
	return &indexBuilder{b}, start, nil
}

// addBundle adds the entries of bd, whose events are events, and applies
// them; it does nothing on a nil b (a log without a committed index).
func (b *indexBuilder) addBundle(ctx context.Context, bd *verify.Bundle, events []record.Event) error {
	if b == nil {
		return nil
	}
	for j := range bd.Entries {
		if events[j].Sample != "" { // an attestation is no event of a sample
			b.Add(bd.Start+uint64(j), events[j].Sample, bd.LeafHashes[j])
		}
	}
	b.SkipTo(bd.Start + uint64(len(bd.Entries)))
	return b.Apply(ctx)
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
				b.Add(bd.Start+uint64(j), id, bd.LeafHashes[j])
			}
		}
		b.SkipTo(bd.Start + uint64(len(bd.Entries)))
		return b.Apply(ctx)
	}
	return c.ReadBundles(ctx, start, end, cp, prepare, consume)
}
