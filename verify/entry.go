package verify

import "context"

// ProveEntry checks that entry is the entry at index in the tree of cp, a
// checkpoint this Client opened: it builds the inclusion proof from hash
// tiles authenticated against cp.Root (InclusionProof) and checks it
// against entry's leaf hash and cp.Root. A proof that does not verify is a
// *VerificationError (EvidenceRootMismatch) holding the signed checkpoint.
// It returns the proof.
func (c *Client) ProveEntry(ctx context.Context, index uint64, entry []byte, cp Checkpoint) ([]Hash, error) {
	proof, err := c.InclusionProof(ctx, index, cp)
	if err != nil {
		return nil, err
	}
	if err := CheckInclusion(index, cp.Size, LeafHash(entry), proof, cp.Root); err != nil {
		return nil, &VerificationError{Evidence: c.evidence(EvidenceRootMismatch, "inclusion proof from the log's tiles fails", cp), Err: err}
	}
	return proof, nil
}
