package server

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/custodylog/custody/internal/keyfile"
	"github.com/custodylog/custody/loadgen"
)

// (Prefill is here, not in loadgen, so that loadgen imports no server:
// the packages server uses, fsck and logcopy, test with loadgen.)

// PrefillResult is what Prefill did: the log grew from size From to
// Size in Seconds.
type PrefillResult struct {
	From, Size uint64
	Seconds    float64
}

// Prefill is loadgen.Prefill on the log in dir (made by `custody init`): it
// signs with dir's KeyFile, checks with its PubFile, holds
// the log as its writer (HoldLog: a SQLite log a server is serving
// is refused) and opens the store of dsn (OpenStore; "" is dir's
// DBFile). opts.Progress, if set, gets the number of events added
// so far. The keys' and the hold's errors are *Error of kinds
// KindSigner, KindVerifier and KindHold; a failed Prefill's error says the
// size the log is intact at.
func Prefill(ctx context.Context, dir, dsn string, n uint64, opts loadgen.PrefillOptions) (PrefillResult, error) {
	signer, err := keyfile.LoadSigner(filepath.Join(dir, KeyFile))
	if err != nil {
		return PrefillResult{}, &Error{Kind: KindSigner, Err: err}
	}
	verifier, err := keyfile.LoadVerifier(filepath.Join(dir, PubFile))
	if err != nil {
		return PrefillResult{}, &Error{Kind: KindVerifier, Err: err}
	}
	release, err := HoldLog(ctx, dsn, dir)
	if err != nil {
		return PrefillResult{}, HoldError(err, dsn)
	}
	defer release()
	st, err := OpenStore(dsn, dir)
	if err != nil {
		return PrefillResult{}, err
	}
	defer st.Close()
	start, err := st.Latest(ctx)
	if err != nil {
		return PrefillResult{}, fmt.Errorf("reading the latest checkpoint: %w", err)
	}
	if progress := opts.Progress; progress != nil {
		opts.Progress = func(size uint64) { progress(size - start.Size) }
	}
	t0 := time.Now()
	cp, err := loadgen.Prefill(ctx, st, signer, verifier, n, opts)
	if err != nil {
		return PrefillResult{}, fmt.Errorf("%w (the log is intact at size %d: every batch is one transaction)", err, cp.Size)
	}
	return PrefillResult{From: start.Size, Size: cp.Size, Seconds: time.Since(t0).Seconds()}, nil
}
