package cmd

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/store/postgres"
	"github.com/custodylog/custody/store/sqlite"
)

// openStoreTimeout bounds connecting to a PostgreSQL store and creating or
// checking its schema.
const openStoreTimeout = 30 * time.Second

// openStore opens the store named by dsn, or the log directory's SQLite file.
// A DSN is "sqlite:PATH", a plain path, or a PostgreSQL URL
// (postgres://USER@HOST:PORT/DATABASE?sslmode=...&search_path=SCHEMA, also
// postgresql://).
func openStore(dsn string, f logFiles) (store.Store, error) {
	path := f.db()
	if dsn != "" {
		if isPostgres(dsn) {
			ctx, cancel := context.WithTimeout(context.Background(), openStoreTimeout)
			defer cancel()
			return postgres.Open(ctx, dsn)
		}
		path = strings.TrimPrefix(dsn, "sqlite:")
	}
	return sqlite.Open(path)
}

// holdLog takes what a writer of the log (serve, prefill) needs before it
// opens the store: the lock of a SQLite database, which has one writer, or
// the check that a PostgreSQL database holds the log (its servers share it
// by lease). On success the caller must call release.
func holdLog(ctx context.Context, dsn string, f logFiles) (release func(), err error) {
	if isPostgres(dsn) {
		return func() {}, pgHoldsLog(ctx, dsn)
	}
	lockPath := f.db() + ".lock"
	if dsn != "" {
		lockPath = strings.TrimPrefix(dsn, "sqlite:") + ".lock"
	}
	return lockFile(lockPath)
}

// mustExist refuses, without writing anything, a store that holds no log:
// a SQLite file that does not exist, or a PostgreSQL schema without the
// log's tables (opening either would create an empty store).
func mustExist(dsn string) error {
	if isPostgres(dsn) {
		return pgHoldsLog(context.Background(), dsn)
	}
	p := strings.TrimPrefix(dsn, "sqlite:")
	if _, err := os.Stat(p); err != nil {
		return usageErr(fmt.Errorf("source store %s: %w", dsn, err), "pass an existing log database, e.g. sqlite:mylog/custody.db")
	}
	return nil
}

// pgHoldsLog checks, without writing, that the PostgreSQL database of dsn
// holds a custody log in the first schema of its search_path
// (postgres.HoldsLog), with the fix in the error.
func pgHoldsLog(ctx context.Context, dsn string) error {
	ctx, cancel := context.WithTimeout(ctx, openStoreTimeout)
	defer cancel()
	err := postgres.HoldsLog(ctx, dsn)
	const hint = "pass the --store DSN given to 'custody init' and 'custody serve', with the log's search_path"
	var nl *postgres.NoLogError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, postgres.ErrBadDSN):
		return usageErr(fmt.Errorf("--store %s: %w", redactDSN(dsn), err), "pass a PostgreSQL URL: postgres://USER@HOST:PORT/DATABASE?sslmode=...&search_path=SCHEMA")
	case errors.As(err, &nl) && nl.Schema == "":
		return usageError(hint, "--store %s: no schema of its search_path exists, so it holds no log", redactDSN(dsn))
	case errors.As(err, &nl):
		return usageError(hint, "--store %s holds no custody log (schema %s has no schema_version table); create one with 'custody init --store DSN'", redactDSN(dsn), nl.Schema)
	}
	return ioError(fmt.Errorf("--store %s: %w", redactDSN(dsn), err))
}

// storeOpenErr explains a store that does not open.
func storeOpenErr(err error, flag, dsn string) error {
	var ce *cliError
	if errors.As(err, &ce) {
		return err
	}
	return usageErr(fmt.Errorf("opening %s %s: %w", flag, redactDSN(dsn), err), "pass sqlite:PATH, a path, or a PostgreSQL URL the store accepts")
}

// redactDSN hides a password in a URL DSN, for messages.
func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		return u.Redacted()
	}
	return dsn
}
