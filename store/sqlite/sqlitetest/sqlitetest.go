// Package sqlitetest lets tests reach into a SQLite log file behind the
// store's back, as someone with access to the file could: to damage or
// tamper with it and check that custody notices. Nothing but tests may
// import it.
package sqlitetest

import (
	"database/sql"
	"net/url"
	"path/filepath"
	"testing"

	_ "github.com/mattn/go-sqlite3" // registers the "sqlite3" driver
)

func open(tb testing.TB, path string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite3", "file:"+(&url.URL{Path: filepath.ToSlash(path)}).EscapedPath()+"?_busy_timeout=5000")
	if err != nil {
		tb.Fatalf("sqlitetest: opening %s: %v", path, err)
	}
	return db
}

// Exec runs one statement with its arguments in the database file at path
// (which no store may hold open for writing meanwhile). It fails tb on any
// error.
func Exec(tb testing.TB, path, q string, args ...any) {
	tb.Helper()
	db := open(tb, path)
	defer db.Close()
	if _, err := db.Exec(q, args...); err != nil {
		tb.Fatalf("sqlitetest: %s: %v", q, err)
	}
}

// QueryRow runs a query returning one row in the database file at path and
// scans it into dest. It fails tb on any error, no row included.
func QueryRow(tb testing.TB, path, q string, args []any, dest ...any) {
	tb.Helper()
	db := open(tb, path)
	defer db.Close()
	if err := db.QueryRow(q, args...).Scan(dest...); err != nil {
		tb.Fatalf("sqlitetest: %s: %v", q, err)
	}
}
