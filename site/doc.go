// Package site makes a location claim the word of the data centre where the
// handling happened: each site holds an Ed25519 key (in the signed-note key
// format of golang.org/x/mod/sumdb/note) and signs one attestation per batch
// of events it submits; the log appends the attestation as an entry of its
// own right after the events it covers (record.Attestation), and the log at
// append, the audit and fsck check that every event is tied to exactly one
// valid attestation by a site that may speak for the event's location.
//
// # Keys
//
// GenerateKey makes a key pair named for the site; NewSigner loads the
// private key as a software Signer; any other note.Signer (an HSM, a TPM, a
// cloud KMS) can sign instead (see Signer). The routing policy lists each
// site's locations and keys with their validity windows (Site, Key); NewSet
// turns them into a Set.
//
// # Signing and verifying
//
// A site calls Attest with its batch and sends the events and the
// attestation entry together. The log calls Set.Verify before it writes
// anything; the audit and fsck feed every entry to a Checker, which costs
// one SHA-256 per event (its identity), two more per event for the Merkle
// root, and one Ed25519 verification per batch.
//
// The package depends on the standard library, custody's record and
// golang.org/x/mod/sumdb/note only, so auditors' tools can use it. See
// docs/site-signing.md for what a site signature proves and what it cannot.
package site
