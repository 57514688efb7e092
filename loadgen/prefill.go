// Package loadgen makes load for measuring custody: the events the bench
// workload submits, and Prefill, a bulk loader that grows a log to a given
// size straight through the store, writing exactly what the sequencer
// writes (entries, hash tiles, a signed checkpoint per batch), so that
// logs of 100 M entries can be built for measurement in minutes rather
// than the hours the HTTP path would take.
//
// Prefill is for benchmarks and drills, not for production data: it signs
// with the log's key and bypasses the server's de-duplication (its events
// are unique by construction, and the store still refuses a duplicate
// identity). When the store keeps the sample index (store.SampleMap),
// Prefill keeps it too (log.SampleIndexWriter), so its checkpoints carry
// the same index line as the sequencer's.
package loadgen

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/custodylog/custody/internal/tiles"
	"github.com/custodylog/custody/log"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/stats"
	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

// Locations and regions the generated events cycle through: all allowed
// by testdata/bench-policy.yaml, so an audit of a prefilled log with that
// policy has no findings (TestPrefillAuditsClean).
var (
	benchLocations = []struct{ loc, region string }{
		{"ch-zrh-1", "EU"}, {"de-fra-1", "EU"}, {"ie-dub-1", "EU"}, {"us-va-1", "US"}, {"us-or-1", "US"},
	}
)

// Event returns event i of a workload run: a "collected" event of its own
// sample (so every sample is still open, the auditor's worst case), at one
// of five data centres of the EU and US regions, stamped t. run makes the
// samples of different runs distinct.
func Event(run string, i uint64, t time.Time) record.Event {
	l := benchLocations[i%uint64(len(benchLocations))]
	return record.Event{
		Sample:   fmt.Sprintf("bench-%s-%d", run, i),
		Action:   record.Collected,
		Location: l.loc,
		Region:   l.region,
		Time:     t,
		Actor:    "custody-bench",
	}
}

// NewRun returns a random run name for Event.
func NewRun() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// PrefillOptions tune Prefill.
type PrefillOptions struct {
	// Batch is how many entries each store.Append commits (default 16384).
	Batch int
	// Run names the generated samples (default: NewRun()).
	Run string
	// Now stamps the events' time and logged (default time.Now).
	Now func() time.Time
	// Progress, if set, is called after each committed batch with the
	// tree size so far.
	Progress func(size uint64)
	// Workload, if set, makes entry idx's event (Logged is set by
	// Prefill, at now); default Event, each at a minute before now.
	// Events of one workload must have distinct identities.
	Workload func(run string, idx uint64, now time.Time) record.Event
}

