package cmd

import (
	"context"
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
		if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
			ctx, cancel := context.WithTimeout(context.Background(), openStoreTimeout)
			defer cancel()
			return postgres.Open(ctx, dsn)
		}
		path = strings.TrimPrefix(dsn, "sqlite:")
	}
	return sqlite.Open(path)
}
