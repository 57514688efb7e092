package witness

import (
	"testing"

	"github.com/custodylog/custody/internal/depstest"
)

// TestDependencies enforces that the witness imports no database code (its
// state is behind StateStore; the SQLite implementation is
// store/witnessdb) and needs no cgo: only the standard library without
// database/sql, verify and what verify imports, and the HTTP server
// settings shared by custody's servers (internal/httpserve).
func TestDependencies(t *testing.T) {
	depstest.Check(t, "witness", []string{
		"github.com/custodylog/custody/witness",
		"github.com/custodylog/custody/verify",
		"github.com/custodylog/custody/internal/tiles",
		"github.com/custodylog/custody/internal/httpserve",
		"golang.org/x/mod/sumdb/note",
		"github.com/transparency-dev/merkle",
	}, []string{"database/sql"})
}
