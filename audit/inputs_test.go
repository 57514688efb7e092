package audit

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custodylog/custody/internal/sitetest"
)

// TestLoadSiteSetFile: no file asks for no check; a policy with sites
// gives their keys; a policy without a sites section, or no policy at
// all, is a mistake that says what to fix and exits 3.
func TestLoadSiteSetFile(t *testing.T) {
	if set, err := LoadSiteSetFile(""); set != nil || err != nil {
		t.Fatalf("LoadSiteSetFile(\"\") = %v, %v; want nil, nil", set, err)
	}
	b, err := os.ReadFile(filepath.Join("..", "testdata", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	w := sitetest.NewWorld(t)
	withSites := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(withSites, append(b, w.PolicySites()...), 0o600); err != nil {
		t.Fatal(err)
	}
	if set, err := LoadSiteSetFile(withSites); set == nil || err != nil {
		t.Fatalf("policy with sites: %v, %v", set, err)
	}
	for _, p := range []string{"../testdata/policy.yaml", filepath.Join(t.TempDir(), "none.yaml")} {
		_, err := LoadSiteSetFile(p)
		var f interface {
			Hint() string
			ExitCode() int
		}
		if !errors.As(err, &f) || !strings.Contains(f.Hint(), "sites section") || f.ExitCode() != 3 || !strings.Contains(err.Error(), filepath.Base(p)) {
			t.Errorf("%s: %v; want an error naming it with the sites fix and exit 3", p, err)
		}
	}
}
