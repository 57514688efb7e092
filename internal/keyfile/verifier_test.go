package keyfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custodylog/custody/verify"
)

func TestLoadVerifier(t *testing.T) {
	dir := t.TempDir()
	vkey, err := WriteLog(filepath.Join(dir, "log"), "keyfile.test/log")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{vkey, filepath.Join(dir, "log.pub")} {
		v, err := LoadVerifier(s)
		if err != nil || v.Name() != "keyfile.test/log" {
			t.Fatalf("LoadVerifier(%q) = %v, %v", s, v, err)
		}
	}
	skey, _ := os.ReadFile(filepath.Join(dir, "log.key"))
	for _, s := range []string{filepath.Join(dir, "log.key"), strings.TrimSpace(string(skey))} {
		_, err := LoadVerifier(s)
		if !errors.Is(err, verify.ErrPrivateKey) || strings.Contains(err.Error(), "PRIVATE+KEY+keyfile") {
			t.Fatalf("LoadVerifier of the private key: %v, want verify.ErrPrivateKey without the key", err)
		}
	}
	if _, err := LoadVerifier(filepath.Join(dir, "none.pub")); err == nil {
		t.Fatal("LoadVerifier of a missing file succeeded")
	}
}
