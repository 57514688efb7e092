package site

import (
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/custodylog/custody/record"
)

// Attest signs a batch: it returns the attestation, and its log entry,
// by which the site s vouches at time now for events (in the order they
// will be logged) to be logged in the log named origin. events must be
// 1..record.MaxAttestedEvents valid events; their Logged fields are
// ignored (the identity leaves logged out). now is truncated to whole
// seconds in UTC.
//
// pub, if not nil, is the site's public key: Attest then checks the
// signature before returning it, which catches a hardware Signer that
// signs with another key or algorithm. The software signer from NewSigner
// never needs it.
//
// The site sends the events and the entry to the log together (custody's
// HTTP API: POST /v1/events with the attestation); the log appends the
// events and then the entry.
func Attest(s Signer, pub ed25519.PublicKey, origin string, now time.Time, events []record.Event) (record.Attestation, []byte, error) {
	if len(events) == 0 || len(events) > record.MaxAttestedEvents {
		return record.Attestation{}, nil, fmt.Errorf("site %s: cannot attest %d events: want 1..%d per attestation (split the batch)", s.Name(), len(events), record.MaxAttestedEvents)
	}
	var rb record.RootBuilder
	for i := range events {
		if err := events[i].Validate(); err != nil {
			return record.Attestation{}, nil, fmt.Errorf("site %s: event %d (sample %q): %w", s.Name(), i, events[i].Sample, err)
		}
		id := events[i].Identity()
		rb.Add(&id)
	}
	return AttestRoot(s, pub, origin, now, len(events), rb.Root())
}

// AttestRoot is Attest for a batch of count events whose
// record.AttestationRoot the caller computed.
func AttestRoot(s Signer, pub ed25519.PublicKey, origin string, now time.Time, count int, root [32]byte) (record.Attestation, []byte, error) {
	a := record.Attestation{
		Origin: origin, Site: s.Name(), KeyID: s.KeyHash(),
		Time: now.UTC().Truncate(time.Second), Count: count, Root: root,
	}
	if err := a.Validate(); err != nil {
		return record.Attestation{}, nil, fmt.Errorf("site %s: %w", s.Name(), err)
	}
	text := a.Text()
	sig, err := s.Sign(text)
	if err != nil {
		return record.Attestation{}, nil, fmt.Errorf("site %s: signing the attestation: %w", s.Name(), err)
	}
	if len(sig) != ed25519.SignatureSize {
		return record.Attestation{}, nil, fmt.Errorf("site %s: signer returned %d bytes, not a %d-byte Ed25519 signature", s.Name(), len(sig), ed25519.SignatureSize)
	}
	if pub != nil && !ed25519.Verify(pub, text, sig) {
		return record.Attestation{}, nil, fmt.Errorf("site %s: the signer's signature does not verify with the site's public key (wrong key or not pure Ed25519)", s.Name())
	}
	copy(a.Signature[:], sig)
	return a, a.Entry(), nil
}
