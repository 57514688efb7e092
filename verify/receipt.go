package verify

import "encoding/json"

// Receipt is the self-contained proof that an event is in the log, as the log
// hands it out and as `custody verify receipt` checks it offline. All byte
// fields are standard base64 in JSON. Entry is authoritative: Event is the
// same bytes shown as JSON for people, and TLogProof repeats Index, Proof and
// Checkpoint in the c2sp.org/tlog-proof@v1 text format for tools outside
// custody.
type Receipt struct {
	Index      uint64          `json:"index"`
	LeafHash   []byte          `json:"leaf_hash"`
	Entry      []byte          `json:"entry"`
	Event      json.RawMessage `json:"event"`
	Checkpoint string          `json:"checkpoint"`
	Proof      [][]byte        `json:"proof"`
	TLogProof  string          `json:"tlog_proof"`
}
