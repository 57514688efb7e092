// Package mirror keeps a static c2sp.org/tlog-tiles directory of a log up
// to date: the signed checkpoint, the hash tiles (tile/<L>/<N>, partial
// ones tile/<L>/<N>.p/<W>) and the entry bundles (tile/entries/<N>[.p/<W>]),
// exactly what auditors and tlog-tiles clients fetch, for any static web
// server, CDN or object store to serve.
//
// Nothing is written before it is verified: Update reads the source
// through a verify.Client, which authenticates the checkpoint (log key and
// witness policy), every hash tile and every entry bundle against it, and
// proves that the new checkpoint extends the one the directory holds. A
// source that does not extend it (a fork or a rollback) is refused and
// nothing is written.
//
// Runs are incremental and crash-safe: full tiles and bundles are written
// once; every file is written to a temporary file, synced and renamed into
// place; the checkpoint is written last, once everything it covers is
// durable, so a reader never sees a checkpoint whose tiles are missing.
package mirror

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"

	"github.com/custodylog/custody/verify"
)

// Summary is what Update did. Its JSON form is what custody mirror --json
// prints.
type Summary struct {
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

// Options tune Update.
type Options struct {
	// Progress, if set, is called as entries are mirrored with the number
	// mirrored so far and the number to mirror.
	Progress func(done, total uint64)
	// Warn, if set, is told of things that did not stop the update: a full
	// file in DIR that differed from the verified one (it is replaced), a
	// superseded partial file that could not be removed.
	Warn func(msg string)
}

// DirOp says what Update was doing with the directory when it failed.
type DirOp string

// Operations of a DirError.
const (
	OpCreate          DirOp = "create"           // creating DIR
	OpLock            DirOp = "lock"             // opening or locking DIR
	OpReadCheckpoint  DirOp = "read-checkpoint"  // reading DIR/checkpoint
	OpOtherLog        DirOp = "other-log"        // DIR/checkpoint is not this log's
	OpWriteCheckpoint DirOp = "write-checkpoint" // writing DIR/checkpoint
	OpSync            DirOp = "sync"             // making DIR/checkpoint durable
)

// DirError is a failure of the mirror directory Dir itself (not of the
// source): the directory holds what it held before.
type DirError struct {
	Op  DirOp
	Dir string
	Err error
}

func (e *DirError) Error() string { return e.Err.Error() }
func (e *DirError) Unwrap() error { return e.Err }

// Hint says what to do about the error, in the words of custody mirror's
// flags.
func (e *DirError) Hint() string {
	if errors.Is(e.Err, ErrLocked) {
		return "wait for the other 'custody mirror' to finish; only one may update a directory"
	}
	return map[DirOp]string{
		OpCreate:          "pass a --dir you may write to",
		OpLock:            "pass a --dir on a file system that supports locks",
		OpReadCheckpoint:  "make " + filepath.Join(e.Dir, "checkpoint") + " readable",
		OpOtherLog:        "a mirror directory holds one log: pass that log's key, or mirror this log into a new --dir",
		OpWriteCheckpoint: "check that --dir is writable and has space; the mirror still holds its previous checkpoint",
		OpSync:            "check the disk holding --dir",
	}[e.Op]
}

// ExitCode is custody's exit code for the error: 3, a disk or usage error.
func (e *DirError) ExitCode() int { return 3 }

// ErrLocked is returned (wrapped in a *DirError) when another Update holds
// the directory.
var ErrLocked = errors.New("the mirror directory is being updated by another mirror run")

// ErrRefused is wrapped by the error of Update when the source's checkpoint
// does not extend the directory's (the error also wraps the
// *verify.VerificationError with the evidence).
var ErrRefused = errors.New("refusing to update the mirror, nothing was written")

// Update verifies the checkpoint of the log cl reads against the one in
// dir (created if missing) and writes everything new into dir. Only one
// Update may run on a directory at a time (it takes an advisory lock).
// Errors: a *DirError for the directory, an error wrapping ErrRefused (and a
// *verify.VerificationError) for a fork or rollback, an error wrapping a
// *verify.VerificationError for any other source that fails verification,
// and others for network or disk failures. On any error DIR's checkpoint
// is unchanged.
func Update(ctx context.Context, cl *verify.Client, dir string, opts Options) (*Summary, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, &DirError{OpCreate, dir, fmt.Errorf("creating the mirror directory: %w", err)}
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()

	sum := &Summary{Origin: cl.Origin(), Dir: dir}
	w := &writer{root: dir, sum: sum, warn: opts.Warn}
	cpPath := filepath.Join(dir, "checkpoint")
	var old *verify.Checkpoint
	oldNote, err := os.ReadFile(cpPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		oldNote = nil
	case err != nil:
		return nil, &DirError{OpReadCheckpoint, dir, fmt.Errorf("reading the mirror's checkpoint: %w", err)}
	default:
		c, err := cl.OpenCheckpoint(oldNote)
		if err != nil {
			return nil, &DirError{OpOtherLog, dir, fmt.Errorf("%s is not a checkpoint of %s signed by the log's key: %w", cpPath, cl.Origin(), err)}
		}
		old = &c
		sum.OldSize = c.Size
	}

	cp, note, err := cl.Checkpoint(ctx)
	if err != nil {
		return nil, fmt.Errorf("refusing to update %s: %w", dir, err)
	}
	sum.Size, sum.Root = cp.Size, base64.StdEncoding.EncodeToString(cp.Root[:])
	if old != nil {
		if _, err := cl.CheckExtends(ctx, *old, oldNote, cp); err != nil {
			return nil, extendsErr(err, dir, *old, cp)
		}
		if old.Size == cp.Size {
			// Same tree. A new note (more cosignatures) replaces the old one;
			// every tile of the tree is already in place.
			if !bytes.Equal(oldNote, note) {
				if err := w.writeCheckpoint(note); err != nil {
					return nil, err
				}
			}
			return sum, nil
		}
	}
	if err := mirrorTiles(ctx, cl, w, sum.OldSize, cp, opts.Progress); err != nil {
		return nil, fmt.Errorf("mirroring into %s (its checkpoint is unchanged): %w", dir, err)
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

// mirrorTiles writes the entry bundles and hash tiles of the tree of cp
// that the tree of size oldSize did not have, and syncs them.
func mirrorTiles(ctx context.Context, cl *verify.Client, w *writer, oldSize uint64, cp verify.Checkpoint, progress func(done, total uint64)) error {
	start := verify.FullTiles(0, oldSize) * verify.TileWidth
	// Entry bundles and their level-0 tiles, bundle by bundle: the client
	// authenticates each bundle against its level-0 tile (and that tile up
	// to the root) before handing out its entries, and keeps the tile, so
	// TileHashes below reads nothing again.
	var bundle []byte
	n := 0
	if cp.Size > start {
		err := cl.Entries(ctx, start, cp.Size, cp, func(i uint64, entry []byte) error {
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
			if err := w.write(verify.TileAddr{Level: 0, Index: b, Width: width}, joinHashes(hs)); err != nil {
				return err
			}
			if progress != nil {
				progress(i+1-start, cp.Size-start)
			}
			bundle, n = bundle[:0], 0
			return nil
		})
		if err != nil {
			return err
		}
	}
	// The hash tiles above level 0 that the new entries complete or change.
	for _, a := range verify.NewTiles(oldSize, cp.Size) {
		if a.Level == 0 {
			continue
		}
		hs, err := cl.TileHashes(ctx, a.Level, a.Index, cp)
		if err != nil {
			return err
		}
		if err := w.write(a, joinHashes(hs)); err != nil {
			return err
		}
	}
	return w.syncDirs()
}

// extendsErr explains a failed consistency check between DIR's checkpoint
// and the source's.
func extendsErr(err error, dir string, old, cp verify.Checkpoint) error {
	ve, ok := verify.IsVerificationError(err)
	if !ok {
		return fmt.Errorf("mirroring into %s (its checkpoint is unchanged): %w", dir, err)
	}
	var what string
	switch ve.Evidence.Kind {
	case verify.EvidenceRollback:
		what = fmt.Sprintf("the source's checkpoint (size %d) is older than %s/checkpoint (size %d): the source is behind or was rolled back", cp.Size, dir, old.Size)
	case verify.EvidenceFork, verify.EvidenceInconsistent:
		what = fmt.Sprintf("the source's checkpoint (size %d) is not consistent with %s/checkpoint (size %d): this is a fork of the log", cp.Size, dir, old.Size)
	default:
		// A bad tile or signature met while proving consistency.
		return fmt.Errorf("mirroring into %s (its checkpoint is unchanged): %w", dir, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrRefused, what, err)
}

// joinHashes is the tile data of hashes hs.
func joinHashes[H ~[32]byte](hs []H) []byte {
	out := make([]byte, 0, len(hs)*verify.HashSize)
	for i := range hs {
		out = append(out, hs[i][:]...)
	}
	return out
}

// writer writes files into a mirror directory crash-safely.
type writer struct {
	root string
	sum  *Summary
	warn func(string)
	dirs map[string]bool // directories with renamed files, to fsync
}

func (w *writer) warnf(format string, args ...any) {
	if w.warn != nil {
		w.warn(fmt.Sprintf(format, args...))
	}
}

// write writes the tile or bundle at a. A full one that exists with the
// same content is left alone.
func (w *writer) write(a verify.TileAddr, data []byte) error {
	p := filepath.Join(w.root, filepath.FromSlash(a.Path()))
	if a.Width == 0 {
		old, err := os.ReadFile(p)
		if err == nil && bytes.Equal(old, data) {
			w.sum.FilesKept++
			return nil
		}
		if err == nil {
			w.warnf("%s differed from the verified %s; replaced", p, a.Path())
		}
	}
	return w.writeFile(p, data)
}

// writeFile writes data to a temporary file beside p, syncs it and renames
// it to p.
func (w *writer) writeFile(p string, data []byte) error {
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
func (w *writer) syncDirs() error {
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
func (w *writer) writeCheckpoint(note []byte) error {
	if err := w.writeFile(filepath.Join(w.root, "checkpoint"), note); err != nil {
		return &DirError{OpWriteCheckpoint, w.root, err}
	}
	if err := w.syncDirs(); err != nil {
		return &DirError{OpSync, w.root, err}
	}
	return nil
}

// removePartials removes every partial version (tile/…/<N>.p/*) of tile a,
// whose full tile exists. Failures are only warned about: the files are
// merely superfluous.
func (w *writer) removePartials(a verify.TileAddr) {
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
	if err != nil {
		w.warnf("removing superseded partial tiles %s: %v", d, err)
	}
}

// lockDir takes an exclusive advisory lock on directory dir, so that two
// mirror runs never write one directory at once. It is released when the
// returned function is called or the process exits.
func lockDir(dir string) (func(), error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, &DirError{OpLock, dir, fmt.Errorf("opening the mirror directory: %w", err)}
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &DirError{OpLock, dir, fmt.Errorf("%s is being updated by another mirror run: %w", dir, ErrLocked)}
		}
		return nil, &DirError{OpLock, dir, fmt.Errorf("locking %s: %w", dir, err)}
	}
	return func() { f.Close() }, nil
}
