package verify

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

func TestVerificationError(t *testing.T) {
	idx := uint64(7)
	ve := &VerificationError{
		Evidence: Evidence{Kind: EvidenceBadEntry, What: "entry 7 is wrong", Origin: "example.com/log", Index: &idx,
			Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		Err: io.ErrUnexpectedEOF,
	}
	if got, want := ve.Error(), "log example.com/log failed verification (bad-entry): entry 7 is wrong: unexpected EOF"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	wrapped := fmt.Errorf("auditing: %w", ve)
	got, ok := IsVerificationError(wrapped)
	if !ok || got != ve {
		t.Errorf("IsVerificationError(wrapped) = %v, %v", got, ok)
	}
	if !errors.Is(wrapped, io.ErrUnexpectedEOF) {
		t.Error("Unwrap does not reach Err")
	}
	if _, ok := IsVerificationError(io.EOF); ok {
		t.Error("plain error reported as a VerificationError")
	}
	if _, ok := IsVerificationError(nil); ok {
		t.Error("nil reported as a VerificationError")
	}
	noErr := &VerificationError{Evidence: Evidence{Kind: EvidenceFork, What: "two roots"}}
	if got, want := noErr.Error(), "log failed verification (fork): two roots"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	js, err := json.Marshal(ve.Evidence)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"kind":"bad-entry","what":"entry 7 is wrong","origin":"example.com/log","index":7,"time":"2026-01-02T03:04:05Z"}`
	if string(js) != want {
		t.Errorf("JSON = %s\nwant   %s", js, want)
	}
	var back Evidence
	if err := json.Unmarshal(js, &back); err != nil || back.Index == nil || *back.Index != 7 || back.Kind != EvidenceBadEntry {
		t.Errorf("JSON round trip: %+v, %v", back, err)
	}
	for _, k := range []string{EvidenceBadSignature, EvidenceRootMismatch, EvidenceInconsistent, EvidenceFork,
		EvidenceRollback, EvidenceBadEntry, EvidenceBadTile, EvidenceQuorum} {
		if k == "" || strings.ToLower(k) != k {
			t.Errorf("kind %q", k)
		}
	}
}
