package verify

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/mod/sumdb/note"
)

// The tessera testdata log (interop.md section 2): checkpoint.15 and its key.
const (
	tesseraOrigin = "example.com/log/testdata"
	tesseraVkey   = "example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx"
	tesseraSkey   = "PRIVATE+KEY+example.com/log/testdata+33d7b496+AeymY/SZAX0jZcJ8enZ5FY1Dz+wTML2yWSkK+9DSF3eg"
	tesseraCP15   = "example.com/log/testdata\n" +
		"15\n" +
		"rKbDipCvhuX1GZ7g5BBe8sA6BbJ7ja/1nk427v383cs=\n" +
		"\n" +
		"— example.com/log/testdata M9e0luh4jTG+UMBqOUo9/q+yAEvx1ilBEniMvjf1zfcBOhg+CKubMt53MvIt/uEWP6zdkdIQzd/fmwlM/dlPWF74ewI=\n"
)

// The interop vectors of interop.md section 3.1: a log key, a checkpoint of
// the 8 RFC 6962 test leaves, and a witness cosignature on it.
const (
	interopOrigin     = "example.com/interop-log"
	interopLogSkey    = "PRIVATE+KEY+example.com/interop-log+c596cb83+AVQ01pCIJYIs40WHu8bT10uB3ObKa8k9omzv6bp+eakG"
	interopLogVkey    = "example.com/interop-log+c596cb83+AW2Njk7Fg2EgoVNUl4WqPRaUzt8ao79mGec8UeeM9Ddh"
	interopWitnessKey = "example.com/interop-witness+1e542855+BPykqlR3mhp1znR5RJRsyd5txcxN7xRdO4tsGHT+bDi4"
	interopText       = "example.com/interop-log\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n"
	interopLogSig     = "— example.com/interop-log xZbLg+Zc8lYKykEGnkfzTpTOWh5twMPqJ+dmHHAFswzCXyleCHfzCVLymlNQ6d/hYagVUQZZnSQufZfP8JUsQ+v6pA4=\n"
	interopCosig      = "— example.com/interop-witness HlQoVQAAAABlU/EAbQOWhIS+Ln/yX/z1fvxvW7k+H9kzU4/YzuZ3J3GzMj/t/k9x0MW+c4mGGRteAdjXpSWDoklhMpDnKp43yOhZAQ==\n"
	interopNote       = interopText + "\n" + interopLogSig
)

