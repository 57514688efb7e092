package server

import (
	"context"
	"errors"

	"github.com/custodylog/custody/logcopy"
	"github.com/custodylog/custody/store"
)

// CopyLog copies the log in the store from into the empty store to and
// proves the copy (logcopy.Copy; the summary names the stores with their
// passwords hidden, RedactDSN). The source must hold a log
// (OpenSourceStore: nothing is created there); the destination is opened,
// or created, by OpenStore. progress, if set, is logcopy's Progress.
//
// Every error says what to do (Hint) and custody's exit code for it
// (ExitCode): logcopy's own (a source that fails its checks or a copy that
// differs: 2), another process writing the destination during the copy 1,
// and a mistake in from or to, or an I/O failure, 3.
func CopyLog(ctx context.Context, from, to string, progress func(phase string, done, total uint64)) (*logcopy.Summary, error) {
	if from == "" || to == "" {
		return nil, &fixError{errors.New("missing --from or --to"), "pass both stores, e.g. --from sqlite:mylog/custody.db --to postgres://…", 3}
	}
	if from == to {
		return nil, &fixError{errors.New("--from and --to are the same store"), "copy into another store", 3}
	}
	src, err := OpenSourceStore(ctx, "--from", from)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	dst, err := OpenStore(to, "")
	if err != nil {
		return nil, OpenStoreError(err, "--to", to)
	}
	defer dst.Close()
	sum, err := logcopy.Copy(ctx, src, dst, logcopy.Options{From: RedactDSN(from), To: RedactDSN(to), Progress: progress})
	var f fixer
	switch {
	case err == nil || errors.As(err, &f):
		return sum, err
	case errors.Is(err, store.ErrConflict):
		return nil, &fixError{err, "another process wrote to the destination during the copy: start again with an empty destination", 1}
	}
	return nil, &fixError{err: err, exit: 3}
}
