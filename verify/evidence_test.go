package verify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
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

// TestEvidenceCopiesOnlyCheckpoints: a log (directory or server) that
// serves arbitrary bytes as its checkpoint (here a file of secrets, as a
// hostile log could make the auditor read one) gets bad-signature evidence
// that holds only the bytes' SHA-256 and length, never the bytes; a
// checkpoint note for the log's origin with a bad signature is kept
// verbatim, as the evidence it is.
func TestEvidenceCopiesOnlyCheckpoints(t *testing.T) {
	r, vs, origin := receiptFixture(t)
	good := []byte(r.Checkpoint)
	secret := []byte("HOME=/root\x00AWS_SECRET_ACCESS_KEY=do-not-leak\x00")
	badSig := []byte(strings.Replace(r.Checkpoint, "— example.com/receipt-test ", "— example.com/receipt-test AAAA", 1))
	otherOrigin := []byte(strings.Replace(r.Checkpoint, "example.com/receipt-test\n", "example.com/other\n", 1))
	for _, tc := range []struct {
		name     string
		served   []byte
		verbatim bool
	}{
		{"secret file", secret, false},
		{"html page", []byte("<html><body>internal admin: token=do-not-leak</body></html>\n"), false},
		{"checkpoint text without signatures", []byte(r.Checkpoint[:strings.Index(r.Checkpoint, "\n\n")+1]), false},
		{"another origin's checkpoint", otherOrigin, false},
		{"bad signature", badSig, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeDir(t, map[string][]byte{"checkpoint": tc.served})
			_, _, err := NewClient(NewDirSource(dir), origin, vs, nil).Checkpoint(context.Background())
			ve, ok := IsVerificationError(err)
			if !ok || ve.Evidence.Kind != EvidenceBadSignature {
				t.Fatalf("Checkpoint = %v, want bad-signature evidence", err)
			}
			ev := ve.Evidence
			js, _ := json.Marshal(ev)
			if tc.verbatim {
				if ev.NewCheckpoint != string(tc.served) || ev.NewCheckpointSHA256 != "" {
					t.Errorf("evidence does not hold the badly signed checkpoint verbatim: %s", js)
				}
				return
			}
			sum := sha256.Sum256(tc.served)
			if ev.NewCheckpoint != "" || ev.NewCheckpointSHA256 != hex.EncodeToString(sum[:]) || ev.NewCheckpointBytes != len(tc.served) {
				t.Errorf("evidence %s, want only sha256 %x and %d bytes", js, sum, len(tc.served))
			}
			if bytes.Contains(js, []byte("do-not-leak")) || bytes.Contains(js, []byte("HOME=")) {
				t.Errorf("evidence holds the served bytes: %s", js)
			}
		})
	}
	if _, _, err := NewClient(NewDirSource(writeDir(t, map[string][]byte{"checkpoint": good})), origin, vs, nil).Checkpoint(context.Background()); err != nil {
		t.Fatalf("good checkpoint: %v", err)
	}
}

// TestCheckReceiptMalformed: input that is not a receipt ({}, missing
// fields, a checkpoint that is not a checkpoint note) is a plain error
// wrapping ErrMalformedReceipt, never evidence against the log.
func TestCheckReceiptMalformed(t *testing.T) {
	good, vs, origin := receiptFixture(t)
	for name, r := range map[string]Receipt{
		"empty":         {},
		"no checkpoint": {Index: 1, LeafHash: good.LeafHash, Entry: good.Entry, Proof: good.Proof},
		"no entry":      {Index: 1, LeafHash: good.LeafHash, Checkpoint: good.Checkpoint, Proof: good.Proof},
		"no leaf hash":  {Index: 1, Entry: good.Entry, Checkpoint: good.Checkpoint, Proof: good.Proof},
		"checkpoint is a secret": {Index: 1, LeafHash: good.LeafHash, Entry: good.Entry, Proof: good.Proof,
			Checkpoint: "AWS_SECRET_ACCESS_KEY=do-not-leak\n"},
	} {
		_, _, err := CheckReceipt(r, origin, vs, nil)
		if _, ok := IsVerificationError(err); ok || !errors.Is(err, ErrMalformedReceipt) {
			t.Errorf("%s: CheckReceipt = %v, want a plain error wrapping ErrMalformedReceipt", name, err)
		}
		if err != nil && strings.Contains(err.Error(), "do-not-leak") {
			t.Errorf("%s: error quotes the input: %v", name, err)
		}
	}
}
