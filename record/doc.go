// Package record defines the custody event: one handling of one sample, its
// strict JSON decoding, its canonical encoding (the exact bytes that become a
// Merkle leaf) and its identity.
//
// The package does no I/O and depends only on the standard library and
// custody's Merkle tree engine (internal/tiles, which uses
// github.com/transparency-dev/merkle), so the writer (log), the auditor
// (verify) and any third party share one parser and one attestation tree.
//
// # Schema
//
// An event is one JSON object whose values are all strings:
//
//	field     rule
//	sample    1..128 characters of [A-Za-z0-9:._-]
//	action    collected | transferred | stored | analysed | released | deleted
//	location  [a-z0-9-]{2,32}; for "transferred" the source
//	to        [a-z0-9-]{2,32}; required for "transferred" (and different from
//	          location), forbidden for every other action
//	region    [A-Z]{2,8}
//	customer  optional; exactly 64 lowercase hex digits
//	time      required; RFC 3339 date-time with upper-case T and Z or a
//	          ±hh:mm offset, optional fraction; year 1970..9999 in UTC
//	logged    RFC 3339 like time; set by the log, never by a client
//	actor     1..64 runes, each unicode.IsPrint (the ASCII space is allowed)
//	note      optional; at most 256 bytes, each rune unicode.IsPrint
//
// Input is rejected unless it is valid UTF-8, at most MaxEventSize bytes and
// exactly one JSON object followed by nothing but JSON white space. Unknown
// keys, duplicate keys (compared after unescaping), values that are not
// strings, escapes that are lone UTF-16 surrogates and the replacement
// character U+FFFD are all rejected. Every error is a *FieldError naming the
// offending field.
//
// # Canonical form
//
// The canonical form has the keys in the order of the table above, no white
// space, the optional fields to, customer, logged and note left out when
// empty, and times as UTC with whole seconds ("2006-01-02T15:04:05Z"; input
// offsets are applied and fractions of a second are dropped). Strings are
// written as raw UTF-8; only `"` and `\` are escaped, as `\"` and `\\`. So
//
//	{ "action": "transferred", "sample": "s-7f3a", "region": "EU",
//	  "time": "2024-05-01T14:00:00.25+02:00", "location": "de-fra-1",
//	  "to": "ch-zrh-1", "actor": "mover/2.1", "note": "caf\u00e9 \"A\"" }
//
// has the canonical form
//
//	{"sample":"s-7f3a","action":"transferred","location":"de-fra-1","to":"ch-zrh-1","region":"EU","time":"2024-05-01T12:00:00Z","actor":"mover/2.1","note":"café \"A\""}
//
// Decoding the canonical form gives the same Event, so Canonical is a fixed
// point. The identity of an event is the SHA-256 of its canonical form
// without logged, so submitting the same event again gives the same identity
// although the log stamps it with a new logged time.
//
// The canonical form of a valid event is never longer than about 1.2 KiB, so
// adding logged to a submission that fitted MaxEventSize always gives an entry
// that fits too.
//
// # Entry kinds
//
// A log entry is an event, as above, or an attestation: a site's signed
// statement (a signed note, see Attestation) that vouches for the events
// immediately before it. KindOf tells them apart by the first bytes ('{'
// for an event, AttestationHeader for an attestation), so logs written
// before attestations existed stay valid byte for byte, and a later version
// of either kind gets a new first line that older readers refuse.
package record
