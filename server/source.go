package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/custodylog/custody/store"
)

// OpenSourceStore opens the store dsn of an existing log that a command
// reads from, given as flag (copy --from, mirror --store). Unlike
// OpenStore it never creates anything: a SQLite file that does not exist
// or a PostgreSQL schema without the log's tables is refused (OpenLogStore)
// and nothing is written. Its errors are *Error values whose Hint and
// ExitCode are custody's: a missing source is a usage mistake (exit 3), a
// store that does not open is OpenStoreError's for flag.
func OpenSourceStore(ctx context.Context, flag, dsn string) (store.Store, error) {
	st, err := OpenLogStore(ctx, dsn, "")
	var se *Error
	if err == nil || !errors.As(err, &se) {
		return st, err
	}
	switch se.Kind {
	case KindNoStore:
		return nil, &Error{Kind: KindNoStore, Err: fmt.Errorf("source store %s: %w", dsn, se.Err), exit: 3,
			fix: "pass an existing log database, e.g. sqlite:mylog/custody.db"}
	case KindOpenStore:
		return nil, OpenStoreError(se.Err, flag, dsn)
	}
	return nil, err
}
