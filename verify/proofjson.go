package verify

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// maxProofJSONHashes bounds the hashes a proof may carry: 64 levels of a tree
// of at most 2^64 leaves, and one more for a consistency proof.
const maxProofJSONHashes = 65

// InclusionProofJSON is the body of GET /v1/proof/inclusion.
type InclusionProofJSON struct {
	Index    uint64 `json:"index"`
	Size     uint64 `json:"size"`
	LeafHash Hash   `json:"-"`
	Proof    []Hash `json:"-"`
}

// ConsistencyProofJSON is the body of GET /v1/proof/consistency.
type ConsistencyProofJSON struct {
	From  uint64 `json:"from"`
	To    uint64 `json:"to"`
	Proof []Hash `json:"-"`
}

// ParseInclusionProofJSON parses the JSON of an inclusion proof strictly:
// exactly the fields index, size, leaf_hash and proof, hashes as standard
// base64 of 32 bytes, at most maxProofJSONHashes of them, index < size. It does
// not check the proof: use CheckInclusion with a verified checkpoint.
func ParseInclusionProofJSON(b []byte) (InclusionProofJSON, error) {
	var raw struct {
		Index    *uint64  `json:"index"`
		Size     *uint64  `json:"size"`
		LeafHash *string  `json:"leaf_hash"`
		Proof    []string `json:"proof"`
	}
	if err := strictJSON(b, &raw); err != nil {
		return InclusionProofJSON{}, fmt.Errorf("inclusion proof: %w", err)
	}
	if raw.Index == nil || raw.Size == nil || raw.LeafHash == nil || raw.Proof == nil {
		return InclusionProofJSON{}, fmt.Errorf("inclusion proof: index, size, leaf_hash and proof are required")
	}
	if *raw.Index >= *raw.Size {
		return InclusionProofJSON{}, fmt.Errorf("inclusion proof: index %d is not in a tree of size %d", *raw.Index, *raw.Size)
	}
	p := InclusionProofJSON{Index: *raw.Index, Size: *raw.Size}
	var err error
	if p.LeafHash, err = hashB64("leaf_hash", *raw.LeafHash); err != nil {
		return InclusionProofJSON{}, fmt.Errorf("inclusion proof: %w", err)
	}
	if p.Proof, err = proofB64(raw.Proof); err != nil {
		return InclusionProofJSON{}, fmt.Errorf("inclusion proof: %w", err)
	}
	return p, nil
}

// ParseConsistencyProofJSON parses the JSON of a consistency proof strictly:
// exactly the fields from, to and proof, from <= to, hashes as for
// ParseInclusionProofJSON.
func ParseConsistencyProofJSON(b []byte) (ConsistencyProofJSON, error) {
	var raw struct {
		From  *uint64  `json:"from"`
		To    *uint64  `json:"to"`
		Proof []string `json:"proof"`
	}
	if err := strictJSON(b, &raw); err != nil {
		return ConsistencyProofJSON{}, fmt.Errorf("consistency proof: %w", err)
	}
	if raw.From == nil || raw.To == nil || raw.Proof == nil {
		return ConsistencyProofJSON{}, fmt.Errorf("consistency proof: from, to and proof are required")
	}
	if *raw.From > *raw.To {
		return ConsistencyProofJSON{}, fmt.Errorf("consistency proof: from %d is larger than to %d", *raw.From, *raw.To)
	}
	proof, err := proofB64(raw.Proof)
	if err != nil {
		return ConsistencyProofJSON{}, fmt.Errorf("consistency proof: %w", err)
	}
	return ConsistencyProofJSON{From: *raw.From, To: *raw.To, Proof: proof}, nil
}

// strictJSON decodes one JSON object with no unknown fields and nothing after it.
func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("data after the JSON object")
	}
	return nil
}

func hashB64(name, s string) (Hash, error) {
	var h Hash
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != HashSize || base64.StdEncoding.EncodeToString(b) != s {
		return h, fmt.Errorf("%s %q is not the standard base64 of 32 bytes", name, s)
	}
	copy(h[:], b)
	return h, nil
}

func proofB64(ss []string) ([]Hash, error) {
	if len(ss) > maxProofJSONHashes {
		return nil, fmt.Errorf("proof has %d hashes, more than %d", len(ss), maxProofJSONHashes)
	}
	out := make([]Hash, len(ss))
	for i, s := range ss {
		h, err := hashB64(fmt.Sprintf("proof[%d]", i), s)
		if err != nil {
			return nil, err
		}
		out[i] = h
	}
	return out, nil
}
