package site

import (
	"fmt"

	"github.com/custodylog/custody/record"
)

// CheckTie checks that the attestation entry att, logged at index
// attIndex, covers the event whose identity is id, logged at index: the
// event is leaf m = index - (attIndex - COUNT) of the attestation's tree
// (an attestation covers the COUNT entries right before it) and path, its
// RFC 6962 audit path (record.AttestationPath), leads from it to the
// signed root. It returns the decoded attestation. It does not check the
// signature: VerifyEvent does both.
func CheckTie(att []byte, attIndex, index uint64, id [32]byte, path [][]byte) (record.Attestation, error) {
	a, err := record.DecodeAttestation(att)
	if err != nil {
		return a, fmt.Errorf("not a valid attestation: %w", err)
	}
	if index >= attIndex || attIndex-index > uint64(a.Count) {
		return a, fmt.Errorf("the attestation at index %d covers entries %d to %d, not the event at index %d", attIndex, int64(attIndex)-int64(a.Count), attIndex-1, index)
	}
	m := a.Count - int(attIndex-index)
	hashes := make([][32]byte, len(path))
	for i, h := range path {
		if len(h) != 32 {
			return a, fmt.Errorf("attestation path hash %d has %d bytes, want 32", i, len(h))
		}
		hashes[i] = [32]byte(h)
	}
	if !record.CheckAttestationPath(a.Root, a.Count, m, id, hashes) {
		return a, fmt.Errorf("the event is not leaf %d of the %d events the attestation at index %d signs: its path does not lead to the signed root", m, a.Count, attIndex)
	}
	return a, nil
}

// VerifyEvent checks, for one event and its receipt, what Verify checks
// for a whole batch: that att, the attestation entry at log index
// attIndex in the log named origin, is signed by a key of the set valid
// at its time, was logged (ev.Logged) in time, covers ev at log index
// index by path (CheckTie), and is by the site of ev's location. It
// returns nil or a *Finding (Index: attIndex, or index for
// site-not-allowed).
func (s *Set) VerifyEvent(origin string, att []byte, attIndex uint64, ev *record.Event, index uint64, path [][]byte) error {
	a, err := CheckTie(att, attIndex, index, ev.Identity(), path)
	if err != nil {
		return &Finding{Kind: KindBadSignature, Index: attIndex, Event: -1, Site: a.Site, Detail: err.Error(), Attestation: att}
	}
	if f := s.verify(origin, &a, att, ev.Logged, a.Count, a.Root); f != nil {
		f.Index = attIndex
		return f
	}
	if why := s.allowed(a.Site, ev.Location); why != "" {
		return &Finding{Kind: KindNotAllowed, Index: index, Event: a.Count - int(attIndex-index), Sample: ev.Sample, Site: a.Site, Detail: why}
	}
	return nil
}
