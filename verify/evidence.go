package verify

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Kinds of [Evidence]: what a log did wrong. Every *VerificationError
// carries exactly one of these in Evidence.Kind.
const (
	// EvidenceBadSignature: a checkpoint is not a validly signed checkpoint
	// of the expected log (malformed note, no signature from a known log
	// key, a bad signature from a known log or witness key, a malformed
	// checkpoint body or a wrong origin under a valid signature), or the
	// trust policy's log did not sign it.
	EvidenceBadSignature = "bad-signature"
	// EvidenceRootMismatch: hashes the log serves (or entries an auditor
	// replayed) recompute to a root other than the one in a checkpoint the
	// log signed for that size.
	EvidenceRootMismatch = "root-mismatch"
	// EvidenceInconsistent: a consistency proof from an older signed
	// checkpoint to a newer one fails: the newer tree does not extend the
	// older one.
	EvidenceInconsistent = "inconsistent"
	// EvidenceFork: two checkpoints the log signed have the same size but
	// different roots.
	EvidenceFork = "fork"
	// EvidenceRollback: the log signed a checkpoint smaller than one it
	// signed before.
	EvidenceRollback = "rollback"
	// EvidenceBadEntry: an entry bundle is malformed, has the wrong number
	// of entries, or holds an entry whose leaf hash differs from the
	// authenticated level-0 tile.
	EvidenceBadEntry = "bad-entry"
	// EvidenceBadTile: a hash tile has the wrong length for its address, or
	// a full tile does not hash to the value its authenticated parent tile
	// holds for it.
	EvidenceBadTile = "bad-tile"
	// EvidenceQuorum: a checkpoint lacks the witness cosignatures the trust
	// policy's quorum requires.
	EvidenceQuorum = "quorum"
	// EvidenceBadReceipt: a receipt (or tlog-proof) does not verify: its
	// checkpoint, proof or entry is wrong.
	EvidenceBadReceipt = "bad-receipt"
)

// Evidence is a self-contained, publishable record of a log failing
// verification: what was wrong and the signed data that shows it. Byte
// strings (proof hashes and roots) are standard base64; checkpoints are the
// complete signed notes as the log served them, so that anyone can check the
// log's signature on them. Fields that do not apply are empty.
type Evidence struct {
	// Kind is one of the Evidence* constants.
	Kind string `json:"kind"`
	// What is one or two sentences for people describing the failure.
	What string `json:"what"`
	// Origin is the log's origin.
	Origin string `json:"origin,omitempty"`
	// OldCheckpoint is the earlier signed checkpoint involved (for
	// inconsistent, fork, rollback), verbatim.
	OldCheckpoint string `json:"old_checkpoint,omitempty"`
	// NewCheckpoint is the signed checkpoint that failed or against which
	// the failure was found, verbatim, if known. It is set only to bytes
	// that are a syntactically valid signed note whose text is a valid
	// checkpoint for Origin; anything else that was served or handed over
	// as the checkpoint is recorded only as NewCheckpointSHA256 and
	// NewCheckpointBytes (see there).
	NewCheckpoint string `json:"new_checkpoint,omitempty"`
	// NewCheckpointSHA256 (lowercase hex, as sha256sum prints it) and
	// NewCheckpointBytes (the length) describe what was served as the
	// checkpoint when it is not a signed checkpoint note for Origin.
	// Such bytes prove nothing against the log, and they may be anything:
	// a hostile log directory or redirect could have pointed the auditor at
	// a local file or an internal web page, so they are never copied into
	// evidence, which is meant to be published.
	NewCheckpointSHA256 string `json:"new_checkpoint_sha256,omitempty"`
	NewCheckpointBytes  int    `json:"new_checkpoint_bytes,omitempty"`
	// OldSize and NewSize are the tree sizes of OldCheckpoint and
	// NewCheckpoint.
	OldSize uint64 `json:"old_size,omitempty"`
	NewSize uint64 `json:"new_size,omitempty"`
	// Proof is the consistency or inclusion proof that failed, base64
	// hashes.
	Proof []string `json:"proof,omitempty"`
	// Expected is the hash that was signed for or authenticated (a root, a
	// parent tile hash, a level-0 leaf hash), base64.
	Expected string `json:"expected,omitempty"`
	// Computed is the hash recomputed from what the log served, base64.
	Computed string `json:"computed,omitempty"`
	// Index is the leaf index involved, for bad-entry.
	Index *uint64 `json:"index,omitempty"`
	// Tile is the tile or entry bundle path involved, for bad-tile and
	// bad-entry.
	Tile string `json:"tile,omitempty"`
	// Time is when the failure was detected.
	Time time.Time `json:"time"`
}

