package verify

import "fmt"

// ReceiptAttestation is the part of a receipt that ties its event to the
// site attestation covering it (docs/site-signing.md): the attestation
// entry, its own inclusion proof in the receipt's checkpoint, and the
// event's audit path in the attestation's Merkle tree. Receipts of unsigned
// events, and every receipt written before site signatures existed, have
// none.
//
// The event's leaf number in the attestation's tree is not stated: it is
// fixed by the log's layout, Index - (Attestation.Index - COUNT), because an
// attestation covers the COUNT entries immediately before it.
type ReceiptAttestation struct {
	// Index is the attestation entry's log index, after the event's.
	Index uint64 `json:"index"`
	// Entry is the attestation entry (a signed note,
	// custody-attestation/v1).
	Entry []byte `json:"entry"`
	// Proof is the inclusion proof of Entry at Index in the tree of the
	// receipt's checkpoint.
	Proof [][]byte `json:"proof"`
	// Path is the RFC 6962 audit path of the event's identity in the
	// attestation's tree (record.AttestationPath), leaf first.
	Path [][]byte `json:"path"`
}

// check verifies that a.Entry is in the tree of cp at a.Index, after the
// receipt's event at index; what the entry says is the caller's to check.
func (a *ReceiptAttestation) check(index uint64, cp Checkpoint) error {
	if a.Index <= index {
		return fmt.Errorf("the attestation at index %d does not follow the event at index %d", a.Index, index)
	}
	if len(a.Entry) == 0 {
		return fmt.Errorf("the attestation at index %d has no entry", a.Index)
	}
	for i, h := range a.Path {
		if len(h) != HashSize {
			return fmt.Errorf("attestation path hash %d has %d bytes, want %d", i, len(h), HashSize)
		}
	}
	proof := make([]Hash, len(a.Proof))
	for i, p := range a.Proof {
		if len(p) != HashSize {
			return fmt.Errorf("attestation proof hash %d has %d bytes, want %d", i, len(p), HashSize)
		}
		proof[i] = Hash(p)
	}
	if err := CheckInclusion(a.Index, cp.Size, LeafHash(a.Entry), proof, cp.Root); err != nil {
		return fmt.Errorf("the inclusion proof of the attestation at index %d does not lead to the root of the signed tree of size %d: %w", a.Index, cp.Size, err)
	}
	return nil
}
