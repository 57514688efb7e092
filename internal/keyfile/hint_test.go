package keyfile

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestVerifierHint: a private key given where a verifier key belongs gets
// the fix naming the flag and the .pub file, without the key; any other
// error gets the caller's hint.
func TestVerifierHint(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "log")
	if _, err := WriteLog(prefix, "log.example.com"); err != nil {
		t.Fatal(err)
	}
	_, privErr := LoadVerifier(prefix + ".key")
	if privErr == nil {
		t.Fatal("LoadVerifier accepted a private key file")
	}
	_, missingErr := LoadVerifier(filepath.Join(t.TempDir(), "nothing.pub"))
	if missingErr == nil {
		t.Fatal("LoadVerifier accepted a missing file")
	}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"private key", privErr, "--log takes public verifier keys: pass the .pub file"},
		{"wrapped private key", fmt.Errorf("--log: %w", privErr), "--log takes public verifier keys"},
		{"missing file", missingErr, "pass DIR/log.pub"},
	} {
		got := VerifierHint("--log", tc.err, "pass DIR/log.pub")
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: hint %q, want prefix %q", tc.name, got, tc.want)
		}
		if strings.Contains(got, "PRIVATE+KEY") {
			t.Errorf("%s: hint quotes the key: %q", tc.name, got)
		}
	}
}
