package cmd

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	tlmirror "github.com/custodylog/custody/mirror"
	logserver "github.com/custodylog/custody/server"
	"github.com/custodylog/custody/verify"
	"github.com/spf13/cobra"
)

type mirrorOptions struct {
	trust       trustOptions
	log, dsn    string
	dir         string
	evidenceDir string
	asJSON      bool
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
			if sum.OldSize == sum.Size && sum.FilesWritten == 0 {
				return e.emit(o.asJSON, sum, "mirror %s of %s is up to date: size %d, root %s\n", sum.Dir, sum.Origin, sum.Size, sum.Root)
			}
			return e.emit(o.asJSON, sum, "mirrored %s to %s: size %d (was %d), root %s; %d files written (%d bytes), %d kept, %d removed\n",
				sum.Origin, sum.Dir, sum.Size, sum.OldSize, sum.Root, sum.FilesWritten, sum.BytesWritten, sum.FilesKept, sum.FilesRemoved)
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

// runMirror opens the source and updates DIR from it (tlmirror.Update).
func (e *env) runMirror(ctx context.Context, o *mirrorOptions) (*tlmirror.Summary, error) {
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
		st, err := logserver.OpenSourceStore(ctx, "--store", o.dsn)
		if err != nil {
			return nil, err
		}
		defer st.Close()
		cl = verify.NewClient(tlmirror.StoreSource(st), origin, vs, tp)
	}
	bar := e.progress("mirroring entries")
	defer bar.finish()
	sum, err := tlmirror.Update(ctx, cl, o.dir, tlmirror.Options{Progress: bar.set,
		Warn: func(msg string) { fmt.Fprintf(e.stderr, "custody: warning: %s\n", msg) }})
	if err == nil {
		return sum, nil
	}
	ce := e.checkErr(err, o.evidenceDir)
	var c *cliError
	if hint := tlmirror.RefusalHint(err, o.dir); hint != "" && errors.As(ce, &c) && c.code == exitInvalid {
		c.hint = hint
	}
	return nil, ce
}
