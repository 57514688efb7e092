// Package plant writes entries into a log's store past the log's checks: the
// tamper drills of the tests and the demo's planted violations.
package plant

import (
	"context"
	"crypto/sha256"
	"fmt"

	"github.com/custodylog/custody/internal/tiles"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

// Plant appends entries to the log in st as one batch, stored exactly as
// the sequencer stores entries (identity, sample, hash tiles and a
// checkpoint signed by signer), but without any of the log's checks: no
// de-duplication, no site signature verified. An entry that decodes as an
// event (record.DecodeEntry) gets its identity and sample; any other (an
// attestation, or garbage) the SHA-256 of its bytes and no sample.
//
// It is for tamper drills and for the demo's planted violations: what a
// log operator who bypasses its own server could write. The audit and
// fsck must catch what it plants. It returns the new latest checkpoint.
func Plant(ctx context.Context, st store.Store, signer note.Signer, verifier note.Verifier, entries [][]byte) (store.Checkpoint, error) {
	prev, err := st.Latest(ctx)
	if err != nil {
		return store.Checkpoint{}, fmt.Errorf("plant: reading the latest checkpoint: %w", err)
	}
	cp, _, err := verify.OpenCheckpoint(prev.Note, verifier.Name(), note.VerifierList(verifier))
	if err != nil || cp.Size != prev.Size || cp.Root != prev.Root {
		return prev, fmt.Errorf("plant: the stored latest checkpoint does not verify with the log's key: %v", err)
	}
	b, err := tiles.Resume(prev.Size, func(level uint8, index uint64, _ int) ([]byte, error) {
		return st.Tile(ctx, level, index)
	})
	if err != nil {
		return prev, fmt.Errorf("plant: %w", err)
	}
	es := make([]store.Entry, len(entries))
	leaves := make([]tiles.Hash, len(entries))
	for i, data := range entries {
		e := store.Entry{Index: prev.Size + uint64(i), Identity: sha256.Sum256(data), LeafHash: tiles.LeafHash(data), Data: data}
		if ev, err := record.DecodeEntry(data); err == nil {
			e.Identity, e.Sample = ev.Identity(), ev.Sample
		}
		es[i], leaves[i] = e, e.LeafHash
	}
	ts := b.AppendTiles(leaves)
	stiles := make([]store.Tile, len(ts))
	for i, t := range ts {
		stiles[i] = store.Tile(t)
	}
	text := verify.Checkpoint{Origin: signer.Name(), Size: b.Size(), Root: b.Root()}.Marshal()
	signed, err := note.Sign(&note.Note{Text: string(text)}, signer)
	if err != nil {
		return prev, fmt.Errorf("plant: signing the checkpoint of size %d: %w", b.Size(), err)
	}
	next := store.Checkpoint{Size: b.Size(), Root: b.Root(), Note: signed}
	if err := st.Append(ctx, store.Batch{Prev: &prev, Entries: es, Tiles: stiles, Checkpoint: next}); err != nil {
		return prev, fmt.Errorf("plant: appending entries %d to %d: %w", prev.Size, next.Size-1, err)
	}
	return next, nil
}
