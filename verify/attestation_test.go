package verify

import (
	"encoding/json"
	"testing"
)

// attestedFixture is receiptFixture's receipt for entry 1 with entry 2
// standing in for the attestation covering it (verify checks only where
// the attestation is; what it says is the application's).
func attestedFixture(t testing.TB) (Receipt, string) {
	r, _, origin := receiptFixture(t)
	e2 := []byte(`{"sample":"s1","action":"analysed","location":"ch-zrh-1","region":"EU","time":"2026-11-01T12:00:02Z","logged":"2026-11-01T12:00:09Z","actor":"t"}`)
	var e0, e1 Hash = Hash(r.Proof[0]), Hash(r.LeafHash)
	left := NodeHash(e0, e1)
	r.Attestation = &ReceiptAttestation{Index: 2, Entry: e2, Proof: [][]byte{left[:]}, Path: [][]byte{make([]byte, 32)}}
	return r, origin
}

// TestCheckReceiptAttestation: a receipt's attestation must be in the
// receipt's tree at its index, after the event; receipts without one (all
// those written before site signatures) stay valid.
func TestCheckReceiptAttestation(t *testing.T) {
	_, vs, origin := receiptFixture(t)
	good, _ := attestedFixture(t)
	if _, _, err := CheckReceipt(good, origin, vs, nil); err != nil {
		t.Fatalf("receipt with an attestation: %v", err)
	}
	b, _ := json.Marshal(good)
	var back Receipt
	if err := json.Unmarshal(b, &back); err != nil || back.Attestation == nil || back.Attestation.Index != 2 {
		t.Fatalf("round trip: %v %+v", err, back.Attestation)
	}
	old, _, _ := receiptFixture(t)
	if _, _, err := CheckReceipt(old, origin, vs, nil); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if b, _ := json.Marshal(old); json.Unmarshal(b, &m) != nil || m["attestation"] != nil {
		t.Fatal("a receipt without attestation has an attestation field")
	}
	for name, m := range map[string]func(a *ReceiptAttestation){
		"proof flipped":      func(a *ReceiptAttestation) { a.Proof[0][0] ^= 1 },
		"entry changed":      func(a *ReceiptAttestation) { a.Entry = append(a.Entry, ' ') },
		"index of the event": func(a *ReceiptAttestation) { a.Index = 1 },
		"index before":       func(a *ReceiptAttestation) { a.Index = 0 },
		"no entry":           func(a *ReceiptAttestation) { a.Entry = nil },
		"short path hash":    func(a *ReceiptAttestation) { a.Path[0] = a.Path[0][:5] },
		"short proof hash":   func(a *ReceiptAttestation) { a.Proof[0] = a.Proof[0][:5] },
		"beyond the tree":    func(a *ReceiptAttestation) { a.Index = 3 },
	} {
		t.Run(name, func(t *testing.T) {
			r, _ := attestedFixture(t)
			m(r.Attestation)
			if _, ok := IsVerificationError(func() error { _, _, err := CheckReceipt(r, origin, vs, nil); return err }()); !ok {
				t.Fatalf("CheckReceipt accepted a receipt whose attestation %s", name)
			}
		})
	}
}
