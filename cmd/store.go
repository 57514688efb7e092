package cmd

import (
	"strings"

	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/store/sqlite"
)

// openStore opens the store named by dsn, or the log directory's SQLite file.
// A DSN is "sqlite:PATH" or a plain path (PostgreSQL comes later).
func openStore(dsn string, f logFiles) (store.Store, error) {
	path := f.db()
	if dsn != "" {
		if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
			return nil, usageError("use the embedded SQLite store: leave --store empty", "PostgreSQL is not supported by this build yet: %s", "postgres://…")
		}
		path = strings.TrimPrefix(dsn, "sqlite:")
	}
	return sqlite.Open(path)
}
