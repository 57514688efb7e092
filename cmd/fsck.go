package cmd

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"sort"
	"strings"

	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/store/postgres"
	"github.com/custodylog/custody/verify"
	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"
)

// fsckPage is how many entries fsck reads at a time.
const fsckPage = 4096

// Kinds of fsck problems.
const (
	fsckStore          = "store"           // the store refuses to open: the database is damaged
	fsckMissingEntry   = "missing-entry"   // a hole in the entry indexes
	fsckLeafHash       = "leaf-hash"       // leaf_hash column is not SHA-256(0x00 || data)
	fsckBadEntry       = "bad-entry"       // data is not a canonical event
	fsckIdentity       = "identity"        // identity column is not the event's identity
	fsckSample         = "sample"          // sample column is not the event's sample
	fsckSampleIndex    = "sample-index"    // the per-sample index misses the entry
	fsckTile           = "tile"            // a stored hash tile differs from the recomputed one
	fsckTileMissing    = "tile-missing"    // a hash tile the checkpoint needs is not stored
	fsckTileWidth      = "tile-width"      // a stored tile is narrower or wider than it may be
	fsckTileExtra      = "tile-extra"      // a stored tile no entry accounts for
	fsckCheckpoint     = "checkpoint"      // a checkpoint's root is not the entries' root
	fsckCheckpointNote = "checkpoint-note" // a checkpoint's note does not verify or disagrees with its row
	fsckCheckpointSize = "checkpoint-size" // a checkpoint is larger than the stored entries
	fsckRollback       = "rollback"        // a checkpoint seen elsewhere is larger than the stored entries
	fsckFork           = "fork"            // a checkpoint seen elsewhere has another root for its size
	fsckNoCheckpoint   = "checkpoint-none" // the store has no checkpoint at all
)

type fsckProblem struct {
	Kind   string `json:"kind"`
	Where  string `json:"where"`
	Detail string `json:"detail"`
}

type fsckReport struct {
	Entries     uint64        `json:"entries"`
	Tiles       uint64        `json:"tiles"`
	Checkpoints uint64        `json:"checkpoints"`
	Problems    []fsckProblem `json:"problems"`
}

func (r *fsckReport) add(kind, where, format string, args ...any) {
	r.Problems = append(r.Problems, fsckProblem{Kind: kind, Where: where, Detail: fmt.Sprintf(format, args...)})
}

func (e *env) fsckCmd() *cobra.Command {
	var dir, dsn string
	var asJSON bool
	var known []string
	c := &cobra.Command{
		Use:   "fsck --dir DIR [--store DSN] [--checkpoint FILE]... [--json]",
		Short: "Check a log's database against its own entries",
		Long: `fsck recomputes everything in a log's store from the stored entries and
reports every disagreement (it does not stop at the first):

  entries      leaf_hash = SHA-256(0x00 || data), data is a canonical event,
               identity and sample columns match the event, indexes contiguous
               from 0 up to the latest checkpoint;
  hash tiles   level 0 from the leaf hashes, higher levels from the full tiles
               below; each stored tile must equal the recomputed one;
  checkpoints  every stored note verifies with DIR/log.pub, matches its row,
               and its root is the root of the first SIZE entries;
  samples      the per-sample index lists every entry of the sample;
  --checkpoint signed checkpoints of this log kept elsewhere (by an auditor,
               a witness, a receipt): the stored entries must still give
               their roots. A database restored from an older copy, or
               rewritten, fails here (rollback, fork) even when it is
               consistent with itself.

--store names the log's database as 'custody serve --store' does: empty
for DIR/custody.db, sqlite:PATH (or a path), or a PostgreSQL URL with the
log's search_path. DIR is still needed, for DIR/log.pub.

It only reads, so it may run next to 'custody serve' on the same log (on
PostgreSQL, next to every server sharing it); it never creates a database
or schema. Each problem is printed as 'KIND LOCATION: detail'. The summary
line counts the entries, the stored hash tiles (each tile once, as 'custody
copy' counts them) and the stored checkpoints.
Exit status: 0 clean, 2 problems found, 3 usage or I/O error.`,
		Example: `  custody fsck --dir ./mylog
  custody fsck --dir ./mylog --json | jq '.problems[]'
  custody fsck --dir ./mylog --checkpoint last-audited-checkpoint.txt
  custody fsck --dir ./mylog --store 'postgres://custody@db.example.com/custody?sslmode=verify-full&search_path=mylog'`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if dir == "" {
				return usageError("pass the directory made by 'custody init', e.g. --dir ./mylog", "missing --dir")
			}
			return e.fsck(c.Context(), dir, dsn, known, asJSON)
		},
	}
	c.Flags().StringArrayVar(&known, "checkpoint", nil, "a signed checkpoint of this log seen before (repeatable)")
	c.Flags().StringVar(&dir, "dir", "", "log directory made by 'custody init'")
	c.Flags().StringVar(&dsn, "store", "", "database: empty for DIR/custody.db (SQLite), sqlite:PATH, or a PostgreSQL URL")
	c.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return c
}