// VerificationError is returned when a log misbehaved: what it served
// contradicts what it signed, or its signatures do not verify. It is never
// returned for network, disk or usage errors, which are plain errors; so a
// caller can tell "the log is lying" (exit code 2) from "could not check"
// (exit code 3) with [IsVerificationError].
type VerificationError struct {
	// Evidence describes the failure and carries the data that proves it.
	Evidence Evidence
	// Err is the underlying error, if any (a *note.InvalidSignatureError,
	// a *consistencyError, a parse error …); it may be nil.
	Err error
}

// Error returns "log <origin> failed verification (<kind>): <what>[: <err>]".
func (e *VerificationError) Error() string {
	s := "log"
	if e.Evidence.Origin != "" {
		s += " " + e.Evidence.Origin
	}
	s += fmt.Sprintf(" failed verification (%s): %s", e.Evidence.Kind, e.Evidence.What)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns Err, so errors.Is and errors.As see the underlying cause.
func (e *VerificationError) Unwrap() error { return e.Err }

// IsVerificationError reports whether err is or wraps a *VerificationError,
// and returns it.
func IsVerificationError(err error) (*VerificationError, bool) {
	var ve *VerificationError
	if errors.As(err, &ve) {
		return ve, true
	}
	return nil, false
}

// setNewCheckpoint records raw, what was served or given as the checkpoint,
// in e: verbatim in NewCheckpoint if it looks like a checkpoint note for
// e.Origin (see parseNoteCheckpoint; its signatures are not checked here: a
// badly signed checkpoint is exactly what evidence shows), and otherwise
// only as its SHA-256 and length.
func (e *Evidence) setNewCheckpoint(raw []byte) {
	e.NewCheckpoint, e.NewCheckpointSHA256, e.NewCheckpointBytes = "", "", 0
	if cp, err := parseNoteCheckpoint(raw); err == nil && e.Origin != "" && cp.Origin == e.Origin {
		e.NewCheckpoint = string(raw)
		return
	}
	sum := sha256.Sum256(raw)
	e.NewCheckpointSHA256 = hex.EncodeToString(sum[:])
	e.NewCheckpointBytes = len(raw)
}

// parseNoteCheckpoint parses the text of what claims to be a signed
// checkpoint note without checking its signature lines: raw must be at most
// maxCheckpointSize bytes in the signed-note character set, and the text
// before its last blank line must be a valid checkpoint (ParseCheckpoint).
func parseNoteCheckpoint(raw []byte) (Checkpoint, error) {
	if len(raw) > maxCheckpointSize {
		return Checkpoint{}, fmt.Errorf("%d bytes, more than the %d-byte limit", len(raw), maxCheckpointSize)
	}
	if err := checkNoteCharset(raw); err != nil {
		return Checkpoint{}, err
	}
	split := bytes.LastIndex(raw, []byte("\n\n"))
	if split < 0 {
		return Checkpoint{}, errors.New("no blank line between text and signatures")
	}
	return ParseCheckpoint(raw[:split+1])
}

// b64 is the standard base64 of a hash, as used in Evidence.
func b64(h Hash) string { return base64.StdEncoding.EncodeToString(h[:]) }

// b64Proof is the standard base64 of each proof hash.
func b64Proof(p []Hash) []string {
	out := make([]string, len(p))
	for i, h := range p {
		out[i] = b64(h)
	}
	return out
}

// WriteEvidence writes ev as indented JSON into dir, creating dir (mode
// 0700) if needed, and returns the file's path. The name,
// evidence-<kind>-<12 hex digits>.json, is derived from the evidence
// without its time, so that the same failure seen again (by a monitor,
// every round) keeps one file. The file is created exclusively with mode
// 0600 (its owner decides whether to publish it); an existing file of that
// name is kept as it is.
func WriteEvidence(dir string, ev Evidence) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	timeless := ev
	timeless.Time = time.Time{}
	id, _ := json.Marshal(timeless)
	sum := sha256.Sum256(id)
	p := filepath.Join(dir, fmt.Sprintf("evidence-%s-%x.json", ev.Kind, sum[:6]))
	b, err := json.MarshalIndent(ev, "", "  ")
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return p, nil
	}
	if err != nil {
		return "", err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		os.Remove(p)
		return "", err
	}
	if err := f.Close(); err != nil {
		os.Remove(p)
		return "", err
	}
	return p, nil
}
