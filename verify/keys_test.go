package verify

import (
	"encoding/base64"
	"errors"
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

// TestKeyErrorsNeverQuoteKeys passes private keys (and other secrets) where
// a verifier key belongs, as a string and in files, to every key parser:
// the errors say what is wrong, name the file, and never contain the key.
func TestKeyErrorsNeverQuoteKeys(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	secret := strings.SplitN(tesseraSkey, "+", 5)[4] // the base64 type and seed
	// A raw secret that is not in key form but contains '+'.
	raw := "c2VjcmV0+c2VjcmV0+" + secret
	cosigSkey := "PRIVATE+KEY+witness.example+12345678+" + secret
	keyFile := write("log.key", tesseraSkey+"\n")
	for _, tc := range []struct {
		name    string
		check   func() error
		private bool
		file    string
	}{
		{"NewVerifier(private key)", func() error { _, err := NewVerifier(tesseraSkey); return err }, true, ""},
		{"NewVerifier(lower-case private key)", func() error { _, err := NewVerifier(strings.ToLower(tesseraSkey[:12]) + tesseraSkey[12:]); return err }, true, ""},
		{"NewVerifier(private key with a space)", func() error { _, err := NewVerifier(" " + tesseraSkey); return err }, true, ""},
		{"NewVerifier(raw secret)", func() error { _, err := NewVerifier(raw); return err }, false, ""},
		{"NewCosignatureVerifier(private key)", func() error { _, err := NewCosignatureVerifier(cosigSkey); return err }, true, ""},
		{"NewCosignatureVerifier(raw secret)", func() error { _, err := NewCosignatureVerifier(raw); return err }, false, ""},
		{"LoadVerifierKey(private key string)", func() error { _, err := LoadVerifierKey(tesseraSkey); return err }, true, ""},
		{"LoadVerifierKey(raw secret string)", func() error { _, err := LoadVerifierKey(raw); return err }, false, ""},
		{"LoadVerifierKey(secret without '+')", func() error { _, err := LoadVerifierKey(strings.ReplaceAll(secret, "+", "x")); return err }, false, ""},
		{"LoadVerifierKey(private key file)", func() error { _, err := LoadVerifierKey(keyFile); return err }, true, keyFile},
		{"LoadVerifierKey(file with a raw secret)", func() error { _, err := LoadVerifierKey(write("raw.pub", raw)); return err }, false, "raw.pub"},
		{"ParseTrustPolicy(log line with a private key)", func() error {
			_, err := ParseTrustPolicy([]byte("log " + tesseraSkey + "\nquorum none\n"))
			return err
		}, false, ""},
		{"ParseTrustPolicy(witness line with a private key)", func() error {
			_, err := ParseTrustPolicy([]byte("log " + tesseraVkey + "\nwitness w " + cosigSkey + "\nquorum w\n"))
			return err
		}, false, ""},
	} {
		err := tc.check()
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		msg := err.Error()
		for _, s := range []string{secret, secret[:12], strings.ReplaceAll(secret, "+", "x")[:12], "c2VjcmV0"} {
			if strings.Contains(msg, s) {
				t.Errorf("%s: error quotes key material %q: %s", tc.name, s, msg)
			}
		}
		if tc.private && (!errors.Is(err, ErrPrivateKey) || !strings.Contains(msg, "private signer key")) {
			t.Errorf("%s: error %q does not say it is a private key", tc.name, msg)
		}
		if strings.Contains(tc.name, "ParseTrustPolicy") && !strings.Contains(msg, "private signer key") {
			t.Errorf("%s: error %q does not say it is a private key", tc.name, msg)
		}
		if tc.file != "" && !strings.Contains(msg, tc.file) {
			t.Errorf("%s: error %q does not name the file", tc.name, msg)
		}
	}
}
