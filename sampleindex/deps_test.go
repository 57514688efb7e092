package sampleindex

import (
	"testing"

	"github.com/custodylog/custody/internal/depstest"
)

// TestDependencies keeps the index importable by verify (which must not
// depend on record), auditors and the browser-side checks: the standard library, the tree code
// and transparency-dev/merkle only; no database, no network, no cgo.
func TestDependencies(t *testing.T) {
	depstest.Check(t, "sampleindex", []string{
		"github.com/custodylog/custody/sampleindex",
		"github.com/custodylog/custody/internal/tiles",
		"github.com/transparency-dev/merkle",
	}, []string{"database", "net", "os/exec"})
}
