// Package depstest checks, in a package's own tests, what the package
// depends on: which non-standard packages, which standard ones it must
// not use, and that it builds without cgo. A package that auditors or
// witnesses install calls Check from a TestDependencies, so an import that
// would drag in a database, a server or cgo fails the build.
package depstest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Check fails t unless the package in the current directory (a test runs
// in its package's directory) depends, outside the standard library, only
// on the packages allowed (each may also bring its subpackages), uses none
// of the standard packages in forbidden (nor their subpackages), and has no
// dependency with cgo files when built with CGO_ENABLED=0.
func Check(t *testing.T, name string, allowed, forbidden []string) {
	t.Helper()
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if p, err := exec.LookPath("go"); err == nil {
		gobin = p
	}
	list := func(format string, env ...string) []string {
		t.Helper()
		cmd := exec.Command(gobin, "list", "-deps", "-f", format, ".")
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps: %v\n%s", err, out)
		}
		return strings.Fields(string(out))
	}
	under := func(dep string, roots []string) bool {
		for _, r := range roots {
			if dep == r || strings.HasPrefix(dep, r+"/") {
				return true
			}
		}
		return false
	}
	for _, dep := range list("{{if not .Standard}}{{.ImportPath}}{{end}}") {
		if !under(dep, allowed) {
			t.Errorf("%s depends on %s; allowed are the standard library and %v", name, dep, allowed)
		}
	}
	for _, dep := range list("{{if .Standard}}{{.ImportPath}}{{end}}") {
		if under(dep, forbidden) {
			t.Errorf("%s depends on %s", name, dep)
		}
	}
	if cgo := list("{{if .CgoFiles}}{{.ImportPath}}{{end}}", "CGO_ENABLED=0"); len(cgo) > 0 {
		t.Errorf("%s depends on packages with cgo files: %v", name, cgo)
	}
}
