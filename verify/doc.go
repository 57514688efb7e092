// Package verify is the reader side of custody: everything an auditor, a
// witness or the holder of a receipt needs to check what a custody log
// publishes, and nothing else.
//
// It knows nothing of what the entries mean: custody's events (package
// record), the routing policy and the audit of every event against it are
// in package audit, which reads entries through this package's [Client]
// ([Client.ReadBundles]).
//
// It is deliberately dependency-light. It imports only the standard library,
// golang.org/x/mod/sumdb/note (signed notes), github.com/transparency-dev/merkle
// (RFC 6962 proofs) and custody's internal tree engine. It never uses
// cgo, a database, a command-line framework or an HTTP server, so that an
// auditor can install it, read it and build it with CGO_ENABLED=0
// (TestDependencies enforces this). The log
// (the writer side) uses this same package to check every checkpoint before
// publishing it, so writer and readers share one parser.
//
// # What is here
//
//   - Formats: [Checkpoint] ([ParseCheckpoint], [OpenCheckpoint]), signed
//     notes and keys ([NewVerifier], [LoadVerifierKey]), tile paths
//     ([TileAddr]), entry bundles ([ParseBundle]), proofs ([CheckInclusion],
//     [CheckConsistency], [ParseInclusionProofJSON]) and offline proofs
//     ([TLogProof]).
//   - Reading a log: a [Client] over a [Source] (a base URL or a
//     directory, [OpenSource]) verifies checkpoints, authenticates every
//     tile against the signed root, builds proofs ([Client.CheckExtends])
//     and streams authenticated entries ([Client.Entries],
//     [Client.ReadBundles]).
//   - Receipts: [CheckReceipt] checks one offline.
//   - Witnesses: a [TrustPolicy] says whose cosignatures a checkpoint needs
//     ([NewCosignatureVerifier]).
//   - Failures: a log that misbehaves yields a *[VerificationError] with
//     publishable [Evidence] ([WriteEvidence]); anything else is a plain
//     error.
//
// The format layer (checkpoints, tiles, bundles, proofs) is strict. Every parser is strict and canonical:
// a value has exactly one accepted encoding, and for every input a parser
// accepts, formatting the result reproduces the input byte for byte.
//
// # Formats
//
// Checkpoints (c2sp.org/tlog-checkpoint) are the text of a signed note
// (c2sp.org/signed-note):
//
//	example.com/log/testdata
//	15
//	rKbDipCvhuX1GZ7g5BBe8sA6BbJ7ja/1nk427v383cs=
//
//	— example.com/log/testdata M9e0luh4jTG+UMBqOUo9/q+yAEvx1ilBEniMvjf1zfcBOhg+CKubMt53MvIt/uEWP6zdkdIQzd/fmwlM/dlPWF74ewI=
//
// The lines are the origin, the tree size in decimal without leading zeros,
// and the standard base64 of the 32-byte RFC 6962 root hash, optionally
// followed by non-empty extension lines. See [ParseCheckpoint] and
// [OpenCheckpoint].
//
// Tiles (c2sp.org/tlog-tiles) have height 8 and width 256 and live at
// tile/<L>/<N>[.p/<W>]; entry bundles live at tile/entries/<N>[.p/<W>]. <N>
// is written in base 1000 as 3-digit groups, all but the last prefixed by
// "x": 1234067 is x001/x234/067. See [TileAddr] and [ParseTilePath].
//
// An entry bundle is a sequence of entries, each a 2-byte big-endian length
// followed by that many bytes. See [AppendBundleEntry] and [ParseBundle].
//
// Tree hashing follows RFC 6962: a leaf hash is SHA-256(0x00 || entry) and an
// interior node is SHA-256(0x01 || left || right). See [LeafHash], [NodeHash],
// [CheckInclusion] and [CheckConsistency].
//
// Offline proofs (c2sp.org/tlog-proof) combine an index, an inclusion proof
// and a signed checkpoint. See [TLogProof].
//
// All base64 is standard RFC 4648 base64 with padding; all newlines are the
// single byte 0x0A.
package verify