func mustVerifiers(t testing.TB, vkeys ...string) note.Verifiers {
	t.Helper()
	var vs []note.Verifier
	for _, k := range vkeys {
		v, err := NewVerifier(k)
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	return note.VerifierList(vs...)
}

func mustSigner(t testing.TB, skey string) note.Signer {
	t.Helper()
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustB64Hash(t testing.TB, s string) [32]byte {
	t.Helper()
	h, err := decodeHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestOpenTesseraCheckpoint(t *testing.T) {
	c, n, err := OpenCheckpoint([]byte(tesseraCP15), tesseraOrigin, mustVerifiers(t, tesseraVkey))
	if err != nil {
		t.Fatalf("OpenCheckpoint(tessera checkpoint.15) = %v", err)
	}
	want := Checkpoint{Origin: tesseraOrigin, Size: 15, Root: mustB64Hash(t, "rKbDipCvhuX1GZ7g5BBe8sA6BbJ7ja/1nk427v383cs=")}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("OpenCheckpoint(tessera checkpoint.15) mismatch (-want +got):\n%s", diff)
	}
	if len(n.Sigs) != 1 || n.Sigs[0].Hash != 0x33d7b496 {
		t.Errorf("OpenCheckpoint(tessera checkpoint.15) verified sigs = %+v, want one from key 33d7b496", n.Sigs)
	}
	if got := string(c.Marshal()); got != n.Text {
		t.Errorf("Marshal() = %q, want note text %q", got, n.Text)
	}
}

func TestOpenInteropCheckpoint(t *testing.T) {
	// The root of the 8 RFC 6962 test leaves (roots.json).
	wantRoot := [32]byte{0x5d, 0xc9, 0xda, 0x79, 0xa7, 0x06, 0x59, 0xa9, 0xad, 0x55, 0x9c, 0xb7, 0x01, 0xde, 0xd9, 0xa2,
		0xab, 0x9d, 0x82, 0x3a, 0xad, 0x2f, 0x49, 0x60, 0xcf, 0xe3, 0x70, 0xef, 0xf4, 0x60, 0x43, 0x28}
	vs := mustVerifiers(t, interopLogVkey)

	c, n, err := OpenCheckpoint([]byte(interopNote), interopOrigin, vs)
	if err != nil {
		t.Fatalf("OpenCheckpoint(interop note) = %v", err)
	}
	if diff := cmp.Diff(Checkpoint{Origin: interopOrigin, Size: 8, Root: wantRoot}, c); diff != "" {
		t.Errorf("OpenCheckpoint(interop note) mismatch (-want +got):\n%s", diff)
	}
	if len(n.Sigs) != 1 || len(n.UnverifiedSigs) != 0 {
		t.Errorf("OpenCheckpoint(interop note): %d verified, %d unverified signatures, want 1 and 0", len(n.Sigs), len(n.UnverifiedSigs))
	}

	// A witness cosignature (type 0x04) is an unknown key to the log
	// verifier, and is tolerated.
	c2, n2, err := OpenCheckpoint([]byte(interopNote+interopCosig), interopOrigin, vs)
	if err != nil {
		t.Fatalf("OpenCheckpoint(interop note + cosignature) = %v", err)
	}
	if diff := cmp.Diff(c, c2); diff != "" {
		t.Errorf("cosigned checkpoint differs (-plain +cosigned):\n%s", diff)
	}
	if len(n2.UnverifiedSigs) != 1 || n2.UnverifiedSigs[0].Name != "example.com/interop-witness" || n2.UnverifiedSigs[0].Hash != 0x1e542855 {
		t.Errorf("OpenCheckpoint(interop note + cosignature) unverified sigs = %+v, want the witness's 1e542855", n2.UnverifiedSigs)
	}

	// The published signature is reproduced by signing with the published
	// secret key (Ed25519 is deterministic).
	signed, err := note.Sign(&note.Note{Text: interopText}, mustSigner(t, interopLogSkey))
	if err != nil {
		t.Fatal(err)
	}
	if string(signed) != interopNote {
		t.Errorf("note.Sign(interop text) = %q, want %q", signed, interopNote)
	}

	// The interop seeds are SHA-256("interop-log-seed").
	seed := sha256.Sum256([]byte("interop-log-seed"))
	pub := ed25519.NewKeyFromSeed(seed[:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(interopOrigin, pub)
	if err != nil || vkey != interopLogVkey {
		t.Errorf("vkey from seed = %q, %v; want %q", vkey, err, interopLogVkey)
	}
}

// TestCheckpointRoundTripXMod signs checkpoints with x/mod and checks they
// open, parse and marshal back to the signed text.
func TestCheckpointRoundTripXMod(t *testing.T) {
	signer := mustSigner(t, tesseraSkey)
	for _, c := range []Checkpoint{
		{Origin: tesseraOrigin, Size: 0, Root: EmptyRoot},
		{Origin: tesseraOrigin, Size: 1, Root: LeafHash([]byte("one"))},
		{Origin: tesseraOrigin, Size: 1<<64 - 1, Root: NodeHash(EmptyRoot, EmptyRoot)},
		{Origin: tesseraOrigin, Size: 42, Root: EmptyRoot, Extensions: []string{"ext one", "— looks like a signature"}},
	} {
		msg, err := note.Sign(&note.Note{Text: string(c.Marshal())}, signer)
		if err != nil {
			t.Fatal(err)
		}
		got, n, err := OpenCheckpoint(msg, tesseraOrigin, mustVerifiers(t, tesseraVkey))
		if err != nil {
			t.Errorf("OpenCheckpoint(signed %q) = %v", c.Marshal(), err)
			continue
		}
		if diff := cmp.Diff(c, got); diff != "" {
			t.Errorf("OpenCheckpoint(signed %q) mismatch (-want +got):\n%s", c.Marshal(), diff)
		}
		if string(got.Marshal()) != n.Text {
			t.Errorf("Marshal() = %q, want %q", got.Marshal(), n.Text)
		}
	}
}

func TestOpenCheckpointErrors(t *testing.T) {
	vs := mustVerifiers(t, tesseraVkey)
	signer := mustSigner(t, tesseraSkey)
	sign := func(text string) string {
		msg, err := note.Sign(&note.Note{Text: text}, signer)
		if err != nil {
			t.Fatal(err)
		}
		return string(msg)
	}
	otherSkey, _, err := note.GenerateKey(nil, tesseraOrigin)
	if err != nil {
		t.Fatal(err)
	}
	// Flip one base64 character inside the signature, after the key ID.
	sigLine := strings.Index(tesseraCP15, "— ")
	sigStart := sigLine + len("— "+tesseraOrigin+" ")
	tampered := []byte(tesseraCP15)
	if tampered[sigStart+20] == 'A' {
		tampered[sigStart+20] = 'B'
	} else {
		tampered[sigStart+20] = 'A'
	}
	if tampered[sigStart+20] == tesseraCP15[sigStart+20] {
		t.Fatal("tampering did not change the note")
	}

	for _, tc := range []struct {
		name   string
		msg    string
		origin string
		check  func(error) bool
		want   string
	}{
		{"wrong origin", tesseraCP15, "example.com/other", func(err error) bool { return errors.Is(err, ErrOriginMismatch) }, "ErrOriginMismatch"},
		{"tampered signature", string(tampered), tesseraOrigin, func(err error) bool {
			var e *note.InvalidSignatureError
			return errors.As(err, &e) && e.Name == tesseraOrigin && e.Hash == 0x33d7b496
		}, "*note.InvalidSignatureError for 33d7b496"},
		{"signed by an unknown key only", string(must(note.Sign(&note.Note{Text: "example.com/log/testdata\n15\nrKbDipCvhuX1GZ7g5BBe8sA6BbJ7ja/1nk427v383cs=\n"}, mustSigner(t, otherSkey)))), tesseraOrigin,
			func(err error) bool { var e *note.UnverifiedNoteError; return errors.As(err, &e) }, "*note.UnverifiedNoteError"},
		{"no signature lines", "example.com/log/testdata\n15\nrKbDipCvhuX1GZ7g5BBe8sA6BbJ7ja/1nk427v383cs=\n", tesseraOrigin,
			func(err error) bool { return errors.Is(err, ErrMalformedNote) }, "ErrMalformedNote"},
		{"CR LF line ends", strings.ReplaceAll(tesseraCP15, "\n", "\r\n"), tesseraOrigin,
			func(err error) bool { return errors.Is(err, ErrMalformedNote) }, "ErrMalformedNote"},
		{"signature line without em dash", strings.Replace(tesseraCP15, "— ", "- ", 1), tesseraOrigin,
			func(err error) bool { return errors.Is(err, ErrMalformedNote) }, "ErrMalformedNote"},
		{"signed body with leading zero size", sign("example.com/log/testdata\n015\nrKbDipCvhuX1GZ7g5BBe8sA6BbJ7ja/1nk427v383cs=\n"), tesseraOrigin,
			func(err error) bool { return errors.Is(err, ErrMalformedCheckpoint) }, "ErrMalformedCheckpoint"},
		{"signed body of two lines", sign("example.com/log/testdata\n15\n"), tesseraOrigin,
			func(err error) bool { return errors.Is(err, ErrMalformedCheckpoint) }, "ErrMalformedCheckpoint"},
		{"signed size 0 with a non-empty root", sign("example.com/log/testdata\n0\nrKbDipCvhuX1GZ7g5BBe8sA6BbJ7ja/1nk427v383cs=\n"), tesseraOrigin,
			func(err error) bool { return errors.Is(err, ErrMalformedCheckpoint) }, "ErrMalformedCheckpoint"},
		{"empty origin argument", tesseraCP15, "", func(err error) bool { return err != nil }, "an error"},
	} {
		_, n, err := OpenCheckpoint([]byte(tc.msg), tc.origin, vs)
		if !tc.check(err) {
			t.Errorf("%s: OpenCheckpoint = %v, want %s", tc.name, err, tc.want)
		}
		if n != nil {
			t.Errorf("%s: OpenCheckpoint returned a note with an error", tc.name)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestParseCheckpointMalformed(t *testing.T) {
	const root = "rKbDipCvhuX1GZ7g5BBe8sA6BbJ7ja/1nk427v383cs="
	root31 := base64.StdEncoding.EncodeToString(make([]byte, 31))
	root33 := base64.StdEncoding.EncodeToString(make([]byte, 33))
	for _, tc := range []struct {
		name, text, wantErr string
	}{
		{"leading zero size", "o\n015\n" + root + "\n", "number has leading zeros"},
		{"zero written 00", "o\n00\n" + base64.StdEncoding.EncodeToString(EmptyRoot[:]) + "\n", "number has leading zeros"},
		{"plus sign size", "o\n+15\n" + root + "\n", "not a decimal number"},
		{"negative size", "o\n-1\n" + root + "\n", "not a decimal number"},
		{"size with space", "o\n 15\n" + root + "\n", "not a decimal number"},
		{"hex size", "o\n0x0f\n" + root + "\n", "not a decimal number"},
		{"empty size", "o\n\n" + root + "\n", "empty number"},
		{"size overflows 64 bits", "o\n18446744073709551616\n" + root + "\n", "does not fit in 64 bits"},
		{"bad base64 root", "o\n15\n" + strings.Replace(root, "r", "!", 1) + "\n", "not standard base64"},
		{"url-safe base64 root", "o\n15\n" + strings.ReplaceAll(root, "/", "_") + "\n", "not standard base64"},
		{"unpadded root", "o\n15\n" + strings.TrimSuffix(root, "=") + "\n", "not standard base64"},
		{"31-byte root", "o\n15\n" + root31 + "\n", "hash is 31 bytes, want 32"},
		{"33-byte root", "o\n15\n" + root33 + "\n", "hash is 33 bytes, want 32"},
		{"non-zero padding bits in root", "o\n15\n" + root[:42] + "t=\n", "not standard base64"},
		{"root with trailing space", "o\n15\n" + root + " \n", "not standard base64"},
		{"missing final newline", "o\n15\n" + root, "does not end in a newline"},
		{"empty origin", "\n15\n" + root + "\n", "origin line is empty"},
		{"size 0 with wrong root", "o\n0\n" + root + "\n", "size is 0 but root"},
		{"blank extension line", "o\n15\n" + root + "\n\n", "extension line 1 (line 4) is empty"},
		{"blank line between extensions", "o\n15\n" + root + "\next\n\nmore\n", "extension line 2 (line 5) is empty"},
		{"only two lines", "o\n15\n", "text has 2 lines, want at least 3"},
		{"empty text", "", "empty text"},
		{"CR in origin", "o\r\n15\n" + root + "\n", "control character 0x0d"},
		{"tab in extension", "o\n15\n" + root + "\na\tb\n", "control character 0x09"},
		{"invalid UTF-8 in origin", "o\xff\n15\n" + root + "\n", "invalid UTF-8"},
	} {
		_, err := ParseCheckpoint([]byte(tc.text))
		if err == nil || !errors.Is(err, ErrMalformedCheckpoint) || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: ParseCheckpoint(%q) = %v, want ErrMalformedCheckpoint containing %q", tc.name, tc.text, err, tc.wantErr)
		}
	}
}

func TestParseCheckpointValid(t *testing.T) {
	const root = "rKbDipCvhuX1GZ7g5BBe8sA6BbJ7ja/1nk427v383cs="
	for _, tc := range []struct {
		name string
		text string
		want Checkpoint
	}{
		{"empty tree", "example.com/log\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
			Checkpoint{Origin: "example.com/log", Size: 0, Root: EmptyRoot}},
		{"go sumdb style origin with spaces", "go.sum database tree\n15\n" + root + "\n",
			Checkpoint{Origin: "go.sum database tree", Size: 15, Root: mustB64Hash(t, root)}},
		{"max size", "o\n18446744073709551615\n" + root + "\n",
			Checkpoint{Origin: "o", Size: 1<<64 - 1, Root: mustB64Hash(t, root)}},
		{"extensions", "o\n15\n" + root + "\nfirst\n second \n",
			Checkpoint{Origin: "o", Size: 15, Root: mustB64Hash(t, root), Extensions: []string{"first", " second "}}},
	} {
		got, err := ParseCheckpoint([]byte(tc.text))
		if err != nil {
			t.Errorf("%s: ParseCheckpoint(%q) = %v", tc.name, tc.text, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: ParseCheckpoint(%q) mismatch (-want +got):\n%s", tc.name, tc.text, diff)
		}
		if m := got.Marshal(); !bytes.Equal(m, []byte(tc.text)) {
			t.Errorf("%s: Marshal() = %q, want %q", tc.name, m, tc.text)
		}
	}
}