// Prefill appends n generated events to the log in st, signed by signer,
// whose latest checkpoint must verify with verifier; it returns the new
// latest checkpoint. Each batch is one store.Append with the tiles and a
// checkpoint exactly as the sequencer would write them, so the result is
// indistinguishable from a log grown through the HTTP API (but for the
// shape of its batches). A log being served by another process must not
// be prefilled: its sequencer would lose the compare-and-swap race and
// reload, which is safe but slow. When st is a store.Aggregator, Prefill
// also keeps the region × location counts of package stats saved, as a
// server does, so that serving the grown log does not recount it.
func Prefill(ctx context.Context, st store.Store, signer note.Signer, verifier note.Verifier, n uint64, opts PrefillOptions) (_ store.Checkpoint, err error) {
	if opts.Batch <= 0 {
		opts.Batch = 16384
	}
	if opts.Run == "" {
		opts.Run = NewRun()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if signer.Name() != verifier.Name() || signer.KeyHash() != verifier.KeyHash() {
		return store.Checkpoint{}, errors.New("prefill: the signing key does not match the log's verifier key")
	}
	prev, err := st.Latest(ctx)
	if err != nil {
		return store.Checkpoint{}, fmt.Errorf("prefill: reading the latest checkpoint: %w", err)
	}
	cp, _, err := verify.OpenCheckpoint(prev.Note, verifier.Name(), note.VerifierList(verifier))
	if err != nil || cp.Size != prev.Size || cp.Root != prev.Root {
		return store.Checkpoint{}, fmt.Errorf("prefill: the stored latest checkpoint does not verify with the log's key: %v", err)
	}
	b, err := tiles.Resume(prev.Size, func(level uint8, index uint64, _ int) ([]byte, error) {
		return st.Tile(ctx, level, index)
	})
	if err != nil {
		return store.Checkpoint{}, fmt.Errorf("prefill: %w", err)
	}
	if b.Root() != prev.Root {
		return store.Checkpoint{}, fmt.Errorf("prefill: the stored tiles give root %x at size %d, the checkpoint says %x: run custody fsck", b.Root(), prev.Size, prev.Root)
	}
	// The region × location counts a server keeps are saved as it saves
	// them, so that serving the grown log does not recount it.
	var counter *stats.Counter
	if agg, ok := st.(store.Aggregator); ok {
		counter = stats.New(st, nil)
		if _, err := stats.Load(ctx, counter, agg); err != nil {
			return prev, fmt.Errorf("prefill: %w", err)
		}
		if err := counter.CountTo(ctx, prev.Size); err != nil {
			return prev, fmt.Errorf("prefill: %w", err)
		}
		defer func() {
			if _, serr := stats.Save(context.WithoutCancel(ctx), counter, agg); serr != nil && err == nil {
				err = fmt.Errorf("prefill: %w", serr)
			}
		}()
	}
	// The sample index, kept as the sequencer keeps it: every checkpoint
	// carries its index line.
	idx, err := log.OpenSampleIndex(ctx, st, cp, log.SampleIndexOptions{}, nil)
	if err != nil {
		return prev, fmt.Errorf("prefill: %w", err)
	}
	var ext []string
	for done := uint64(0); done < n; {
		if err := ctx.Err(); err != nil {
			return prev, err
		}
		k := min(uint64(opts.Batch), n-done)
		now := opts.Now().UTC().Truncate(time.Second)
		entries := make([]store.Entry, k)
		leaves := make([]tiles.Hash, k)
		for i := range entries {
			idx := prev.Size + uint64(i)
			var ev record.Event
			if opts.Workload != nil {
				ev = opts.Workload(opts.Run, idx, now)
			} else {
				ev = Event(opts.Run, idx, now.Add(-time.Minute))
			}
			id := ev.Identity()
			ev.Logged = now
			data := ev.Canonical()
			entries[i] = store.Entry{Index: idx, Identity: id, LeafHash: tiles.LeafHash(data), Sample: ev.Sample, Data: data}
			leaves[i] = entries[i].LeafHash
		}
		ts := b.AppendTiles(leaves)
		stiles := make([]store.Tile, len(ts))
		for i, t := range ts {
			stiles[i] = store.Tile(t)
		}
		if idx != nil {
			line, err := idx.Add(ctx, entries)
			if err != nil {
				return prev, fmt.Errorf("prefill: %w", err)
			}
			ext = []string{line}
		}
		text := verify.Checkpoint{Origin: signer.Name(), Size: b.Size(), Root: b.Root(), Extensions: ext}.Marshal()
		signed, err := note.Sign(&note.Note{Text: string(text)}, signer)
		if err != nil {
			return prev, fmt.Errorf("prefill: signing the checkpoint of size %d: %w", b.Size(), err)
		}
		next := store.Checkpoint{Size: b.Size(), Root: b.Root(), Note: signed}
		p := prev
		if err := st.Append(ctx, store.Batch{Prev: &p, Entries: entries, Tiles: stiles, Checkpoint: next}); err != nil {
			return prev, fmt.Errorf("prefill: appending entries %d to %d: %w", prev.Size, next.Size-1, err)
		}
		prev = next
		done += k
		if idx != nil && (idx.FlushDue() || done == n) {
			if err := idx.Flush(ctx); err != nil {
				return prev, fmt.Errorf("prefill: %w", err)
			}
		}
		if counter != nil {
			if err := counter.Add(entries); err != nil {
				return prev, fmt.Errorf("prefill: after size %d: %w", prev.Size, err)
			}
		}
		if opts.Progress != nil {
			opts.Progress(prev.Size)
		}
	}
	return prev, nil
}
