package cmd

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/verify"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

// mirrorOptions are the flags of custody mirror.
type mirrorOptions struct {
	trust       trustOptions
	log, dsn    string
	dir         string
	evidenceDir string
	asJSON      bool
}

// mirrorSummary is what custody mirror reports (--json prints it as is).
type mirrorSummary struct {
	Origin string `json:"origin"`
	Dir    string `json:"dir"`
	// OldSize is the size of the checkpoint DIR held before (0 if none).
	OldSize uint64 `json:"old_size"`
	// Size and Root are those of the checkpoint now in DIR.
	Size uint64 `json:"size"`
	Root string `json:"root"`
	// FilesWritten counts the tiles, bundles and checkpoint written;
	// BytesWritten their bytes.
	FilesWritten int   `json:"files_written"`
	BytesWritten int64 `json:"bytes_written"`
	// FilesKept counts full tiles and bundles that were already in DIR
	// with the verified content (left as they were).
	FilesKept int `json:"files_kept"`
	// FilesRemoved counts partial tiles and bundles removed because a full
	// one replaced them.
	FilesRemoved int `json:"files_removed"`
}

func (e *env) mirrorCmd() *cobra.Command {
	var o mirrorOptions
	c := &cobra.Command{
		Use:   "mirror (--log URL|DIR | --store DSN) --dir DIR --key VKEY [--trust POLICY] [--json]",
		Short: "Copy a log, verified, into a static tlog-tiles directory for any web server or CDN",
		Long: `mirror writes the c2sp.org/tlog-tiles layout of a log into DIR: the
signed checkpoint, the hash tiles (tile/<L>/<N>, partial ones
tile/<L>/<N>.p/<W>) and the entry bundles (tile/entries/<N>[.p/<W>]):
exactly what auditors and tlog-tiles clients fetch. Any static web server,
CDN or object store can serve DIR as the log's read API.

The source is a live log (--log URL), another such directory (--log DIR)
or the log's database (--store DSN). Nothing is written before it is
verified: the checkpoint against --key (and the witness quorum of --trust),
every hash tile and entry bundle against the checkpoint's root, and, if
DIR already holds a checkpoint, a consistency proof that the new one
extends it. A source whose checkpoint does not extend DIR's is a fork (or
a rollback): mirror refuses, writes nothing and exits 2.

Runs are incremental: only what is new since DIR's checkpoint is fetched.
Full tiles and bundles are written once and never rewritten; partial ones
are written for each new size. Every file is written to a temporary file,
synced and renamed into place, and the checkpoint is written last, once
everything it covers is durable, so a reader never sees a checkpoint whose
tiles are missing. Partial files replaced by full ones are then removed.
One mirror at a time may update DIR (it is locked while mirror runs).

Exit codes: 0 done, 2 the source failed verification (a fork, a bad tile
or signature), 3 usage, network or disk error.`,
		Example: `  custody mirror --log https://log.example.com --key log.pub --dir /srv/www/log
  custody mirror --store sqlite:mylog/custody.db --key mylog/log.pub --dir ./public
  custody mirror --log https://log.example.com --key log.pub --trust witnesses.policy --dir ./public --json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			sum, err := e.runMirror(c.Context(), &o)
			if err != nil {
				return err
			}
			if o.asJSON {
				printJSON(e.stdout, sum)
				return nil
			}
			if sum.OldSize == sum.Size && sum.FilesWritten == 0 {
				fmt.Fprintf(e.stdout, "mirror %s of %s is up to date: size %d, root %s\n", sum.Dir, sum.Origin, sum.Size, sum.Root)
				return nil
			}
			fmt.Fprintf(e.stdout, "mirrored %s to %s: size %d (was %d), root %s; %d files written (%d bytes), %d kept, %d removed\n",
				sum.Origin, sum.Dir, sum.Size, sum.OldSize, sum.Root, sum.FilesWritten, sum.BytesWritten, sum.FilesKept, sum.FilesRemoved)
			return nil
		},
	}
	o.trust.flags(c)
	c.Flags().StringVar(&o.log, "log", "", "the source: the log's base URL or a directory with the tlog-tiles layout")
	c.Flags().StringVar(&o.dsn, "store", "", "the source: the log's database (sqlite:PATH or a path), instead of --log")
	c.Flags().StringVar(&o.dir, "dir", "", "the mirror directory to create or update")
	c.Flags().StringVar(&o.evidenceDir, "evidence-dir", "", "where to write evidence if the source fails verification (default: none)")
	c.Flags().BoolVar(&o.asJSON, "json", false, "print the summary as JSON")
	return c
}

// runMirror verifies the source's checkpoint against DIR's and writes what
// is new into DIR.
func (e *env) runMirror(ctx context.Context, o *mirrorOptions) (*mirrorSummary, error) {
	if o.dir == "" {
		return nil, usageError("pass the directory to write, e.g. --dir ./public", "missing --dir")
	}
	if (o.log == "") == (o.dsn == "") {
		return nil, usageError("pass the source as --log URL|DIR (a served log or a mirror) or --store DSN (its database)", "pass exactly one of --log and --store")
	}
	var cl *verify.Client
	if o.log != "" {
		if abs, err := filepath.Abs(o.log); err == nil {
			if dir, err := filepath.Abs(o.dir); err == nil && abs == dir {
				return nil, usageError("mirror into another directory", "--log and --dir are the same directory %s", o.dir)
			}
		}
		var err error
		if cl, err = e.client(&o.trust, o.log); err != nil {
			return nil, err
		}
	} else {
		origin, vs, tp, err := o.trust.load()
		if err != nil {
			return nil, err
		}
		if err := mustExist(o.dsn); err != nil {
			return nil, err
		}
		st, err := openStore(o.dsn, logFiles{})
		if err != nil {
			var ce *cliError
			if errors.As(err, &ce) {
				return nil, err
			}
			return nil, usageErr(fmt.Errorf("opening --store %s: %w", redactDSN(o.dsn), err), "pass the log's database: sqlite:PATH, a path, or a PostgreSQL URL")
		}
		defer st.Close()
		cl = verify.NewClient(storeSource{st}, origin, vs, tp)
	}

	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return nil, usageErr(fmt.Errorf("creating the mirror directory: %w", err), "pass a --dir you may write to")
	}
	unlock, err := lockDir(o.dir)
	if err != nil {
		return nil, err
	}
	defer unlock()

	sum := &mirrorSummary{Origin: cl.Origin(), Dir: o.dir}
	cpPath := filepath.Join(o.dir, "checkpoint")
	var old *verify.Checkpoint
	oldNote, err := os.ReadFile(cpPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		oldNote = nil
	case err != nil:
		return nil, usageErr(fmt.Errorf("reading the mirror's checkpoint: %w", err), "make "+cpPath+" readable")
	default:
		c, err := cl.OpenCheckpoint(oldNote)
		if err != nil {
			return nil, usageErr(fmt.Errorf("%s is not a checkpoint of %s signed by --key: %w", cpPath, cl.Origin(), err),
				"a mirror directory holds one log: pass that log's key, or mirror this log into a new --dir")
		}
		old = &c
		sum.OldSize = c.Size
	}

	cp, note, err := cl.Checkpoint(ctx)
	if err != nil {
		return nil, e.checkErr(fmt.Errorf("refusing to update %s: %w", o.dir, err), o.evidenceDir)
	}
	sum.Size, sum.Root = cp.Size, base64.StdEncoding.EncodeToString(cp.Root[:])
	if old != nil {
		if _, err := cl.CheckExtends(ctx, *old, oldNote, cp); err != nil {
			return nil, e.mirrorExtendsErr(err, o, *old, cp)
		}
		if old.Size == cp.Size {
			// Same tree. A new note (more cosignatures) replaces the old one;
			// every tile of the tree is already in place.
			if !bytes.Equal(oldNote, note) {
				w := &mirrorWriter{root: o.dir, sum: sum}
				if err := w.writeCheckpoint(note); err != nil {
					return nil, err
				}
			}
			return sum, nil
		}
	}

	w := &mirrorWriter{root: o.dir, sum: sum, stderr: e.stderr}
	var bar *progressbar.ProgressBar
	start := verify.FullTiles(0, sum.OldSize) * verify.TileWidth
	if isTerminal(e.stderr) && cp.Size > start {
		bar = progressbar.NewOptions64(int64(cp.Size-start), progressbar.OptionSetWriter(e.stderr),
			progressbar.OptionSetDescription("mirroring entries"), progressbar.OptionShowCount(),
			progressbar.OptionShowIts(), progressbar.OptionSetItsString("entries"),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
		defer bar.Finish()
	}

	// Entry bundles and their level-0 tiles, bundle by bundle: the client
	// authenticates each bundle against its level-0 tile (and that tile up
	// to the root) before handing out its entries, and keeps the tile, so
	// TileHashes below reads nothing again.
	var bundle []byte
	n := 0
	if cp.Size > start {
		err = cl.Entries(ctx, start, cp.Size, cp, func(i uint64, entry []byte) error {
			var err error
			if bundle, err = verify.AppendBundleEntry(bundle, entry); err != nil {
				return fmt.Errorf("entry %d: %w", i, err)
			}
			n++
			if (i+1)%verify.TileWidth != 0 && i+1 != cp.Size {
				return nil
			}
			b := i / verify.TileWidth
			width := n % verify.TileWidth
			if err := w.write(verify.TileAddr{Entries: true, Index: b, Width: width}, bundle); err != nil {
				return err
			}
			hs, err := cl.TileHashes(ctx, 0, b, cp)
			if err != nil {
				return err
			}
			if err := w.write(verify.TileAddr{Level: 0, Index: b, Width: width}, joinTileHashes(hs)); err != nil {
				return err
			}
			if bar != nil {
				bar.Add(n)
			}
			bundle, n = bundle[:0], 0
			return nil
		})
		if err != nil {
			return nil, e.mirrorErr(err, o)
		}
	}
	// The hash tiles above level 0 that the new entries complete or change.
	for _, a := range verify.NewTiles(sum.OldSize, cp.Size) {
		if a.Level == 0 {
			continue
		}
		hs, err := cl.TileHashes(ctx, a.Level, a.Index, cp)
		if err != nil {
			return nil, e.mirrorErr(err, o)
		}
		if err := w.write(a, joinTileHashes(hs)); err != nil {
			return nil, e.mirrorErr(err, o)
		}
	}
	if err := w.syncDirs(); err != nil {
		return nil, e.mirrorErr(err, o)
	}
	if err := w.writeCheckpoint(note); err != nil {
		return nil, err
	}
	// Partial tiles whose full tile now exists are no longer needed: a
	// reader that still asks for one (with an older checkpoint) falls back
	// to the full tile. Only the old tree's partial tiles can be such.
	for _, a := range verify.PartialTiles(sum.OldSize) {
		if a.Index >= verify.FullTiles(a.Level, cp.Size) {
			continue
		}
		w.removePartials(a)
		if a.Level == 0 {
			a.Entries = true
			w.removePartials(a)
		}
	}
	return sum, nil
}

// mirrorExtendsErr explains a failed consistency check between DIR's
// checkpoint and the source's.
func (e *env) mirrorExtendsErr(err error, o *mirrorOptions, old, cp verify.Checkpoint) error {
	ve, ok := verify.IsVerificationError(err)
	if !ok {
		return e.mirrorErr(err, o)
	}
	var what, hint string
	switch ve.Evidence.Kind {
	case verify.EvidenceRollback:
		what = fmt.Sprintf("the source's checkpoint (size %d) is older than %s/checkpoint (size %d): the source is behind or was rolled back", cp.Size, o.dir, old.Size)
		hint = "mirror from the log itself or an up-to-date copy; if the log really went back, keep " + filepath.Join(o.dir, "checkpoint") + " as proof"
	case verify.EvidenceFork, verify.EvidenceInconsistent:
		what = fmt.Sprintf("the source's checkpoint (size %d) is not consistent with %s/checkpoint (size %d): this is a fork of the log", cp.Size, o.dir, old.Size)
		hint = "the log signed two histories that do not agree: keep " + filepath.Join(o.dir, "checkpoint") + " and the source's checkpoint as proof and report it; to mirror another log, use a new --dir"
	default:
		// A bad tile or signature met while proving consistency.
		return e.mirrorErr(err, o)
	}
	ce := e.checkErr(fmt.Errorf("refusing to update the mirror, nothing was written: %s: %w", what, err), o.evidenceDir)
	var c *cliError
	if errors.As(ce, &c) && c.code == exitInvalid {
		c.hint = hint
	}
	return ce
}

// mirrorErr turns a failure while mirroring into exit 2 (verification) or 3.
func (e *env) mirrorErr(err error, o *mirrorOptions) error {
	var ce *cliError
	if errors.As(err, &ce) {
		return err
	}
	return e.checkErr(fmt.Errorf("mirroring into %s (its checkpoint is unchanged): %w", o.dir, err), o.evidenceDir)
}

// joinTileHashes is the tile data of hashes hs.
func joinTileHashes(hs [][32]byte) []byte {
	out := make([]byte, 0, len(hs)*verify.HashSize)
	for i := range hs {
		out = append(out, hs[i][:]...)
	}
	return out
}

// mirrorWriter writes files into a mirror directory crash-safely.
type mirrorWriter struct {
	root   string
	sum    *mirrorSummary
	stderr io.Writer
	dirs   map[string]bool // directories with renamed files, to fsync
}

// write writes the tile or bundle at a. A full one that exists with the
// same content is left alone.
func (w *mirrorWriter) write(a verify.TileAddr, data []byte) error {
	p := filepath.Join(w.root, filepath.FromSlash(a.Path()))
	if a.Width == 0 {
		old, err := os.ReadFile(p)
		if err == nil && bytes.Equal(old, data) {
			w.sum.FilesKept++
			return nil
		}
		if err == nil && w.stderr != nil {
			fmt.Fprintf(w.stderr, "custody: warning: %s differed from the verified %s; replaced\n", p, a.Path())
		}
	}
	if err := w.writeFile(p, data); err != nil {
		return err
	}
	return nil
}

// writeFile writes data to a temporary file beside p, syncs it and renames
// it to p.
func (w *mirrorWriter) writeFile(p string, data []byte) error {
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(p)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	fail := func(err error) error {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", p, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fail(err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", p, err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", p, err)
	}
	if w.dirs == nil {
		w.dirs = map[string]bool{}
	}
	// The file's directory and every directory up to the root may be new.
	for d := dir; ; d = filepath.Dir(d) {
		w.dirs[d] = true
		if d == filepath.Clean(w.root) || d == filepath.Dir(d) {
			break
		}
	}
	w.sum.FilesWritten++
	w.sum.BytesWritten += int64(len(data))
	return nil
}

// syncDirs makes the renames done so far durable, deepest directories
// first.
func (w *mirrorWriter) syncDirs() error {
	dirs := make([]string, 0, len(w.dirs))
	for d := range w.dirs {
		dirs = append(dirs, d)
	}
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	for _, d := range dirs {
		if err := syncDir(d); err != nil {
			return err
		}
	}
	clear(w.dirs)
	return nil
}

func syncDir(d string) error {
	f, err := os.Open(d)
	if err != nil {
		return fmt.Errorf("syncing directory %s: %w", d, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("syncing directory %s: %w", d, err)
	}
	return nil
}

// writeCheckpoint writes DIR/checkpoint, durably; it must come after
// syncDirs.
func (w *mirrorWriter) writeCheckpoint(note []byte) error {
	if err := w.writeFile(filepath.Join(w.root, "checkpoint"), note); err != nil {
		return usageErr(err, "check that --dir is writable and has space; the mirror still holds its previous checkpoint")
	}
	if err := w.syncDirs(); err != nil {
		return usageErr(err, "check the disk holding --dir")
	}
	return nil
}

// removePartials removes every partial version (tile/…/<N>.p/*) of tile a,
// whose full tile exists. Failures are only warned about: the files are
// merely superfluous.
func (w *mirrorWriter) removePartials(a verify.TileAddr) {
	a.Width = 1
	d := filepath.Dir(filepath.Join(w.root, filepath.FromSlash(a.Path())))
	names, err := os.ReadDir(d)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err == nil {
		for _, n := range names {
			if !n.IsDir() {
				w.sum.FilesRemoved++
			}
		}
		err = os.RemoveAll(d)
	}
	if err != nil && w.stderr != nil {
		fmt.Fprintf(w.stderr, "custody: warning: removing superseded partial tiles %s: %v\n", d, err)
	}
}

// lockDir takes an exclusive advisory lock on directory dir, so that two
// mirror runs never write one directory at once. It is released when the
// returned function is called or the process exits.
func lockDir(dir string) (func(), error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, usageErr(fmt.Errorf("opening the mirror directory: %w", err), "pass a --dir you may write to")
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, usageError("wait for the other 'custody mirror' to finish; only one may update a directory", "%s is being updated by another mirror run", dir)
		}
		return nil, usageErr(fmt.Errorf("locking %s: %w", dir, err), "pass a --dir on a file system that supports locks")
	}
	return func() { f.Close() }, nil
}

// storeSource serves a store's log as a verify.Source, as 'custody serve'
// would: the latest checkpoint, hash tiles cut to the width asked for, and
// entry bundles assembled from entries. Nothing it returns is trusted: the
// verify.Client reading it authenticates everything.
type storeSource struct{ st store.Store }

func (s storeSource) ReadCheckpoint(ctx context.Context) ([]byte, error) {
	cp, err := s.st.Latest(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the store's latest checkpoint: %w", err)
	}
	return cp.Note, nil
}

func (s storeSource) ReadTile(ctx context.Context, a verify.TileAddr) ([]byte, error) {
	if err := a.Validate(); err != nil {
		return nil, fmt.Errorf("reading tile: %v", err)
	}
	w := a.Width
	if w == 0 {
		w = verify.TileWidth
	}
	if a.Entries {
		if a.Index > (math.MaxUint64-verify.TileWidth)/verify.TileWidth {
			return nil, fmt.Errorf("entry bundle %s: %w", a.Path(), verify.ErrTileNotFound)
		}
		start := a.Index * verify.TileWidth
		es, err := s.st.Entries(ctx, start, start+uint64(w))
		if err != nil {
			return nil, fmt.Errorf("entry bundle %s: %w", a.Path(), err)
		}
		if len(es) != w {
			return nil, fmt.Errorf("entry bundle %s: the store holds %d of its %d entries: %w", a.Path(), len(es), w, verify.ErrTileNotFound)
		}
		var b []byte
		for i, en := range es {
			if en.Index != start+uint64(i) {
				return nil, fmt.Errorf("entry bundle %s: the store returned entry %d where entry %d belongs", a.Path(), en.Index, start+uint64(i))
			}
			if b, err = verify.AppendBundleEntry(b, en.Data); err != nil {
				return nil, fmt.Errorf("entry %d: %w", en.Index, err)
			}
		}
		return b, nil
	}
	data, err := s.st.Tile(ctx, a.Level, a.Index)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("tile %s: %v: %w", a.Path(), err, verify.ErrTileNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("tile %s: %w", a.Path(), err)
	}
	if len(data) < w*verify.HashSize {
		return nil, fmt.Errorf("tile %s: the store holds %d of its %d hashes: %w", a.Path(), len(data)/verify.HashSize, w, verify.ErrTileNotFound)
	}
	return bytes.Clone(data[:w*verify.HashSize]), nil
}