func ioError(err error) error { return &cliError{err: err, code: exitUsageIO} }

func (e *env) fsck(ctx context.Context, dir, dsn string, knownFiles []string, asJSON bool) error {
	f := logFiles{dir}
	pg := isPostgres(dsn)
	path := f.db()
	if !pg {
		if dsn != "" {
			path = strings.TrimPrefix(dsn, "sqlite:")
		}
		if fi, err := os.Stat(path); err != nil {
			return ioError(err)
		} else if !fi.Mode().IsRegular() {
			return ioError(fmt.Errorf("%s is not a database file", path))
		}
	}
	verifier, err := loadVerifier(f.pub())
	if err != nil {
		return ioError(fmt.Errorf("%s: %w", f.pub(), err))
	}
	var known []verify.Checkpoint
	for _, kf := range knownFiles {
		b, err := os.ReadFile(kf)
		if err != nil {
			return ioError(err)
		}
		c, _, err := verify.OpenCheckpoint(b, verifier.Name(), note.VerifierList(verifier))
		if err != nil {
			return usageErr(fmt.Errorf("--checkpoint %s: %w", kf, err), "pass a checkpoint signed by this log's key (from /checkpoint, a receipt or an audit state)")
		}
		known = append(known, c)
	}
	if pg {
		// Opening a PostgreSQL store creates the schema where there is none:
		// fsck must not.
		if err := pgHoldsLog(ctx, dsn); err != nil {
			return err
		}
	}
	rep := &fsckReport{Problems: []fsckProblem{}}
	st, err := openStore(dsn, f)
	if err != nil {
		if strings.Contains(err.Error(), "damaged") {
			rep.add(fsckStore, "database", "%v", err)
			return e.fsckReport(rep, asJSON)
		}
		var ce *cliError
		if errors.As(err, &ce) {
			return err
		}
		return ioError(err)
	}
	defer st.Close()
	tiles, err := openFsckTiles(st, pg, path)
	if err != nil {
		return ioError(err)
	}
	defer tiles.Close()
	if err := fsckRun(ctx, st, tiles, verifier, known, rep); err != nil {
		return ioError(err)
	}
	return e.fsckReport(rep, asJSON)
}

func (e *env) fsckReport(rep *fsckReport, asJSON bool) error {
	if asJSON {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s\n", b)
	} else {
		fmt.Fprintf(e.stdout, "checked %d entries, %d tiles, %d checkpoints: %d problems\n", rep.Entries, rep.Tiles, rep.Checkpoints, len(rep.Problems))
		for _, p := range rep.Problems {
			fmt.Fprintf(e.stdout, "%s %s: %s\n", p.Kind, p.Where, p.Detail)
		}
	}
	if len(rep.Problems) > 0 {
		return &cliError{err: fmt.Errorf("fsck found %d problems", len(rep.Problems)), code: exitInvalid}
	}
	return nil
}

func short(h [32]byte) string { return hex.EncodeToString(h[:]) }

// tileWidthAt is the width of tile (level, index) in a tree of size entries.
func tileWidthAt(level uint8, index, size uint64) int {
	n := uint64(0)
	if shift := uint(level) * 8; shift < 64 {
		n = size >> shift
	}
	lo := index * 256
	if n <= lo {
		return 0
	}
	return int(min(n-lo, 256))
}

func tileWhere(level uint8, index uint64) string {
	return verify.TileAddr{Level: level, Index: index}.Path()
}

