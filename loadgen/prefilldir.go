package loadgen

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/custodylog/custody/internal/keyfile"
	"github.com/custodylog/custody/server"
)

// PrefillResult is what PrefillDir did: the log grew from size From to
// Size in Seconds.
type PrefillResult struct {
	From, Size uint64
	Seconds    float64
}

// PrefillDir is Prefill on the log in dir (made by `custody init`): it
// signs with dir's server.KeyFile, checks with its server.PubFile, holds
// the log as its writer (server.HoldLog: a SQLite log a server is serving
// is refused) and opens the store of dsn (server.OpenStore; "" is dir's
// server.DBFile). opts.Progress, if set, gets the number of events added
// so far. The keys' and the hold's errors are *server.Error of kinds
// KindSigner, KindVerifier and KindHold; a failed Prefill's error says the
// size the log is intact at.
func PrefillDir(ctx context.Context, dir, dsn string, n uint64, opts PrefillOptions) (PrefillResult, error) {
	signer, err := keyfile.LoadSigner(filepath.Join(dir, server.KeyFile))
	if err != nil {
		return PrefillResult{}, &server.Error{Kind: server.KindSigner, Err: err}
	}
	verifier, err := keyfile.LoadVerifier(filepath.Join(dir, server.PubFile))
	if err != nil {
		return PrefillResult{}, &server.Error{Kind: server.KindVerifier, Err: err}
	}
	release, err := server.HoldLog(ctx, dsn, dir)
	if err != nil {
		return PrefillResult{}, server.HoldError(err, dsn)
	}
	defer release()
	st, err := server.OpenStore(dsn, dir)
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
	cp, err := Prefill(ctx, st, signer, verifier, n, opts)
	if err != nil {
		return PrefillResult{}, fmt.Errorf("%w (the log is intact at size %d: every batch is one transaction)", err, cp.Size)
	}
	return PrefillResult{From: start.Size, Size: cp.Size, Seconds: time.Since(t0).Seconds()}, nil
}
