package witness

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestDependencies enforces that the witness imports no database code (its
// state is behind StateStore; the SQLite implementation is
// store/witnessdb) and needs no cgo: only the standard library without
// database/sql, verify and what verify imports.
func TestDependencies(t *testing.T) {
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if p, err := exec.LookPath("go"); err == nil {
		gobin = p
	}
	out, err := exec.Command(gobin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	allowed := []string{
		"github.com/custodylog/custody/witness",
		"github.com/custodylog/custody/verify",
		"github.com/custodylog/custody/internal/tiles",
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
			t.Errorf("witness depends on %s; allowed are the standard library and %v", dep, allowed[1:])
		}
	}
	std, err := exec.Command(gobin, "list", "-deps", "-f", "{{if .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, std)
	}
	for _, dep := range strings.Fields(string(std)) {
		if dep == "database/sql" || strings.HasPrefix(dep, "database/sql/") {
			t.Errorf("witness depends on %s", dep)
		}
	}
	list := exec.Command(gobin, "list", "-deps", "-f", "{{if .CgoFiles}}{{.ImportPath}}{{end}}", ".")
	list.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err = list.CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		t.Errorf("witness depends on packages with cgo files: %s", s)
	}
}
