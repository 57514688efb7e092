package site

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/custodylog/custody/internal/fuzzseeds"
	"github.com/custodylog/custody/record"
)

// FuzzAttestation checks the strict attestation parser
// (record.DecodeAttestation) and the signature check on arbitrary input:
// no panic; every error a *record.FieldError; whatever is accepted
// re-encodes to the same bytes, is a well-formed signed note for
// x/mod/sumdb/note, and verifies with the vector key only if it is the
// vector itself (the only message that key signed). Seeds are in
// testdata/fuzz/FuzzAttestation: valid-* must decode, the others must not
// (TestAttestationFuzzSeeds).
func FuzzAttestation(f *testing.F) {
	vector, err := os.ReadFile(filepath.Join(vectorsDir, "attestation.txt"))
	if err != nil {
		f.Fatal(err)
	}
	pub, err := os.ReadFile(filepath.Join(vectorsDir, "site.pub"))
	if err != nil {
		f.Fatal(err)
	}
	set, err := NewSet([]Site{{Name: "ch-zrh-1", Locations: []string{"ch-zrh-1"}, Keys: []Key{{Verifier: strings.TrimSpace(string(pub)), From: vectorTime}}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := record.DecodeAttestation(data)
		if err != nil {
			var fe *record.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is %T, not *record.FieldError", err, err)
			}
			if a != (record.Attestation{}) {
				t.Fatalf("non-zero attestation with error %v", err)
			}
			return
		}
		if err := a.Validate(); err != nil {
			t.Fatalf("decoded attestation fails Validate: %v", err)
		}
		if e := a.Entry(); !bytes.Equal(e, data) {
			t.Fatalf("Entry() =\n%q\nwant the input\n%q", e, data)
		}
		if record.KindOf(data) != record.EntryAttestation {
			t.Fatalf("KindOf = %v", record.KindOf(data))
		}
		n, err := note.Open(data, note.VerifierList())
		var unverified *note.UnverifiedNoteError
		if !errors.As(err, &unverified) {
			t.Fatalf("x/mod note.Open = %v, want an unverified but well-formed note", err)
		}
		if n != nil || unverified.Note.Text != string(a.Text()) || len(unverified.Note.UnverifiedSigs) != 1 {
			t.Fatalf("x/mod reads another text or signatures: %+v", unverified.Note)
		}
		// Only the vector carries a signature by the vector's key.
		if err := set.Verify(testOrigin, data, nil, vectorTime); err != nil {
			var fnd *Finding
			if !errors.As(err, &fnd) {
				t.Fatalf("Verify error %T", err)
			}
			if strings.Contains(fnd.Detail, "do not match") || strings.Contains(fnd.Detail, "covers") {
				if !bytes.Equal(data, vector) {
					t.Fatalf("signature verified on a message the key never signed:\n%s", data)
				}
			}
		}
	})
}

func TestAttestationFuzzSeeds(t *testing.T) {
	fuzzseeds.Check(t, map[string]func(args []any) error{
		"FuzzAttestation": func(a []any) error { _, err := record.DecodeAttestation(a[0].([]byte)); return err },
	})
}
