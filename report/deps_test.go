package report

import (
	"testing"

	"github.com/custodylog/custody/internal/depstest"
)

// TestDependencies enforces that report, which regulators run to check a
// report (custody verify report), depends only on what audit does (verify,
// record, the policy's YAML parser …) activity and the charts (internal/svgchart): no cgo, no database,
// no server code.
func TestDependencies(t *testing.T) {
	depstest.Check(t, "report", []string{
		"github.com/custodylog/custody/report",
		"github.com/custodylog/custody/activity",
		"github.com/custodylog/custody/audit",
		"github.com/custodylog/custody/verify",
		"github.com/custodylog/custody/record",
		"github.com/custodylog/custody/site",
		"github.com/custodylog/custody/sampleindex",
		"github.com/custodylog/custody/internal/tiles",
		"github.com/custodylog/custody/internal/bindec",
		"github.com/custodylog/custody/internal/maptiles",
		"github.com/custodylog/custody/internal/termtext",
		"github.com/custodylog/custody/internal/svgchart",
		"github.com/custodylog/custody/internal/spill",
		"golang.org/x/mod/sumdb/note",
		"github.com/transparency-dev/merkle",
		"go.yaml.in/yaml/v3",
	}, []string{"database/sql", "net/http/httptest", "os/user"})
}
