package verify

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

func TestNewVerifier(t *testing.T) {
	for _, vkey := range []string{
		tesseraVkey,
		interopLogVkey,
		"PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",    // x/mod package doc
		"example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", // c2sp signed-note example
	} {
		v, err := NewVerifier(vkey)
		if err != nil {
			t.Errorf("NewVerifier(%q) = %v", vkey, err)
			continue
		}
		if name, _, _ := strings.Cut(vkey, "+"); v.Name() != name {
			t.Errorf("NewVerifier(%q).Name() = %q, want %q", vkey, v.Name(), name)
		}
	}

	pub := base64.StdEncoding.EncodeToString(append([]byte{0x01}, make([]byte, 32)...))
	short := base64.StdEncoding.EncodeToString(append([]byte{0x01}, make([]byte, 31)...))
	for _, tc := range []struct{ name, vkey, wantErr string }{
		{"empty", "", "empty key"},
		{"trailing newline", tesseraVkey + "\n", "white space"},
		{"leading space", " " + tesseraVkey, "white space"},
		{"signer key", tesseraSkey, "private signer key"},
		{"two fields", "example.com/log+33d7b496", "2 '+'-separated fields, want 3"},
		{"one field", "example.com/log", "1 '+'-separated fields, want 3"},
		{"extra field", tesseraVkey + "+x", "not canonical standard base64"},
		{"space in name", "example.com/a b+33d7b496+" + pub, "invalid key name"},
		{"empty name", "+33d7b496+" + pub, "invalid key name"},
		{"uppercase key ID", strings.Replace(tesseraVkey, "33d7b496", "33D7B496", 1), "not 8 lowercase hex digits"},
		{"short key ID", strings.Replace(tesseraVkey, "33d7b496", "3d7b496", 1), "not 8 lowercase hex digits"},
		{"wrong key ID", strings.Replace(tesseraVkey, "33d7b496", "33d7b497", 1), "does not match the name and public key (computed 33d7b496)"},
		{"renamed key", strings.Replace(tesseraVkey, "example.com/log/testdata", "example.com/log/other", 1), "does not match the name and public key"},
		{"bad base64", tesseraVkey[:len(tesseraVkey)-2] + "!!", "not canonical standard base64"},
		{"unpadded base64 with wrong length", tesseraVkey + "A", "not canonical standard base64"},
		{"cosignature key", interopWitnessKey, "witness cosignature key"},
		{"ml-dsa key", "w+00000000+" + base64.StdEncoding.EncodeToString([]byte{0x06, 1, 2}), "ML-DSA-44"},
		{"unknown type", "w+00000000+" + base64.StdEncoding.EncodeToString([]byte{0x09, 1, 2}), "key type 0x09 is not supported"},
		{"31-byte key", "w+00000000+" + short, "public key is 31 bytes, want 32"},
	} {
		_, err := NewVerifier(tc.vkey)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: NewVerifier(%q) = %v, want error containing %q", tc.name, tc.vkey, err, tc.wantErr)
		}
	}
}

// TestNewVerifierAcceptsXModKeys checks that NewVerifier accepts the keys
// x/mod generates, and that the verifier it returns checks x/mod signatures.
func TestNewVerifierAcceptsXModKeys(t *testing.T) {
	for i := range 20 {
		name := "example.com/log" + strings.Repeat("x", i)
		skey, vkey, err := note.GenerateKey(nil, name)
		if err != nil {
			t.Fatal(err)
		}
		v, err := NewVerifier(vkey)
		if err != nil {
			t.Errorf("NewVerifier(x/mod generated %q) = %v", vkey, err)
			continue
		}
		msg, err := note.Sign(&note.Note{Text: "hello\n"}, mustSigner(t, skey))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := note.Open(msg, note.VerifierList(v)); err != nil {
			t.Errorf("note.Open(signed by %s) with NewVerifier(%q) = %v", name, vkey, err)
		}
	}
}

func TestLoadVerifierKey(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("log.pub", "\n  "+tesseraVkey+"\n\n")
	// A file named like a valid key: the string is taken as the key.
	for _, tc := range []struct{ name, in, want string }{
		{"key string", tesseraVkey, tesseraVkey},
		{"file with surrounding white space", good, tesseraVkey},
	} {
		got, err := LoadVerifierKey(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("%s: LoadVerifierKey(%q) = %q, %v; want %q", tc.name, tc.in, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ name, in, wantErr string }{
		{"key string with bad ID", strings.Replace(tesseraVkey, "33d7b496", "33d7b497", 1), "does not match"},
		{"missing file", filepath.Join(dir, "nope.pub"), "neither a verifier key"},
		{"file with two keys", write("two.pub", tesseraVkey+"\n"+interopLogVkey+"\n"), "more than one line"},
		{"file with a signer key", write("log.key", tesseraSkey+"\n"), "private signer key"},
		{"file with a cosignature key", write("w.pub", interopWitnessKey), "witness cosignature key"},
		{"empty file", write("empty.pub", ""), "empty key"},
		{"directory", dir, "reading key file"},
	} {
		got, err := LoadVerifierKey(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: LoadVerifierKey(%q) = %q, %v; want error containing %q", tc.name, tc.in, got, err, tc.wantErr)
		}
	}
}
