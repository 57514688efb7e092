package server

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/store/postgres"
	"github.com/custodylog/custody/store/sqlite"
)

// The files of a log directory made by `custody init`.
const (
	// KeyFile holds the log's private signing key (mode 0600).
	KeyFile = "log.key"
	// PubFile holds the log's verifier key.
	PubFile = "log.pub"
	// DBFile is the log's SQLite store, unless a DSN names another.
	DBFile = "custody.db"
)

// OpenStoreTimeout bounds connecting to a PostgreSQL store and creating or
// checking its schema.
const OpenStoreTimeout = 30 * time.Second

// IsPostgres reports whether dsn names a PostgreSQL database
// (postgres:// or postgresql://).
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// SQLitePath is the SQLite file a DSN names: dir's DBFile for "", else dsn
// without its "sqlite:" prefix. It is meaningless for a PostgreSQL DSN.
func SQLitePath(dsn, dir string) string {
	if dsn == "" {
		return filepath.Join(dir, DBFile)
	}
	return strings.TrimPrefix(dsn, "sqlite:")
}

// OpenStore opens the store named by dsn: "sqlite:PATH", a plain path, a
// PostgreSQL URL (postgres://USER@HOST:PORT/DATABASE?sslmode=...&
// search_path=SCHEMA, also postgresql://; connecting and preparing the
// schema take at most OpenStoreTimeout), or, for "", the SQLite file DBFile
// in dir. Opening creates an empty store where there is none: see HoldsLog
// for a check that writes nothing.
func OpenStore(dsn, dir string) (store.Store, error) {
	if IsPostgres(dsn) {
		ctx, cancel := context.WithTimeout(context.Background(), OpenStoreTimeout)
		defer cancel()
		return postgres.Open(ctx, dsn)
	}
	return sqlite.Open(SQLitePath(dsn, dir))
}

// OpenLogStore opens the store of a log that exists, as OpenStore does,
// but never creates one: a SQLite file must be there and be a regular
// file (else an *Error of kind KindNoStore), and a PostgreSQL database
// must hold the log (HoldsLog; else an *Error of kind KindHold). A store
// that then does not open is an *Error of kind KindOpenStore.
func OpenLogStore(ctx context.Context, dsn, dir string) (store.Store, error) {
	if IsPostgres(dsn) {
		if err := HoldsLog(ctx, dsn); err != nil {
			return nil, HoldError(err, dsn)
		}
	} else if fi, err := os.Stat(SQLitePath(dsn, dir)); err != nil {
		return nil, &Error{Kind: KindNoStore, Err: err}
	} else if !fi.Mode().IsRegular() {
		return nil, fail(KindNoStore, "%s is not a database file", SQLitePath(dsn, dir))
	}
	st, err := OpenStore(dsn, dir)
	if err != nil {
		return nil, &Error{Kind: KindOpenStore, Err: err}
	}
	return st, nil
}

// HoldError is the *Error of kind KindHold for err, a failure of HoldLog
// or HoldsLog on dsn. For PostgreSQL it names the store (its password
// redacted) and says what to do; the SQLite lock's error (ErrLocked) has
// a Hint of its own.
func HoldError(err error, dsn string) *Error {
	if !IsPostgres(dsn) {
		return &Error{Kind: KindHold, Err: err}
	}
	const hint = "pass the --store DSN given to 'custody init' and 'custody serve', with the log's search_path"
	red := RedactDSN(dsn)
	var nl *postgres.NoLogError
	switch {
	case errors.Is(err, postgres.ErrBadDSN):
		return &Error{Kind: KindHold, Err: fmt.Errorf("--store %s: %w", red, err), exit: 3,
			fix: "pass a PostgreSQL URL: postgres://USER@HOST:PORT/DATABASE?sslmode=...&search_path=SCHEMA"}
	case errors.As(err, &nl) && nl.Schema == "":
		return &Error{Kind: KindHold, Err: fmt.Errorf("--store %s: no schema of its search_path exists, so it holds no log", red), fix: hint, exit: 3}
	case errors.As(err, &nl):
		return &Error{Kind: KindHold, Err: fmt.Errorf("--store %s holds no custody log (schema %s has no schema_version table); create one with 'custody init --store DSN'", red, nl.Schema), fix: hint, exit: 3}
	}
	return &Error{Kind: KindHold, Err: fmt.Errorf("--store %s: %w", red, err), exit: 3}
}

// OpenStoreError is the *Error of kind KindOpenStore for err, a failure of
// OpenStore on dsn given as flag: a usage mistake (exit 3) unless err says
// what to do itself.
func OpenStoreError(err error, flag, dsn string) *Error {
	var f interface {
		Hint() string
		ExitCode() int
	}
	if errors.As(err, &f) && f.Hint() != "" {
		return &Error{Kind: KindOpenStore, Err: err}
	}
	return &Error{Kind: KindOpenStore, Err: fmt.Errorf("opening %s %s: %w", flag, RedactDSN(dsn), err), exit: 3,
		fix: "pass sqlite:PATH, a path, or a PostgreSQL URL the store accepts"}
}

// HoldsLog checks, without writing, that the PostgreSQL database of dsn
// holds a custody log in the first schema of its search_path, within
// OpenStoreTimeout. Its errors are postgres.HoldsLog's: one wrapping
// postgres.ErrBadDSN, a *postgres.NoLogError, or a connection failure.
func HoldsLog(ctx context.Context, dsn string) error {
	ctx, cancel := context.WithTimeout(ctx, OpenStoreTimeout)
	defer cancel()
	return postgres.HoldsLog(ctx, dsn)
}

// HoldLog takes what a writer of the log in dir (or dsn) needs before it
// opens the store: the lock of a SQLite database, which has one writer
// (LockFile on the database's path + ".lock"), or, for PostgreSQL, the
// check that the database holds the log (HoldsLog: its servers share it by
// lease). On success the caller must call release.
func HoldLog(ctx context.Context, dsn, dir string) (release func(), err error) {
	if IsPostgres(dsn) {
		return func() {}, HoldsLog(ctx, dsn)
	}
	return LockFile(SQLitePath(dsn, dir) + ".lock")
}

// ErrLocked is wrapped by LockFile's error when another process holds the
// lock.
var ErrLocked = errors.New("another process is serving from this directory")

// lockedError is LockFile's error when another process holds the lock.
type lockedError struct{ path string }

func (e *lockedError) Error() string { return fmt.Sprintf("%v (%s is locked)", ErrLocked, e.path) }
func (e *lockedError) Unwrap() error { return ErrLocked }

// Hint says what to do about the error.
func (e *lockedError) Hint() string {
	return "stop the other custody process first; one SQLite database has one writer"
}

// ExitCode is custody's exit code for the error: 1.
func (e *lockedError) ExitCode() int { return 1 }

// LockFile takes an exclusive advisory lock on path (created, mode 0600, if
// needed), so that two processes never write one SQLite database. The lock
// is released by release, or when the process exits, however it exits. If
// another process holds it, the error wraps ErrLocked and names path.
func LockFile(path string) (release func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("creating lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &lockedError{path}
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// RedactDSN is dsn with the password of a URL DSN hidden, for messages.
func RedactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		return u.Redacted()
	}
	return dsn
}
