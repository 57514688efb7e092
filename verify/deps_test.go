package verify

import (
	"testing"

	"github.com/custodylog/custody/internal/depstest"
)

// TestDependencies enforces that verify, which auditors install, depends
// only on the standard library, x/mod's note package, transparency-dev/merkle
// and custody's internal tree engine: no events (record), no routing policy
// or YAML (audit), no cgo, no database, no CLI framework, no server code of
// custody's own (log, store).
func TestDependencies(t *testing.T) {
	depstest.Check(t, "verify", []string{
		"github.com/custodylog/custody/verify",
		"github.com/custodylog/custody/internal/tiles",
		"golang.org/x/mod/sumdb/note",
		"github.com/transparency-dev/merkle",
	}, []string{"database/sql", "net/http/httptest", "os/user"})
}
