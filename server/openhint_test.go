package server

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custodylog/custody/internal/keyfile"
)

// TestOpenKeyHints: a private key given where Open wants a witness's
// verifier key (--witness, a trust policy) is refused with a fix naming
// where it was given and asking for the .pub file; a --witness key that is
// no key at all is a usage mistake saying what KEY is.
func TestOpenKeyHints(t *testing.T) {
	dir := newLogDir(t)
	other := t.TempDir()
	if _, err := keyfile.WriteWitness(filepath.Join(other, "wit"), "witness.open.test"); err != nil {
		t.Fatal(err)
	}
	priv := filepath.Join(other, "wit.key")
	trust := writeFile(t, other, "trust-priv.txt", "witness w "+mustRead(t, priv)+" http://x/\n", 0o644)
	for _, tc := range []struct {
		name string
		o    Options
		hint string
		exit int
	}{
		{"private key file as --witness key", Options{Dir: dir, Witnesses: []string{"http://h/=" + priv}}, "--witness URL=KEY takes public verifier keys: pass the .pub file", 3},
		{"no key as --witness key", Options{Dir: dir, Witnesses: []string{"http://h/=" + writeFile(t, other, "bad", "not a key\n", 0o600)}}, "KEY is the witness's cosignature verifier key", 3},
		{"private key in a trust policy", Options{Dir: dir, Trust: trust}, "a trust policy takes public verifier keys", 1},
	} {
		s, err := Open(context.Background(), tc.o, Config{})
		if err == nil {
			s.Close()
			t.Fatalf("%s: Open succeeded", tc.name)
		}
		if hint, code := exitOf(t, err); !strings.HasPrefix(hint, tc.hint) || code != tc.exit {
			t.Errorf("%s: hint %q, exit %d; want %q…, %d", tc.name, hint, code, tc.hint, tc.exit)
		}
		if strings.Contains(err.Error(), strings.TrimSpace(mustRead(t, priv))) {
			t.Errorf("%s: the error quotes the key: %v", tc.name, err)
		}
	}
}