// subtreeRoot is the root of a perfect tree of 256 hashes.
func subtreeRoot(hs [][32]byte) [32]byte {
	cur := append([][32]byte(nil), hs...)
	for len(cur) > 1 {
		next := cur[:0]
		for i := 0; i+1 < len(cur); i += 2 {
			next = append(next, verify.NodeHash(cur[i], cur[i+1]))
		}
		cur = next
	}
	return cur[0]
}

type fsckState struct {
	ctx    context.Context
	st     store.Store
	rep    *fsckReport
	levels [][][32]byte // recomputed hashes of the current (rightmost) tile of each level
	index  []uint64     // index of that tile per level
	latest uint64       // size of the latest checkpoint at the start
	final  uint64       // largest size tiles may account for: unbounded while streaming, then entries or latest at the end
}

func (s *fsckState) push(level int, h [32]byte) error {
	for len(s.levels) <= level {
		s.levels = append(s.levels, nil)
		s.index = append(s.index, 0)
	}
	s.levels[level] = append(s.levels[level], h)
	if len(s.levels[level]) < 256 {
		return nil
	}
	if err := s.checkTile(uint8(level), s.index[level], s.levels[level]); err != nil {
		return err
	}
	root := subtreeRoot(s.levels[level])
	s.levels[level] = s.levels[level][:0]
	s.index[level]++
	return s.push(level+1, root)
}

