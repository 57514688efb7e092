// Package logcopy copies a log from one store to another (SQLite,
// PostgreSQL, any store.Store) and proves the copy from the destination
// alone.
//
// Every stored checkpoint is copied in order, each in one store.Append with
// the entries it added and the hash tiles as of its size (recomputed from
// the entries' leaf hashes with internal/tiles, exactly as the sequencer
// writes them), and with its signed note byte for byte. Before anything is
// written, each source entry's leaf hash, identity and sample are checked
// against its data, and the root recomputed from the entries is compared
// with each checkpoint's. Then the destination is read back: the root is
// recomputed from its entries at every checkpoint, its tiles are compared
// with the recomputed ones, every note is compared byte for byte with the
// source's, and the latest checkpoints must be the same.
package logcopy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/custodylog/custody/internal/tiles"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/verify"
)

// page is how many entries Copy reads at a time.
const page = 4096

// Errors of Copy that callers tell apart (with errors.Is). Any other error
// is a failure to read or write a store.
var (
	// ErrNoLog: the source holds no checkpoint.
	ErrNoLog = errors.New("the source holds no log")
	// ErrNotEmpty: the destination holds entries or a checkpoint; Copy
	// never overwrites or merges logs.
	ErrNotEmpty = errors.New("the destination is not empty")
	// ErrSourceDamaged: the source's data does not check out (an entry's
	// columns, a hole, a checkpoint's note or root). Nothing was committed
	// past the last good checkpoint.
	ErrSourceDamaged = errors.New("the source is damaged")
	// ErrCopyDiffers: the destination, read back, is not the source.
	ErrCopyDiffers = errors.New("the copy differs from the source")
)

// Options tune Copy.
type Options struct {
	// From and To name the stores in messages and in the Summary (for
	// instance DSNs without their passwords).
	From, To string
	// Progress, if set, is called as the copy advances with the phase
	// (PhaseCopy, then PhaseVerify), the tree size reached and the size
	// of the source's latest checkpoint.
	Progress func(phase string, done, total uint64)
}

// The phases reported to Options.Progress.
const (
	PhaseCopy   = "copying entries"
	PhaseVerify = "verifying the copy"
)

// Summary is what a copy did. Its JSON form is what custody copy --json
// prints.
type Summary struct {
	From        string `json:"from"`
	To          string `json:"to"`
	Entries     uint64 `json:"entries"`
	Checkpoints uint64 `json:"checkpoints"`
	// Tiles counts the hash tiles the destination holds, each once however
	// often it grew during the copy: as custody fsck counts them.
	Tiles uint64 `json:"tiles"`
	// Size and Root (base64) are the latest checkpoint's.
	Size uint64 `json:"size"`
	Root string `json:"root"`
	// Verified is true once every check of the destination passed.
	Verified bool `json:"verified"`
}

// kindError is an error of one of the kinds above, with its own message.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string        { return e.msg }
func (e *kindError) Is(target error) bool { return target == e.kind }

// Hint says what to do about the error, in the words of custody copy.
func (e *kindError) Hint() string { return kindFixes[e.kind].hint }

// ExitCode is custody's exit code for the error: 3 for a store that cannot
// be copied from or into, 2 for a source or a copy that does not check out.
func (e *kindError) ExitCode() int { return kindFixes[e.kind].code }

var kindFixes = map[error]struct {
	hint string
	code int
}{
	ErrNoLog:         {"pass a store made by 'custody init' (and 'custody serve')", 3},
	ErrNotEmpty:      {"copy into a new, empty store (a new SQLite file, or an empty PostgreSQL database); copy never overwrites or merges logs", 3},
	ErrSourceDamaged: {"the source store is damaged or was tampered with: run 'custody fsck' on it; nothing was committed past the last good checkpoint, and the destination should be discarded", 2},
	ErrCopyDiffers:   {"the copy differs from the source: discard the destination and copy again; if it happens again, check the destination's database", 2},
}

