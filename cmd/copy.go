package cmd

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"time"

	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/verify"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
)

// copyPage is how many entries (or checkpoints) copy reads at a time.
const copyPage = 4096

// copySummary is what custody copy reports (--json prints it as is).
type copySummary struct {
	From        string `json:"from"`
	To          string `json:"to"`
	Entries     uint64 `json:"entries"`
	Checkpoints uint64 `json:"checkpoints"`
	// Tiles counts the hash tiles the destination holds, each once however
	// often it grew during the copy: as custody fsck counts them.
	Tiles uint64 `json:"tiles"`
	Size  uint64 `json:"size"`
	Root  string `json:"root"`
	// Verified is true once every check of the destination passed.
	Verified bool `json:"verified"`
}

func (e *env) copyCmd() *cobra.Command {
	var from, to string
	var asJSON bool
	c := &cobra.Command{
		Use:   "copy --from DSN --to DSN [--json]",
		Short: "Copy a log from one store to another (SQLite, PostgreSQL) and prove the copy",
		Long: `copy moves a log between storage backends: from any store 'custody serve
--store' accepts to any other (sqlite:PATH or a path, a PostgreSQL URL).
The destination must be empty.

Every stored checkpoint is copied in order, each in one transaction with
the entries it added and the hash tiles as of its size (recomputed from
the entries' leaf hashes), and with its signed note byte for byte. Before
anything is written, each source entry's leaf hash, identity and sample
are checked against its data, and the root recomputed from the entries is
compared with each checkpoint's.

Then the copy is proved from the destination alone: the root is
recomputed from its entries at every checkpoint, its tiles are compared
with the recomputed ones, every checkpoint note is compared byte for byte
with the source's, and the latest checkpoints must be the same.

The summary counts the entries, the checkpoints and the hash tiles the
destination holds (each tile once, however often it grew during the copy:
the way 'custody fsck' counts them, so the two agree on a healthy log).

Stop the log's writer (custody serve) first, or copy from a snapshot:
checkpoints the source gains during the copy are not copied.

Exit codes: 0 copied and proved, 2 a mismatch (the source is damaged or
the copy differs), 3 usage or I/O error.`,
		Example: `  custody copy --from sqlite:mylog/custody.db --to postgres://custody@db.example.com/custody
  custody copy --from postgres://custody@db.example.com/custody --to sqlite:restore/custody.db --json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			sum, err := e.runCopy(c.Context(), from, to)
			if err != nil {
				return err
			}
			if asJSON {
				printJSON(e.stdout, sum)
				return nil
			}
			fmt.Fprintf(e.stdout, "copied %d entries, %d checkpoints and %d tiles from %s to %s\n", sum.Entries, sum.Checkpoints, sum.Tiles, sum.From, sum.To)
			fmt.Fprintf(e.stdout, "verified: the destination's entries give every checkpoint's root, its tiles and %d checkpoint notes match; latest size %d, root %s\n", sum.Checkpoints, sum.Size, sum.Root)
			return nil
		},
	}
	c.Flags().StringVar(&from, "from", "", "the source store: sqlite:PATH, a path, or a PostgreSQL URL")
	c.Flags().StringVar(&to, "to", "", "the destination store, which must be empty")
	c.Flags().BoolVar(&asJSON, "json", false, "print the summary as JSON")
	return c
}

// copyMismatch is a copy failure that shows damaged or differing data (exit 2).
func copyMismatch(hint, format string, args ...any) error {
	return &cliError{err: fmt.Errorf(format, args...), hint: hint, code: exitInvalid}
}

const sourceDamagedHint = "the source store is damaged or was tampered with: run 'custody fsck' on it; nothing was committed past the last good checkpoint, and the destination should be discarded"

// runCopy copies the log in store from into the empty store to and proves
// the copy.
func (e *env) runCopy(ctx context.Context, from, to string) (*copySummary, error) {
	if from == "" || to == "" {
		return nil, usageError("pass both stores, e.g. --from sqlite:mylog/custody.db --to postgres://…", "missing --from or --to")
	}
	if from == to {
		return nil, usageError("copy into another store", "--from and --to are the same store")
	}
	sum := &copySummary{From: redactDSN(from), To: redactDSN(to)}
	if err := mustExist(from); err != nil {
		return nil, err
	}
	src, err := openStore(from, logFiles{})
	if err != nil {
		return nil, storeOpenErr(err, "--from", from)
	}
	defer src.Close()
	latest, err := src.Latest(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return nil, usageError("pass a store made by 'custody init' (and 'custody serve')", "the source %s holds no log (no checkpoint)", sum.From)
	}
	if err != nil {
		return nil, ioError(fmt.Errorf("reading the source's latest checkpoint: %w", err))
	}
	dst, err := openStore(to, logFiles{})
	if err != nil {
		return nil, storeOpenErr(err, "--to", to)
	}
	defer dst.Close()
	if err := checkEmpty(ctx, dst, sum.To); err != nil {
		return nil, err
	}

	bar := e.copyBar("copying entries", latest.Size)
	b := newTileBuilder()
	var prev *store.Checkpoint
	written := map[[2]uint64]bool{} // the tiles written, by level and index
	err = eachCheckpoint(ctx, src, latest.Size, func(c store.Checkpoint) error {
		if err := checkNote(c); err != nil {
			return copyMismatch(sourceDamagedHint, "source checkpoint of size %d: %v", c.Size, err)
		}
		var first uint64
		if prev != nil {
			first = prev.Size
		}
		var entries []store.Entry
		var leaves []store.Hash
		err := readEntries(ctx, src, first, c.Size, func(en store.Entry) error {
			if err := checkEntry(en); err != nil {
				return copyMismatch(sourceDamagedHint, "source entry %d: %v", en.Index, err)
			}
			entries = append(entries, en)
			leaves = append(leaves, en.LeafHash)
			return nil
		})
		if err != nil {
			return err
		}
		tiles, err := b.add(leaves)
		if err != nil {
			return err
		}
		if root := b.root(); root != c.Root {
			return copyMismatch(sourceDamagedHint, "the source's entries 0 to %d have root %s, but its checkpoint of size %d says %s",
				c.Size, b64Hash(root), c.Size, b64Hash(c.Root))
		}
		err = dst.Append(ctx, store.Batch{Prev: prev, Entries: entries, Tiles: tiles, Checkpoint: c})
		if err != nil {
			if errors.Is(err, store.ErrConflict) {
				return withHint(fmt.Errorf("writing checkpoint %d to %s: %w", c.Size, sum.To, err), "another process wrote to the destination during the copy: start again with an empty destination")
			}
			return ioError(fmt.Errorf("writing checkpoint %d to %s: %w", c.Size, sum.To, err))
		}
		sum.Entries += uint64(len(entries))
		sum.Checkpoints++
		for _, t := range tiles {
			written[[2]uint64{uint64(t.Level), t.Index}] = true
		}
		sum.Tiles = uint64(len(written))
		cc := c
		prev = &cc
		bar.set(c.Size)
		return nil
	})
	bar.finish()
	if err != nil {
		return nil, copyErr(err, "reading the source")
	}
	if prev == nil || prev.Size != latest.Size {
		return nil, copyMismatch(sourceDamagedHint, "the source's checkpoints do not include its latest one (size %d)", latest.Size)
	}
	if err := e.proveCopy(ctx, src, dst, latest, sum); err != nil {
		return nil, err
	}
	sum.Size, sum.Root, sum.Verified = latest.Size, b64Hash(latest.Root), true
	return sum, nil
}

// proveCopy checks the destination from its own data: every checkpoint's
// root recomputed from its entries, its tiles, and its notes against the
// source's.
func (e *env) proveCopy(ctx context.Context, src, dst store.Store, latest store.Checkpoint, sum *copySummary) error {
	const hint = "the copy differs from the source: discard the destination and copy again; if it happens again, check the destination's database"
	bar := e.copyBar("verifying the copy", latest.Size)
	defer bar.finish()
	b := newTileBuilder()
	var n, size uint64
	err := eachCheckpoint(ctx, dst, math64, func(c store.Checkpoint) error {
		n++
		sc, err := src.Checkpoint(ctx, c.Size)
		if errors.Is(err, store.ErrNotFound) {
			return copyMismatch(hint, "the destination has a checkpoint of size %d the source does not have", c.Size)
		}
		if err != nil {
			return ioError(fmt.Errorf("reading the source's checkpoint %d: %w", c.Size, err))
		}
		if sc.Root != c.Root || !bytes.Equal(sc.Note, c.Note) {
			return copyMismatch(hint, "checkpoint %d differs: the destination's note or root is not the source's byte for byte", c.Size)
		}
		var leaves []store.Hash
		err = readEntries(ctx, dst, size, c.Size, func(en store.Entry) error {
			if err := checkEntry(en); err != nil {
				return copyMismatch(hint, "destination entry %d: %v", en.Index, err)
			}
			leaves = append(leaves, en.LeafHash)
			return nil
		})
		if err != nil {
			return err
		}
		tiles, err := b.add(leaves)
		if err != nil {
			return err
		}
		if root := b.root(); root != c.Root {
			return copyMismatch(hint, "the destination's entries 0 to %d have root %s, its checkpoint says %s", c.Size, b64Hash(root), b64Hash(c.Root))
		}
		for _, t := range tiles {
			got, err := dst.Tile(ctx, t.Level, t.Index)
			if err != nil {
				return copyMismatch(hint, "destination tile %s: %v", tileWhere(t.Level, t.Index), err)
			}
			if len(got) < len(t.Data) || !bytes.Equal(got[:len(t.Data)], t.Data) {
				return copyMismatch(hint, "destination tile %s is not the tile recomputed from its entries at size %d", tileWhere(t.Level, t.Index), c.Size)
			}
		}
		size = c.Size
		bar.set(size)
		return nil
	})
	if err != nil {
		return copyErr(err, "verifying the copy")
	}
	if n != sum.Checkpoints {
		return copyMismatch(hint, "the destination holds %d checkpoints, %d were copied", n, sum.Checkpoints)
	}
	got, err := dst.Latest(ctx)
	if err != nil {
		return ioError(fmt.Errorf("reading the destination's latest checkpoint: %w", err))
	}
	if got.Size != latest.Size || got.Root != latest.Root || !bytes.Equal(got.Note, latest.Note) {
		return copyMismatch(hint, "the destination's latest checkpoint (size %d) is not the source's (size %d)", got.Size, latest.Size)
	}
	if more, err := dst.Entries(ctx, latest.Size, latest.Size+1); err != nil {
		return ioError(err)
	} else if len(more) > 0 {
		return copyMismatch(hint, "the destination holds entries beyond its latest checkpoint (size %d)", latest.Size)
	}
	return nil
}

// math64 is "no limit" for eachCheckpoint.
const math64 = ^uint64(0)

// eachCheckpoint calls fn with every checkpoint of st of size up to max, in
// increasing size order.
func eachCheckpoint(ctx context.Context, st store.Store, max uint64, fn func(store.Checkpoint) error) error {
	var from uint64
	var last *uint64
	for {
		cps, err := st.Checkpoints(ctx, from, 256)
		if err != nil {
			return ioError(fmt.Errorf("listing checkpoints from size %d: %w", from, err))
		}
		if len(cps) == 0 {
			return nil
		}
		for _, c := range cps {
			if c.Size > max {
				return nil
			}
			if last != nil && c.Size <= *last {
				return fmt.Errorf("the store listed checkpoint %d after checkpoint %d", c.Size, *last)
			}
			s := c.Size
			last = &s
			if err := fn(c); err != nil {
				return err
			}
		}
		if *last == math64 {
			return nil
		}
		from = *last + 1
	}
}

// readEntries calls fn with each entry of [start, end) of st, in order,
// and fails if one is missing.
func readEntries(ctx context.Context, st store.Store, start, end uint64, fn func(store.Entry) error) error {
	for i := start; i < end; {
		hi := min(end, i+copyPage)
		es, err := st.Entries(ctx, i, hi)
		if err != nil {
			return ioError(fmt.Errorf("reading entries %d to %d: %w", i, hi-1, err))
		}
		for _, en := range es {
			if en.Index != i {
				return copyMismatch(sourceDamagedHint, "entry %d is missing (the store returned entry %d next)", i, en.Index)
			}
			if err := fn(en); err != nil {
				return err
			}
			i++
		}
		if i < hi {
			return copyMismatch(sourceDamagedHint, "entries %d to %d are missing; a checkpoint of size %d covers them", i, hi-1, end)
		}
	}
	return nil
}

// checkEntry checks an entry's stored columns against its data.
func checkEntry(en store.Entry) error {
	if leaf := verify.LeafHash(en.Data); leaf != en.LeafHash {
		return fmt.Errorf("stored leaf hash %s, but its data hashes to %s", short(en.LeafHash), short(leaf))
	}
	ev, err := record.DecodeEntry(en.Data)
	if err != nil {
		return fmt.Errorf("not a canonical event: %v", err)
	}
	if id := ev.Identity(); id != en.Identity {
		return fmt.Errorf("stored identity %s, but the event's is %s", short(en.Identity), short(id))
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
		return fmt.Errorf("its note says size %d root %s, the stored row size %d root %s", cp.Size, b64Hash(cp.Root), c.Size, b64Hash(c.Root))
	}
	return nil
}

// checkEmpty refuses a destination that holds anything.
func checkEmpty(ctx context.Context, st store.Store, name string) error {
	const hint = "copy into a new, empty store (a new SQLite file, or an empty PostgreSQL database); copy never overwrites or merges logs"
	cp, err := st.Latest(ctx)
	switch {
	case err == nil:
		return usageError(hint, "the destination %s is not empty: it holds a log of %d entries", name, cp.Size)
	case !errors.Is(err, store.ErrNotFound):
		return ioError(fmt.Errorf("reading the destination's checkpoint: %w", err))
	}
	es, err := st.Entries(ctx, 0, 1)
	if err != nil {
		return ioError(fmt.Errorf("reading the destination's entries: %w", err))
	}
	if len(es) > 0 {
		return usageError(hint, "the destination %s is not empty: it holds entries", name)
	}
	return nil
}

// storeOpenErr explains a store that does not open.
func storeOpenErr(err error, flag, dsn string) error {
	var ce *cliError
	if errors.As(err, &ce) {
		return err
	}
	return usageErr(fmt.Errorf("opening %s %s: %w", flag, redactDSN(dsn), err), "pass sqlite:PATH, a path, or a PostgreSQL URL the store accepts")
}

// copyErr leaves cliErrors as they are and makes anything else exit 3.
func copyErr(err error, doing string) error {
	var ce *cliError
	if errors.As(err, &ce) {
		return err
	}
	return ioError(fmt.Errorf("%s: %w", doing, err))
}

// redactDSN hides a password in a URL DSN, for messages.
func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		return u.Redacted()
	}
	return dsn
}

func b64Hash(h [32]byte) string { return base64.StdEncoding.EncodeToString(h[:]) }

// copyProgress is a progress bar over entries, or nothing when stderr is
// not a terminal.
type copyProgress struct{ bar *progressbar.ProgressBar }

func (e *env) copyBar(what string, total uint64) copyProgress {
	if !isTerminal(e.stderr) || total == 0 {
		return copyProgress{}
	}
	return copyProgress{progressbar.NewOptions64(int64(total), progressbar.OptionSetWriter(e.stderr),
		progressbar.OptionSetDescription(what), progressbar.OptionShowCount(),
		progressbar.OptionShowIts(), progressbar.OptionSetItsString("entries"),
		progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())}
}

func (p copyProgress) set(n uint64) {
	if p.bar != nil {
		p.bar.Set64(int64(n))
	}
}

func (p copyProgress) finish() {
	if p.bar != nil {
		p.bar.Finish()
	}
}

// tileBuilder computes the c2sp.org/tlog-tiles hash tiles of a tree (of
// height 8) as leaf hashes are appended, exactly as the log writes them.
type tileBuilder struct {
	rng   *compact.Range
	edges map[uint8][]byte // the data of each level's rightmost, not yet full tile
	err   error
}

func newTileBuilder() *tileBuilder {
	rf := &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	return &tileBuilder{rng: rf.NewEmptyRange(0), edges: map[uint8][]byte{}}
}

// add appends leaves and returns every tile they changed, with its whole
// data as of the new size, in level then index order.
func (b *tileBuilder) add(leaves []store.Hash) ([]store.Tile, error) {
	changed := map[[2]uint64][]byte{}
	visit := func(id compact.NodeID, hash []byte) {
		if id.Level%verify.TileHeight != 0 || b.err != nil {
			return
		}
		level := uint8(id.Level / verify.TileHeight)
		d := b.edges[level]
		if uint64(len(d)/verify.HashSize) != id.Index%verify.TileWidth {
			b.err = fmt.Errorf("internal error: tile %d/%d: hash %d appended at width %d", level, id.Index/verify.TileWidth, id.Index%verify.TileWidth, len(d)/verify.HashSize)
			return
		}
		d = append(d, hash...)
		k := [2]uint64{uint64(level), id.Index / verify.TileWidth}
		changed[k] = d
		if len(d) == verify.TileWidth*verify.HashSize {
			b.edges[level] = nil
		} else {
			b.edges[level] = d
		}
	}
	for i := range leaves {
		if err := b.rng.Append(leaves[i][:], visit); err != nil {
			return nil, fmt.Errorf("internal error: %w", err)
		}
	}
	if b.err != nil {
		return nil, b.err
	}
	keys := make([][2]uint64, 0, len(changed))
	for k := range changed {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][0] != keys[j][0] {
			return keys[i][0] < keys[j][0]
		}
		return keys[i][1] < keys[j][1]
	})
	tiles := make([]store.Tile, len(keys))
	for i, k := range keys {
		tiles[i] = store.Tile{Level: uint8(k[0]), Index: k[1], Data: bytes.Clone(changed[k])}
	}
	return tiles, nil
}

// root is the tree's root hash.
func (b *tileBuilder) root() store.Hash {
	var out store.Hash
	r, err := b.rng.GetRootHash(nil)
	if err != nil || r == nil {
		r = rfc6962.DefaultHasher.EmptyRoot()
	}
	copy(out[:], r)
	return out
}
