// Package sampleindex is custody's verifiable sample index: an
// authenticated map from SHA-256(sample id) to that sample's own
// append-only list of log entries, whose root every checkpoint commits in
// an extension line, so that a server can prove that the chain of events
// it returns for one sample is complete, or that a sample was never
// logged, without the verifier reading the rest of the log.
//
// The exact formats (hashes, tiles, proofs, checkpoint line) are specified
// in docs/sample-index.md; this package is their one implementation.
//
//   - Per-sample list: the sample's entries in log order, element j being
//     (log index, entry leaf hash); list leaf = SHA-256(0x00 || index as 8
//     bytes big-endian || leaf hash); list root = the RFC 6962 root of
//     those leaves ([ListLeafHash], [ListRoot]).
//   - Map: a compact binary sparse Merkle tree over 256-bit keys (a key
//     alone in a subtree is lifted to the top of that subtree); leaf =
//     SHA-256(0x10 || key || n || list root), interior node =
//     SHA-256(0x11 || left || right), empty subtree = 32 zero bytes
//     ([MapLeafHash], [MapNodeHash], [EmptyMapRoot]).
//   - Storage: the map is kept in "node tiles" of [Stride] bits
//     ([TileID], [ParseTile]); [Map] applies batches of changes, rehashing
//     only the tiles on changed paths, and hands back the tiles to write
//     ([Map.Flush]).
//   - Proofs: [Map.Prove] gives a [MapProof] (membership, or absence);
//     [BuildProof] assembles a complete [Proof] of a sample's chain (the
//     entries, a batch inclusion proof in the log tree and the map proof),
//     [Proof.Marshal] and [ParseProof] encode it byte for byte, and
//     [Verify] checks it against a verified checkpoint.
//   - Checkpoint: [FormatExtension] and [ParseExtension] handle the
//     "custody-sample-index" extension line.
//
// The package depends on the standard library, record,
// github.com/transparency-dev/merkle and golang.org/x/mod only: no cgo, no
// database, no server. Verifiers and auditors import it.
package sampleindex
