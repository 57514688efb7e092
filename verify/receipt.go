package verify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

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
	// Attestation, for an event a site signed, ties it to the site's
	// attestation (ReceiptAttestation); absent for unsigned events.
	Attestation *ReceiptAttestation `json:"attestation,omitempty"`
}

// ErrMalformedReceipt is wrapped by the error CheckReceipt returns for
// input that is not a receipt at all: it lacks the checkpoint, the entry or
// the leaf hash, or its checkpoint is not a checkpoint note (a checkpoint
// text, a blank line and signature lines, whatever they say). Such
// input is a usage or input error, not evidence against the log.
var ErrMalformedReceipt = errors.New("not a well-formed receipt")

// wellFormed reports why r is not a receipt at all, or nil.
func (r Receipt) wellFormed() error {
	var missing []string
	if r.Checkpoint == "" {
		missing = append(missing, "checkpoint")
	}
	if len(r.Entry) == 0 {
		missing = append(missing, "entry")
	}
	if len(r.LeafHash) == 0 {
		missing = append(missing, "leaf_hash")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: it has no %s", ErrMalformedReceipt, strings.Join(missing, ", no "))
	}
	if _, err := parseNoteCheckpoint([]byte(r.Checkpoint)); err != nil {
		return fmt.Errorf("%w: its checkpoint is not a checkpoint note: %w", ErrMalformedReceipt, err)
	}
	return nil
}

// CheckReceipt verifies a receipt offline: the checkpoint's signature by one
// of verifiers for the given origin (and the witness quorum, if trust is
// not nil), the entry's leaf hash, the inclusion proof of the entry at its
// index against the checkpoint's root, and that the receipt's other views
// say the same as its entry, index, proof and checkpoint: event, if
// present, is the same JSON value as the entry, and tlog_proof, if present,
// has the same index, proof and checkpoint, and attestation, if present,
// is in the same tree at its index after the entry (its signature and its
// tie to the entry are the application's to check: audit.CheckReceiptSites).
// It returns the checkpoint and
// the entry, which it has proved the log committed to at r.Index. What the
// entry means is the application's: custody's callers decode it with
// record.DecodeEntry, and report an entry that does not decode as a
// bad-receipt *VerificationError (see ReceiptError).
//
// Input that is not a receipt at all (no checkpoint, entry or leaf hash, or
// a checkpoint that is not a checkpoint note) is a plain error
// wrapping ErrMalformedReceipt. Every failure of a well-formed receipt is a
// *VerificationError with evidence; the evidence holds the receipt's
// checkpoint verbatim only if it is a checkpoint note for origin (see
// Evidence.NewCheckpoint).
func CheckReceipt(r Receipt, origin string, verifiers note.Verifiers, trust *TrustPolicy) (Checkpoint, []byte, error) {
	if err := r.wellFormed(); err != nil {
		return Checkpoint{}, nil, err
	}
	bad := func(what string, err error) (Checkpoint, []byte, error) {
		return Checkpoint{}, nil, ReceiptError(r, origin, what, err)
	}
	cp, _, err := OpenCheckpoint([]byte(r.Checkpoint), origin, verifiers)
	if err != nil {
		return bad("the receipt's checkpoint does not verify with the log's key", err)
	}
	if trust != nil {
		if err := trust.check([]byte(r.Checkpoint), cp); err != nil {
			return Checkpoint{}, nil, err
		}
	}
	leaf := LeafHash(r.Entry)
	if len(r.LeafHash) != HashSize || Hash(r.LeafHash) != leaf {
		return bad("leaf_hash is not the hash of the entry", nil)
	}
	proof := make([]Hash, len(r.Proof))
	for i, p := range r.Proof {
		if len(p) != HashSize {
			return bad(fmt.Sprintf("proof hash %d has %d bytes, want %d", i, len(p), HashSize), nil)
		}
		proof[i] = Hash(p)
	}
	if err := CheckInclusion(r.Index, cp.Size, leaf, proof, cp.Root); err != nil {
		return bad(fmt.Sprintf("the inclusion proof of entry %d does not lead to the root of the signed tree of size %d", r.Index, cp.Size), err)
	}
	if len(r.Event) > 0 {
		if same, err := sameJSON(r.Event, r.Entry); err != nil || !same {
			return bad("the receipt's event is not its entry", err)
		}
	}
	if r.TLogProof != "" {
		tp, err := ParseTLogProof([]byte(r.TLogProof))
		if err != nil {
			return bad("tlog_proof is malformed", err)
		}
		same := tp.Index == r.Index && string(tp.Checkpoint) == r.Checkpoint && len(tp.Proof) == len(proof)
		for i := 0; same && i < len(proof); i++ {
			same = tp.Proof[i] == proof[i]
		}
		if !same {
			return bad("tlog_proof disagrees with the receipt's index, proof or checkpoint", nil)
		}
	}
	if r.Attestation != nil {
		if err := r.Attestation.check(r.Index, cp); err != nil {
			return bad("the receipt's attestation is not in the log where it says", err)
		}
	}
	return cp, r.Entry, nil
}

// ReceiptError returns the *VerificationError of kind bad-receipt that
// CheckReceipt returns for a failure of r, for checks of the entry that
// only the application can make (that it decodes, that it is the event the
// caller submitted): what says what is wrong, err is the cause or nil.
// The evidence names origin and r.Index, and holds r.Checkpoint verbatim
// only if it is a checkpoint note for origin.
func ReceiptError(r Receipt, origin, what string, err error) *VerificationError {
	idx := r.Index
	ev := Evidence{Kind: EvidenceBadReceipt, What: what, Origin: origin, Index: &idx, Time: time.Now().UTC()}
	ev.setNewCheckpoint([]byte(r.Checkpoint))
	return &VerificationError{Evidence: ev, Err: err}
}

// sameJSON reports whether view and entry are the same JSON value: objects
// with the same members in any order, strings equal after unescaping,
// numbers equal as written. It fails if either is not one JSON value.
func sameJSON(view, entry []byte) (bool, error) {
	decode := func(b []byte) (any, error) {
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		var v any
		if err := d.Decode(&v); err != nil {
			return nil, err
		}
		if _, err := d.Token(); err != io.EOF {
			return nil, errors.New("data after the JSON value")
		}
		return v, nil
	}
	v, err := decode(view)
	if err != nil {
		return false, fmt.Errorf("event: %w", err)
	}
	e, err := decode(entry)
	if err != nil {
		return false, fmt.Errorf("entry is not JSON: %w", err)
	}
	return reflect.DeepEqual(v, e), nil
}

// CheckTLogProof verifies a bare c2sp.org/tlog-proof@v1 for entry offline,
// like CheckReceipt (without the views a receipt adds), and returns the
// checkpoint and the proof's index.
func CheckTLogProof(text, entry []byte, origin string, verifiers note.Verifiers, trust *TrustPolicy) (Checkpoint, uint64, error) {
	tp, err := ParseTLogProof(text)
	if err != nil {
		return Checkpoint{}, 0, fmt.Errorf("reading tlog-proof: %w", err)
	}
	leaf := LeafHash(entry)
	r := Receipt{Index: tp.Index, LeafHash: leaf[:], Entry: entry, Checkpoint: string(tp.Checkpoint), TLogProof: string(text)}
	for _, h := range tp.Proof {
		r.Proof = append(r.Proof, append([]byte(nil), h[:]...))
	}
	cp, _, err := CheckReceipt(r, origin, verifiers, trust)
	return cp, tp.Index, err
}
