package audit

import (
	"errors"
	"testing"
	"time"

	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

// oneEntryReceipt is a receipt for entry, the only entry of a log (so the
// root is its leaf hash and the proof is empty), signed by the test key.
func oneEntryReceipt(t testing.TB, entry []byte) (verify.Receipt, string, []byte, note.Verifiers) {
	t.Helper()
	const origin = "example.com/audit-receipt"
	s, vkey := testLogKey(t, origin)
	leaf := verify.LeafHash(entry)
	signed, err := note.Sign(&note.Note{Text: string(verify.Checkpoint{Origin: origin, Size: 1, Root: leaf}.Marshal())}, s)
	if err != nil {
		t.Fatal(err)
	}
	r := verify.Receipt{Index: 0, LeafHash: leaf[:], Entry: entry, Checkpoint: string(signed)}
	tlp := verify.TLogProof{Index: 0, Checkpoint: signed}.Marshal()
	return r, origin, tlp, mustVerifiers(t, vkey)
}

func TestCheckReceiptDecodesTheEvent(t *testing.T) {
	ev := record.Event{Sample: "s1", Action: "stored", Location: "ch-zrh-1", Region: "EU", Actor: "t",
		Time: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC), Logged: time.Date(2026, 11, 1, 12, 0, 9, 0, time.UTC)}
	entry := ev.Canonical()
	r, origin, tlp, vs := oneEntryReceipt(t, entry)
	cp, got, err := CheckReceipt(r, origin, vs, nil)
	if err != nil || cp.Size != 1 || got.Sample != "s1" || got.Action != "stored" {
		t.Fatalf("CheckReceipt = %+v, %+v, %v", cp, got, err)
	}
	cp, index, got, err := CheckTLogProof(tlp, entry, origin, vs, nil)
	if err != nil || cp.Size != 1 || index != 0 || got.Location != "ch-zrh-1" {
		t.Fatalf("CheckTLogProof = %+v, %d, %+v, %v", cp, index, got, err)
	}
}

// An entry the log signed that is not a canonical event fails the receipt
// with evidence, through both forms of receipt.
func TestCheckReceiptRefusesNonEvent(t *testing.T) {
	entry := []byte(`{"not":"an event"}`)
	r, origin, tlp, vs := oneEntryReceipt(t, entry)
	if _, _, err := verify.CheckReceipt(r, origin, vs, nil); err != nil {
		t.Fatalf("the fixture's proof must verify: %v", err)
	}
	_, _, err := CheckReceipt(r, origin, vs, nil)
	ve, ok := verify.IsVerificationError(err)
	if !ok || ve.Evidence.Kind != verify.EvidenceBadReceipt || errors.Is(err, verify.ErrMalformedReceipt) {
		t.Errorf("CheckReceipt of a non-event: %v", err)
	}
	_, _, _, err = CheckTLogProof(tlp, entry, origin, vs, nil)
	if ve, ok := verify.IsVerificationError(err); !ok || ve.Evidence.Kind != verify.EvidenceBadReceipt {
		t.Errorf("CheckTLogProof of a non-event: %v", err)
	}
}
