package verify

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies enforces that verify, which auditors install, depends
// only on the standard library, x/mod's note package and
// transparency-dev/merkle: no cgo, no database, no CLI framework, no server
// code of custody's own.
func TestDependencies(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	out, err := exec.Command(gobin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	allowed := []string{
		"github.com/custodylog/custody/verify",
		"golang.org/x/mod/sumdb/note",
		"github.com/transparency-dev/merkle",
	}
	for _, dep := range strings.Fields(string(out)) {
		ok := false
		for _, a := range allowed {
			if dep == a || strings.HasPrefix(dep, a+"/") {
				ok = true
			}
		}
		if !ok {
			t.Errorf("verify depends on %s; allowed are the standard library and %v", dep, allowed[1:])
		}
	}
	out, err = exec.Command(gobin, "list", "-deps", "-f", "{{if .CgoFiles}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		// Not even the standard library's cgo users (net, os/user):
		// verify needs none of them.
		t.Errorf("verify depends on packages with cgo files: %s", s)
	}
}
