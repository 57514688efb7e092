package cmd

import (
	"context"
	"errors"
	"io"
	"os"
	"time"

	"github.com/custodylog/custody/logcopy"
	logserver "github.com/custodylog/custody/server"
	"github.com/custodylog/custody/store"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

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
			return e.emit(asJSON, sum, "copied %d entries, %d checkpoints and %d tiles from %s to %s\n"+
				"verified: the destination's entries give every checkpoint's root, its tiles and %d checkpoint notes match; latest size %d, root %s\n",
				sum.Entries, sum.Checkpoints, sum.Tiles, sum.From, sum.To, sum.Checkpoints, sum.Size, sum.Root)
		},
	}
	c.Flags().StringVar(&from, "from", "", "the source store: sqlite:PATH, a path, or a PostgreSQL URL")
	c.Flags().StringVar(&to, "to", "", "the destination store, which must be empty")
	c.Flags().BoolVar(&asJSON, "json", false, "print the summary as JSON")
	return c
}

// runCopy copies the log in store from into the empty store to and proves
// the copy (logcopy.Copy).
func (e *env) runCopy(ctx context.Context, from, to string) (*logcopy.Summary, error) {
	if from == "" || to == "" {
		return nil, usageError("pass both stores, e.g. --from sqlite:mylog/custody.db --to postgres://…", "missing --from or --to")
	}
	if from == to {
		return nil, usageError("copy into another store", "--from and --to are the same store")
	}
	src, err := openSource(ctx, "--from", from)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	dst, err := logserver.OpenStore(to, "")
	if err != nil {
		return nil, storeOpenErr(err, "--to", to)
	}
	defer dst.Close()
	bar := e.progress("")
	sum, err := logcopy.Copy(ctx, src, dst, logcopy.Options{From: redactDSN(from), To: redactDSN(to),
		Progress: func(phase string, done, total uint64) {
			if phase != bar.what {
				bar.finish()
				bar = e.progress(phase)
			}
			bar.set(done, total)
		}})
	bar.finish()
	switch {
	case err == nil:
		return sum, nil
	case errors.Is(err, logcopy.ErrNoLog):
		return nil, usageError("pass a store made by 'custody init' (and 'custody serve')", "%v", err)
	case errors.Is(err, logcopy.ErrNotEmpty):
		return nil, usageError("copy into a new, empty store (a new SQLite file, or an empty PostgreSQL database); copy never overwrites or merges logs", "%v", err)
	case errors.Is(err, logcopy.ErrSourceDamaged):
		return nil, &cliError{err: err, code: exitInvalid, hint: "the source store is damaged or was tampered with: run 'custody fsck' on it; nothing was committed past the last good checkpoint, and the destination should be discarded"}
	case errors.Is(err, logcopy.ErrCopyDiffers):
		return nil, &cliError{err: err, code: exitInvalid, hint: "the copy differs from the source: discard the destination and copy again; if it happens again, check the destination's database"}
	case errors.Is(err, store.ErrConflict):
		return nil, withHint(err, "another process wrote to the destination during the copy: start again with an empty destination")
	}
	return nil, ioError(err)
}

// progress is a progress bar over entries on stderr (copy, prefill,
// audit, mirror, demo), made at the first set with a total, once it is
// known: nothing when stderr is not a terminal.
type progress struct {
	e    *env
	what string
	off  bool
	bar  *progressbar.ProgressBar
}

func (e *env) progress(what string) *progress {
	return &progress{e: e, what: what, off: !isTerminal(e.stderr)}
}

// set shows done of total entries (the libraries' Progress callbacks).
func (p *progress) set(done, total uint64) {
	if p.bar == nil && !p.off && total > 0 {
		p.bar = progressbar.NewOptions64(int64(total), progressbar.OptionSetWriter(p.e.stderr),
			progressbar.OptionSetDescription(p.what), progressbar.OptionShowCount(),
			progressbar.OptionShowIts(), progressbar.OptionSetItsString("entries"),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
	}
	if p.bar != nil {
		p.bar.Set64(int64(done))
	}
}

func (p *progress) finish() {
	if p.bar != nil {
		p.bar.Finish()
	}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
