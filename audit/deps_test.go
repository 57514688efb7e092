package audit

import (
	"testing"

	"github.com/custodylog/custody/internal/depstest"
)

// TestDependencies enforces that audit, which auditors install, depends
// only on the standard library, custody's verify and record packages (and
// what verify depends on), its activity aggregate (standard library and
// record only), custody's terminal-text escaping and a YAML
// parser (the routing policy): no cgo, no database, no CLI framework, no
// server code of custody's own (log, store, dashboard).
func TestDependencies(t *testing.T) {
	depstest.Check(t, "audit", []string{
		"github.com/custodylog/custody/audit",
		"github.com/custodylog/custody/verify",
		"github.com/custodylog/custody/record",
		"github.com/custodylog/custody/activity",
		"github.com/custodylog/custody/site",
		"github.com/custodylog/custody/sampleindex",
		"github.com/custodylog/custody/internal/tiles",
		"github.com/custodylog/custody/internal/bindec",
		"github.com/custodylog/custody/internal/maptiles",
		"github.com/custodylog/custody/internal/termtext",
		"github.com/custodylog/custody/internal/spill",
		"golang.org/x/mod/sumdb/note",
		"github.com/transparency-dev/merkle",
		"go.yaml.in/yaml/v3",
	}, []string{"database/sql", "net/http/httptest", "os/user"})
}