func errorf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// Copy copies the log in from into the empty store to and proves the
// copy. The source must not change meanwhile: checkpoints it gains during
// the copy are not copied. On error the destination holds a prefix of the
// log (whole checkpoints) and should be discarded. Writes that lose a race
// with another writer of the destination return an error wrapping
// store.ErrConflict.
func Copy(ctx context.Context, from, to store.Store, opts Options) (*Summary, error) {
	sum := &Summary{From: opts.From, To: opts.To}
	progress := opts.Progress
	if progress == nil {
		progress = func(string, uint64, uint64) {}
	}
	latest, err := from.Latest(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errorf(ErrNoLog, "the source %s holds no log (no checkpoint)", sum.From)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the source's latest checkpoint: %w", err)
	}
	if err := checkEmpty(ctx, to, sum.To); err != nil {
		return nil, err
	}

	b := tiles.New()
	var prev *store.Checkpoint
	written := map[[2]uint64]bool{} // the tiles written, by level and index
	err = store.EachCheckpoint(ctx, from, latest.Size, func(c store.Checkpoint) error {
		if err := checkNote(c); err != nil {
			return errorf(ErrSourceDamaged, "source checkpoint of size %d: %v", c.Size, err)
		}
		var first uint64
		if prev != nil {
			first = prev.Size
		}
		var entries []store.Entry
		var leaves []tiles.Hash
		err := readEntries(ctx, from, first, c.Size, func(en store.Entry) error {
			if err := checkEntry(en); err != nil {
				return errorf(ErrSourceDamaged, "source entry %d: %v", en.Index, err)
			}
			entries = append(entries, en)
			leaves = append(leaves, en.LeafHash)
			return nil
		})
		if err != nil {
			return err
		}
		ts := storeTiles(b.AppendTiles(leaves))
		if root := b.Root(); root != c.Root {
			return errorf(ErrSourceDamaged, "the source's entries 0 to %d have root %s, but its checkpoint of size %d says %s",
				c.Size, b64(root), c.Size, b64(c.Root))
		}
		if err := to.Append(ctx, store.Batch{Prev: prev, Entries: entries, Tiles: ts, Checkpoint: c}); err != nil {
			return fmt.Errorf("writing checkpoint %d to %s: %w", c.Size, sum.To, err)
		}
		sum.Entries += uint64(len(entries))
		sum.Checkpoints++
		for _, t := range ts {
			written[[2]uint64{uint64(t.Level), t.Index}] = true
		}
		sum.Tiles = uint64(len(written))
		cc := c
		prev = &cc
		progress(PhaseCopy, c.Size, latest.Size)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if prev == nil || prev.Size != latest.Size {
		return nil, errorf(ErrSourceDamaged, "the source's checkpoints do not include its latest one (size %d)", latest.Size)
	}
	if err := prove(ctx, from, to, latest, sum, progress); err != nil {
		return nil, err
	}
	sum.Size, sum.Root, sum.Verified = latest.Size, b64(latest.Root), true
	return sum, nil
}

// prove checks the destination from its own data: every checkpoint's root
// recomputed from its entries, its tiles, and its notes against the
// source's.
func prove(ctx context.Context, src, dst store.Store, latest store.Checkpoint, sum *Summary, progress func(string, uint64, uint64)) error {
	b := tiles.New()
	var n, size uint64
	err := store.EachCheckpoint(ctx, dst, ^uint64(0), func(c store.Checkpoint) error {
		n++
		sc, err := src.Checkpoint(ctx, c.Size)
		if errors.Is(err, store.ErrNotFound) {
			return errorf(ErrCopyDiffers, "the destination has a checkpoint of size %d the source does not have", c.Size)
		}
		if err != nil {
			return fmt.Errorf("reading the source's checkpoint %d: %w", c.Size, err)
		}
		if sc.Root != c.Root || !bytes.Equal(sc.Note, c.Note) {
			return errorf(ErrCopyDiffers, "checkpoint %d differs: the destination's note or root is not the source's byte for byte", c.Size)
		}
		var leaves []tiles.Hash
		err = readEntries(ctx, dst, size, c.Size, func(en store.Entry) error {
			if err := checkEntry(en); err != nil {
				return errorf(ErrCopyDiffers, "destination entry %d: %v", en.Index, err)
			}
			leaves = append(leaves, en.LeafHash)
			return nil
		})
		if err != nil {
			return err
		}
		ts := b.AppendTiles(leaves)
		if root := b.Root(); root != c.Root {
			return errorf(ErrCopyDiffers, "the destination's entries 0 to %d have root %s, its checkpoint says %s", c.Size, b64(root), b64(c.Root))
		}
		for _, t := range ts {
			where := verify.TileAddr{Level: t.Level, Index: t.Index}.Path()
			got, err := dst.Tile(ctx, t.Level, t.Index)
			if err != nil {
				return errorf(ErrCopyDiffers, "destination tile %s: %v", where, err)
			}
			if len(got) < len(t.Data) || !bytes.Equal(got[:len(t.Data)], t.Data) {
				return errorf(ErrCopyDiffers, "destination tile %s is not the tile recomputed from its entries at size %d", where, c.Size)
			}
		}
		size = c.Size
		progress(PhaseVerify, size, latest.Size)
		return nil
	})
	if err != nil {
		return err
	}
	if n != sum.Checkpoints {
		return errorf(ErrCopyDiffers, "the destination holds %d checkpoints, %d were copied", n, sum.Checkpoints)
	}
	got, err := dst.Latest(ctx)
	if err != nil {
		return fmt.Errorf("reading the destination's latest checkpoint: %w", err)
	}
	if got.Size != latest.Size || got.Root != latest.Root || !bytes.Equal(got.Note, latest.Note) {
		return errorf(ErrCopyDiffers, "the destination's latest checkpoint (size %d) is not the source's (size %d)", got.Size, latest.Size)
	}
	if more, err := dst.Entries(ctx, latest.Size, latest.Size+1); err != nil {
		return fmt.Errorf("reading the destination's entries: %w", err)
	} else if len(more) > 0 {
		return errorf(ErrCopyDiffers, "the destination holds entries beyond its latest checkpoint (size %d)", latest.Size)
	}
	return nil
}

// readEntries calls fn with each entry of [start, end) of st, in order,
// and fails if one is missing.
func readEntries(ctx context.Context, st store.Store, start, end uint64, fn func(store.Entry) error) error {
	for i := start; i < end; {
		hi := min(end, i+page)
		es, err := st.Entries(ctx, i, hi)
		if err != nil {
			return fmt.Errorf("reading entries %d to %d: %w", i, hi-1, err)
		}
		for _, en := range es {
			if en.Index != i {
				return errorf(ErrSourceDamaged, "entry %d is missing (the store returned entry %d next)", i, en.Index)
			}
			if err := fn(en); err != nil {
				return err
			}
			i++
		}
		if i < hi {
			return errorf(ErrSourceDamaged, "entries %d to %d are missing; a checkpoint of size %d covers them", i, hi-1, end)
		}
	}
	return nil
}

// checkEntry checks an entry's stored columns against its data.
func checkEntry(en store.Entry) error {
	if leaf := tiles.LeafHash(en.Data); leaf != en.LeafHash {
		return fmt.Errorf("stored leaf hash %x, but its data hashes to %x", en.LeafHash, leaf)
	}
	if record.KindOf(en.Data) == record.EntryAttestation {
		// A site attestation (docs/site-signing.md): its identity is the
		// SHA-256 of its bytes, and it has no sample.
		if id := sha256.Sum256(en.Data); id != en.Identity || en.Sample != "" {
			return fmt.Errorf("stored identity %x and sample %q, but an attestation entry has identity %x and no sample", en.Identity, en.Sample, id)
		}
		return nil
	}
	ev, err := record.DecodeEntry(en.Data)
	if err != nil {
		return fmt.Errorf("not a canonical event: %v", err)
	}
	if id := ev.Identity(); id != en.Identity {
		return fmt.Errorf("stored identity %x, but the event's is %x", en.Identity, id)
	}
	if ev.Sample != en.Sample {
		return fmt.Errorf("stored sample %q, but the event's is %q", en.Sample, ev.Sample)
	}
	return nil
}

// checkNote checks that a stored checkpoint's note carries its size and root.
func checkNote(c store.Checkpoint) error {
	i := bytes.Index(c.Note, []byte("\n\n"))
	if i < 0 {
		return errors.New("its note is not a signed note")
	}
	cp, err := verify.ParseCheckpoint(c.Note[:i+1])
	if err != nil {
		return fmt.Errorf("its note: %w", err)
	}
	if cp.Size != c.Size || cp.Root != c.Root {
		return fmt.Errorf("its note says size %d root %s, the stored row size %d root %s", cp.Size, b64(cp.Root), c.Size, b64(c.Root))
	}
	return nil
}

// checkEmpty refuses a destination that holds anything.
func checkEmpty(ctx context.Context, st store.Store, name string) error {
	cp, err := st.Latest(ctx)
	switch {
	case err == nil:
		return errorf(ErrNotEmpty, "the destination %s is not empty: it holds a log of %d entries", name, cp.Size)
	case !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("reading the destination's checkpoint: %w", err)
	}
	es, err := st.Entries(ctx, 0, 1)
	if err != nil {
		return fmt.Errorf("reading the destination's entries: %w", err)
	}
	if len(es) > 0 {
		return errorf(ErrNotEmpty, "the destination %s is not empty: it holds entries", name)
	}
	return nil
}

func storeTiles(ts []tiles.Tile) []store.Tile {
	out := make([]store.Tile, len(ts))
	for i, t := range ts {
		out[i] = store.Tile{Level: t.Level, Index: t.Index, Data: t.Data}
	}
	return out
}

func b64(h [32]byte) string { return base64.StdEncoding.EncodeToString(h[:]) }