// checkTile compares stored tile (level, index) with the recomputed hashes.
func (s *fsckState) checkTile(level uint8, index uint64, want [][32]byte) error {
	where := tileWhere(level, index)
	data, err := s.st.Tile(s.ctx, level, index)
	minW := tileWidthAt(level, index, s.latest)
	if errors.Is(err, store.ErrNotFound) {
		if minW > 0 {
			s.rep.add(fsckTileMissing, where, "not stored, but the latest checkpoint (size %d) needs %d hashes of it", s.latest, minW)
		}
		return nil
	}
	if err != nil {
		return err
	}
	s.rep.Tiles++
	if len(data)%32 != 0 {
		s.rep.add(fsckTileWidth, where, "stored data is %d bytes, not a multiple of 32", len(data))
		return nil
	}
	w := len(data) / 32
	maxW := tileWidthAt(level, index, s.final)
	if w < minW {
		s.rep.add(fsckTileWidth, where, "stored width %d, but the latest checkpoint (size %d) needs %d", w, s.latest, minW)
	}
	if w > maxW {
		s.rep.add(fsckTileWidth, where, "stored width %d, but the %d entries give only %d", w, s.final, maxW)
	}
	var bad []int
	for i := 0; i < min(w, len(want)); i++ {
		if !bytes.Equal(data[i*32:(i+1)*32], want[i][:]) {
			bad = append(bad, i)
		}
	}
	switch {
	case len(bad) == 1:
		s.rep.add(fsckTile, where, "hash %d differs: stored %x, computed %s", bad[0], data[bad[0]*32:bad[0]*32+32], short(want[bad[0]]))
	case len(bad) > 1:
		s.rep.add(fsckTile, where, "hash %d differs (and %d more: %s)", bad[0], len(bad)-1, intList(bad[1:], 8))
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

func fsckRun(ctx context.Context, st store.Store, tiles fsckTiles, verifier note.Verifier, known []verify.Checkpoint, rep *fsckReport) error {
	// Checkpoints seen elsewhere, by size: the entries must give their roots.
	seen := map[uint64][][32]byte{}
	for _, c := range known {
		seen[c.Size] = append(seen[c.Size], c.Root)
	}
	checkSeen := func(size uint64, root [32]byte) {
		for _, r := range seen[size] {
			if r != root {
				rep.add(fsckFork, fmt.Sprintf("checkpoint %d", size), "a checkpoint of size %d signed by the log has root %s, but the stored entries give %s", size, short(r), short(root))
			}
		}
		delete(seen, size)
	}
	latest, err := st.Latest(ctx)
	switch {
	case errors.Is(err, store.ErrNotFound):
		rep.add(fsckNoCheckpoint, "checkpoints", "the store has no checkpoint")
	case err != nil:
		return err
	}
	sizes, err := checkpointSizes(ctx, st)
	if err != nil {
		return err
	}
	s := &fsckState{ctx: ctx, st: st, rep: rep, latest: latest.Size, final: math.MaxUint64}
	verifiers := note.VerifierList(verifier)
	origin := verifier.Name()
	tb := verify.NewTreeBuilder()
	next := 0 // next checkpoint in sizes to compare
	checkCP := func(size uint64, root [32]byte) error {
		rep.Checkpoints++
		where := fmt.Sprintf("checkpoint %d", size)
		cp, err := st.Checkpoint(ctx, size)
		if err != nil {
			rep.add(fsckCheckpointNote, where, "unreadable row: %v", err)
			return nil
		}
		c, _, err := verify.OpenCheckpoint(cp.Note, origin, verifiers)
		if err != nil {
			rep.add(fsckCheckpointNote, where, "note does not verify with the log key: %v", err)
		} else {
			if c.Size != cp.Size {
				rep.add(fsckCheckpointNote, where, "signed note is for size %d", c.Size)
			}
			if c.Root != cp.Root {
				rep.add(fsckCheckpointNote, where, "signed note has root %s but the row %s", short(c.Root), short(cp.Root))
			}
		}
		if cp.Root != root {
			rep.add(fsckCheckpoint, where, "root %s but entries give %s", short(cp.Root), short(root))
		} else if err == nil && c.Root != root {
			rep.add(fsckCheckpoint, where, "signed root %s but entries give %s", short(c.Root), short(root))
		}
		return nil
	}
	checkSeen(0, tb.Root())
	for next < len(sizes) && sizes[next] == 0 {
		if err := checkCP(0, tb.Root()); err != nil {
			return err
		}
		next++
	}

	var n uint64 // entries seen (the next expected index)
	for {
		page, err := st.Entries(ctx, n, n+fsckPage)
		if err != nil {
			return err
		}
		samples := map[string]map[uint64]bool{}
		for _, en := range page {
			if en.Index != n {
				if en.Index < n {
					return fmt.Errorf("store returned entry %d after entry %d", en.Index, n-1)
				}
				rep.add(fsckMissingEntry, fmt.Sprintf("entry %d", n), "entries %d to %d are missing", n, en.Index-1)
				// The tree cannot be recomputed past a hole.
				rep.Entries = n
				return fsckFinish(s, tiles, sizes[next:], n)
			}
			where := fmt.Sprintf("entry %d", n)
			leaf := verify.LeafHash(en.Data)
			if leaf != en.LeafHash {
				rep.add(fsckLeafHash, where, "stored %s, computed %s", short(en.LeafHash), short(leaf))
			}
			if ev, err := record.DecodeEntry(en.Data); err != nil {
				rep.add(fsckBadEntry, where, "%v", err)
			} else {
				if id := ev.Identity(); id != en.Identity {
					rep.add(fsckIdentity, where, "stored %s, computed %s", short(en.Identity), short(id))
				}
				if ev.Sample != en.Sample {
					rep.add(fsckSample, where, "stored %q, event has %q", en.Sample, ev.Sample)
				}
				idx, ok := samples[ev.Sample]
				if !ok {
					list, err := st.Sample(ctx, ev.Sample)
					if err != nil {
						return err
					}
					idx = make(map[uint64]bool)
					// Only this page's indexes matter.
					lo := sort.Search(len(list), func(i int) bool { return list[i] >= page[0].Index })
					for _, x := range list[lo:] {
						if x > page[len(page)-1].Index {
							break
						}
						idx[x] = true
					}
					samples[ev.Sample] = idx
				}
				if !idx[n] {
					rep.add(fsckSampleIndex, where, "not listed for sample %q", ev.Sample)
				}
			}
			tb.AppendLeafHash(leaf)
			if err := s.push(0, leaf); err != nil {
				return err
			}
			n++
			if len(seen) > 0 {
				checkSeen(n, tb.Root())
			}
			for next < len(sizes) && sizes[next] == n {
				if err := checkCP(n, tb.Root()); err != nil {
					return err
				}
				next++
			}
		}
		if len(page) < fsckPage {
			break
		}
	}
	rep.Entries = n
	for size := range seen {
		rep.add(fsckRollback, fmt.Sprintf("checkpoint %d", size), "the log signed a checkpoint of size %d, but only %d entries are stored: the database was rolled back or truncated", size, n)
	}
	return fsckFinish(s, tiles, sizes[next:], n)
}

// fsckFinish checks the partial tiles, the checkpoints beyond the entries
// and the tiles no entry accounts for.
func fsckFinish(s *fsckState, tiles fsckTiles, rest []uint64, n uint64) error {
	rep := s.rep
	if n < s.latest {
		rep.add(fsckMissingEntry, fmt.Sprintf("entry %d", n), "the latest checkpoint has size %d but only %d entries are stored", s.latest, n)
	}
	for _, size := range rest {
		rep.Checkpoints++
		rep.add(fsckCheckpointSize, fmt.Sprintf("checkpoint %d", size), "beyond the %d stored entries", n)
	}
	s.final = n
	if l, err := s.st.Latest(s.ctx); err == nil && l.Size > s.final {
		s.final = l.Size // the log grew while fsck ran
	}
	for level := range s.levels {
		if len(s.levels[level]) > 0 {
			if err := s.checkTile(uint8(level), s.index[level], s.levels[level]); err != nil {
				return err
			}
		}
	}
	return tiles.eachTile(s.ctx, func(level, idx, length int64) error {
		if level < 0 || level > 255 || idx < 0 {
			rep.add(fsckTileExtra, fmt.Sprintf("tile/%d/%d", level, idx), "invalid tile address")
			return nil
		}
		if tileWidthAt(uint8(level), uint64(idx), s.final) == 0 {
			rep.Tiles++
			rep.add(fsckTileExtra, tileWhere(uint8(level), uint64(idx)), "stored (%d hashes) but the %d entries need no such tile", length/32, s.final)
		}
		return nil
	})
}

// checkpointSizes lists the sizes of the stored checkpoints, smallest first.
func checkpointSizes(ctx context.Context, st store.Store) ([]uint64, error) {
	var out []uint64
	err := eachCheckpoint(ctx, st, math64, func(c store.Checkpoint) error {
		out = append(out, c.Size)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing checkpoints: %w", err)
	}
	return out, nil
}

// fsckTiles lists every stored hash tile straight from the database, read
// only: fsck needs the tiles no entry accounts for (tile-extra), which the
// store.Store interface cannot enumerate. There is one implementation per
// backend.
type fsckTiles interface {
	// eachTile calls fn with the level, index and data length (bytes) of
	// every stored tile, as stored, in level then index order.
	eachTile(ctx context.Context, fn func(level, idx, length int64) error) error
	Close() error
}

// openFsckTiles returns the tile lister for st: a PostgreSQL store if pg,
// else a SQLite store in the file path.
func openFsckTiles(st store.Store, pg bool, path string) (fsckTiles, error) {
	if pg {
		p, ok := st.(*postgres.Store)
		if !ok {
			return nil, fmt.Errorf("internal error: a PostgreSQL DSN opened a %T store, and fsck cannot list its tiles", st)
		}
		return postgresTiles{p}, nil
	}
	ro, err := sql.Open("sqlite3", "file:"+(&url.URL{Path: path}).EscapedPath()+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		return nil, fmt.Errorf("opening %s read-only: %w", path, err)
	}
	return sqliteTiles{ro}, nil
}

// sqliteTiles lists the tiles of a SQLite store through a read-only
// connection of its own.
type sqliteTiles struct{ ro *sql.DB }

func (t sqliteTiles) eachTile(ctx context.Context, fn func(level, idx, length int64) error) error {
	rows, err := t.ro.QueryContext(ctx, "SELECT level, idx, length(data) FROM tiles ORDER BY level, idx")
	if err != nil {
		return fmt.Errorf("listing tiles: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var level, idx, length int64
		if err := rows.Scan(&level, &idx, &length); err != nil {
			return fmt.Errorf("listing tiles: %w", err)
		}
		if err := fn(level, idx, length); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("listing tiles: %w", err)
	}
	return nil
}

func (t sqliteTiles) Close() error { return t.ro.Close() }

// postgresTiles lists the tiles of a PostgreSQL store in a read-only
// transaction on the store's own connections.
type postgresTiles struct{ st *postgres.Store }

func (t postgresTiles) eachTile(ctx context.Context, fn func(level, idx, length int64) error) error {
	return t.st.TileSizes(ctx, func(ts postgres.TileSize) error { return fn(ts.Level, ts.Index, ts.Length) })
}

func (postgresTiles) Close() error { return nil } // the store owns the connections
