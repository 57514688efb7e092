package cmd

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"

	"github.com/custodylog/custody/client"
	"github.com/custodylog/custody/httpapi"
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

// newAPIClient returns a reader of the server at base (custody get),
// refusing anything but an http(s) base URL. Writes go through the client
// package.
func newAPIClient(base string) (*client.Reader, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageError("pass the server's base URL, e.g. --log http://127.0.0.1:8080", "bad --log URL %q", base)
	}
	return client.NewReader(base), nil
}

// readToken returns the first token of a token file, or $CUSTODY_TOKEN.
func readToken(path string) (string, error) {
	if path == "" {
		if t := os.Getenv("CUSTODY_TOKEN"); t != "" {
			return t, nil
		}
		return "", usageError("pass --token-file F (the file given to 'custody serve') or set CUSTODY_TOKEN", "no token to authenticate with")
	}
	ts, err := loadTokens(path)
	if err != nil {
		return "", err
	}
	return ts[0], nil
}

// loadTokens reads a token file with httpapi.LoadTokens, adding the fix to
// the error (tokenErr).
func loadTokens(path string) ([]string, error) {
	ts, err := httpapi.LoadTokens(path)
	return ts, tokenErr(err, path)
}

// tokenErr adds the fix to an error of httpapi.LoadTokens reading path:
// 'chmod 600 FILE' for a file group or others may access, else how to
// write a token file.
func tokenErr(err error, path string) error {
	var me *httpapi.TokenFileModeError
	switch {
	case errors.As(err, &me):
		return withHint(err, "chmod 600 %s", path)
	case err != nil:
		return withHint(err, "write one random token per line, readable only by you, e.g. '(umask 077; openssl rand -hex 32 > %s)'", path)
	}
	return nil
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }
