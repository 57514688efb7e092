package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/custodylog/custody/internal/keyfile"
	"github.com/custodylog/custody/log"
	"github.com/custodylog/custody/store"
)

// Init creates a new log in dir: its signing key pair (KeyFile, mode 0600,
// and PubFile, named origin) and, in the store of dsn (OpenStore; "" is
// dir's DBFile), the signed size-0 checkpoint. It returns the verifier
// key. Nothing is overwritten: a KeyFile, PubFile or DBFile already in dir
// (or a symbolic link in its place) is an *Error of kind KindExists
// (KindLink), and a PostgreSQL store that holds a log, of kind
// KindStoreUsed, both found before anything is written. A store that does
// not open is an *Error of kind KindOpenStore; a bad origin is
// keyfile.WriteLog's error, or (a name the note package refuses only when
// signing) an *Error of kind KindSigner.
func Init(ctx context.Context, dir, origin, dsn string) (vkey string, err error) {
	return InitWith(ctx, dir, origin, dsn, InitOptions{})
}

// InitOptions choose what a new log made by InitWith keeps.
type InitOptions struct {
	// SampleIndex: the log keeps the verifiable sample index from its
	// first checkpoint (docs/sample-index.md). It is not the default
	// while the index costs about half the append rate and several
	// hundred MB of memory (docs/performance.md).
	SampleIndex bool
}

// InitWith is Init with options.
func InitWith(ctx context.Context, dir, origin, dsn string, o InitOptions) (vkey string, err error) {
	key := filepath.Join(dir, KeyFile)
	for _, p := range []string{key, filepath.Join(dir, PubFile), filepath.Join(dir, DBFile)} {
		fi, err := os.Lstat(p)
		switch {
		case err == nil && fi.Mode()&os.ModeSymlink != 0:
			return "", fail(KindLink, "%s is a symbolic link: refusing to create the log's files through it", p)
		case err == nil || !errors.Is(err, fs.ErrNotExist):
			return "", &Error{Kind: KindExists, Err: fmt.Errorf("%s already exists: refusing to overwrite an existing log", p),
				fix: fmt.Sprintf("pick a new --dir; to serve the existing log run 'custody serve --dir %s'", dir)}
		}
	}
	var st store.Store
	if IsPostgres(dsn) {
		// A shared database may hold a log already: refuse it before
		// writing keys that would then block a retry.
		if st, err = OpenStore(dsn, dir); err != nil {
			return "", OpenStoreError(err, "--store", dsn)
		}
		defer st.Close()
		if cp, err := st.Latest(ctx); err == nil {
			return "", fail(KindStoreUsed, "--store %s already holds a log of %d entries: refusing to overwrite it", RedactDSN(dsn), cp.Size)
		} else if !errors.Is(err, store.ErrNotFound) {
			return "", fmt.Errorf("reading --store %s: %w", RedactDSN(dsn), err)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating %s: %w", dir, err)
	}
	if vkey, err = keyfile.WriteLog(filepath.Join(dir, "log"), origin); err != nil {
		return "", err
	}
	signer, err := keyfile.LoadSigner(key)
	if err != nil {
		return "", &Error{Kind: KindSigner, Err: err}
	}
	if st == nil {
		if st, err = OpenStore(dsn, dir); err != nil {
			return "", err
		}
		defer st.Close()
	}
	if err := log.CreateWith(ctx, st, signer, log.CreateOptions{SampleIndex: o.SampleIndex}); err != nil {
		return "", fmt.Errorf("writing the first checkpoint: %w", err)
	}
	return vkey, nil
}
