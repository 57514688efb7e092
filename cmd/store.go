package cmd

import (
	"context"
	"errors"
	"fmt"

	logserver "github.com/custodylog/custody/server"
	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/store/postgres"
)

// openSource opens the store of an existing log named by flag (copy
// --from, mirror --store), refusing, without writing anything, one that
// holds no log: a SQLite file that does not exist, or a PostgreSQL schema
// without the log's tables (opening either would create an empty store).
func openSource(ctx context.Context, flag, dsn string) (store.Store, error) {
	st, err := logserver.OpenLogStore(ctx, dsn, "")
	switch kind, cause := serverErr(err); kind {
	case logserver.KindHold:
		return nil, storeErr(cause, dsn)
	case logserver.KindNoStore:
		return nil, usageErr(fmt.Errorf("source store %s: %w", dsn, cause), "pass an existing log database, e.g. sqlite:mylog/custody.db")
	case logserver.KindOpenStore:
		return nil, storeOpenErr(cause, flag, dsn)
	}
	return st, nil
}

// storeErr adds the fix to an error of logserver.HoldLog (the SQLite lock or
// logserver.HoldsLog) for the store dsn.
func storeErr(err error, dsn string) error {
	const hint = "pass the --store DSN given to 'custody init' and 'custody serve', with the log's search_path"
	var nl *postgres.NoLogError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, logserver.ErrLocked):
		return withHint(err, "stop the other custody process first; one SQLite database has one writer")
	case !logserver.IsPostgres(dsn):
		return err
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

// redactDSN is logserver.RedactDSN.
var redactDSN = logserver.RedactDSN
