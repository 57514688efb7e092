package cmd

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/store/postgres"
	"github.com/custodylog/custody/store/sqlite"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
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
		if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
			ctx, cancel := context.WithTimeout(context.Background(), openStoreTimeout)
			defer cancel()
			return postgres.Open(ctx, dsn)
		}
		path = strings.TrimPrefix(dsn, "sqlite:")
	}
	return sqlite.Open(path)
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
// holds a custody log in the first schema of its search_path.
func pgHoldsLog(ctx context.Context, dsn string) error {
	ctx, cancel := context.WithTimeout(ctx, openStoreTimeout)
	defer cancel()
	name := redactDSN(dsn)
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return usageErr(fmt.Errorf("--store %s: %w", name, err), "pass a PostgreSQL URL: postgres://USER@HOST:PORT/DATABASE?sslmode=...&search_path=SCHEMA")
	}
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		return ioError(fmt.Errorf("connecting to --store %s: %w (is the server running, and are the DSN's host, port, user and database right?)", name, err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var schema *string
	var tables int
	err = conn.QueryRow(ctx, `SELECT current_schema(), (SELECT count(*) FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_name = 'schema_version')`).Scan(&schema, &tables)
	if err != nil {
		return ioError(fmt.Errorf("reading the schema of --store %s: %w", name, err))
	}
	const hint = "pass the --store DSN given to 'custody init' and 'custody serve', with the log's search_path"
	if schema == nil {
		return usageError(hint, "--store %s: no schema of its search_path exists, so it holds no log", name)
	}
	if tables == 0 {
		return usageError(hint, "--store %s holds no custody log (schema %s has no schema_version table); create one with 'custody init --store DSN'", name, *schema)
	}
	return nil
}
