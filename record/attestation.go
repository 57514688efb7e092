package record

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strconv"
	"time"

	"github.com/custodylog/custody/internal/tiles"
)

// EntryKind says how to decode a log entry.
type EntryKind uint8

// The entry kinds.
const (
	// EntryUnknown is neither an event nor an attestation this package
	// knows: it starts with neither '{' nor AttestationHeader.
	EntryUnknown EntryKind = iota
	// EntryEvent starts with '{': decode it with DecodeEntry.
	EntryEvent
	// EntryAttestation starts with AttestationHeader: decode it with
	// DecodeAttestation.
	EntryAttestation
)

// String returns "event", "attestation" or "unknown".
func (k EntryKind) String() string {
	switch k {
	case EntryEvent:
		return "event"
	case EntryAttestation:
		return "attestation"
	}
	return "unknown"
}

// KindOf returns the kind of a log entry from its first bytes only; it does
// not validate the rest. JSON white space before '{' is not allowed in an
// entry (DecodeEntry requires the canonical form), so data with leading
// white space is EntryUnknown.
func KindOf(data []byte) EntryKind {
	switch {
	case len(data) > 0 && data[0] == '{':
		return EntryEvent
	case bytes.HasPrefix(data, []byte(AttestationHeader)):
		return EntryAttestation
	}
	return EntryUnknown
}

// AttestationHeader is the first line of every version-1 attestation.
const AttestationHeader = "custody-attestation/v1\n"

// MaxAttestedEvents is the most events one attestation covers (the count
// line). It bounds what a streaming checker must remember: the events an
// attestation covers are the MaxAttestedEvents entries before it at most.
const MaxAttestedEvents = 1024

// MaxAttestationSize bounds the entry DecodeAttestation accepts, in bytes.
// A valid attestation is never longer than about 500 bytes.
const MaxAttestationSize = 1024

// MaxOriginLen is the longest log origin an attestation may name.
const MaxOriginLen = 255

// Attestation is a site's signed statement that it submitted a batch of
// events to one log: "site SITE, with its key KEYID, at TIME, vouches for
// the COUNT events whose identities have the Merkle tree hash ROOT, to be
// logged in ORIGIN". In the log it is an entry of its own, right after the
// COUNT events it covers, in the order of the tree's leaves.
//
// Its entry is a signed note (C2SP signed-note) whose text is Text and whose
// only signature is the site's Ed25519 signature over Text, so
// golang.org/x/mod/sumdb/note.Open verifies it given the site's verifier
// key. This package encodes and decodes attestations; it does not check
// signatures (package site does).
type Attestation struct {
	// Origin is the origin line of the log the batch was signed for
	// (1..MaxOriginLen bytes 0x21..0x7e), so that a batch cannot be
	// replayed into another log.
	Origin string
	// Site is the site's name, [a-z0-9-]{2,32}; it is also the name of the
	// site's signed-note key.
	Site string
	// KeyID is the signed-note key hash of the site key that signed:
	// the first 4 bytes, big-endian, of SHA-256(Site + "\n" + 0x01 +
	// Ed25519 public key).
	KeyID uint32
	// Time is when the site signed, in UTC with whole seconds; year
	// 1970..9999.
	Time time.Time
	// Count is the number of events covered, 1..MaxAttestedEvents.
	Count int
	// Root is the RFC 6962 Merkle tree hash over the Count event
	// identities (Event.Identity) as leaf data, in log order: see
	// AttestationRoot.
	Root [32]byte
	// Signature is the Ed25519 signature by the key KeyID over Text().
	Signature [64]byte
}

// Text returns the signed text of the attestation: exactly
//
//	custody-attestation/v1
//	origin ORIGIN
//	site SITE
//	key KEYID            (8 lowercase hex digits)
//	time TIME            (2006-01-02T15:04:05Z)
//	count COUNT          (decimal, no leading zero)
//	root ROOT            (standard base64 with padding, 44 characters)
//
// each line ending in "\n". For an Attestation that fails Validate the
// result is deterministic but DecodeAttestation may reject it.
func (a Attestation) Text() []byte {
	return a.appendText(make([]byte, 0, 200+len(a.Origin)))
}

func (a *Attestation) appendText(b []byte) []byte {
	b = append(b, AttestationHeader...)
	b = append(b, "origin "...)
	b = append(b, a.Origin...)
	b = append(b, "\nsite "...)
	b = append(b, a.Site...)
	b = append(b, "\nkey "...)
	b = fmt.Appendf(b, "%08x", a.KeyID)
	b = append(b, "\ntime "...)
	b = appendTime(b, a.Time)
	b = append(b, "\ncount "...)
	b = strconv.AppendInt(b, int64(a.Count), 10)
	b = append(b, "\nroot "...)
	b = base64.StdEncoding.AppendEncode(b, a.Root[:])
	return append(b, '\n')
}

// Entry returns the log entry of the attestation: the signed note
//
//	TEXT
//	(an empty line)
//	— SITE SIG
//
// where "—" is U+2014 (em dash), SIG is the standard base64 (with padding)
// of the 4-byte big-endian KeyID followed by the 64-byte Signature, and the
// last line ends in "\n". It is byte for byte what
// golang.org/x/mod/sumdb/note.Sign writes for the same text and key.
func (a Attestation) Entry() []byte {
	b := a.appendText(make([]byte, 0, 320+len(a.Origin)+len(a.Site)))
	b = append(b, "\n\u2014 "...)
	b = append(b, a.Site...)
	b = append(b, ' ')
	var sig [4 + 64]byte
	binary.BigEndian.PutUint32(sig[:4], a.KeyID)
	copy(sig[4:], a.Signature[:])
	b = base64.StdEncoding.AppendEncode(b, sig[:])
	return append(b, '\n')
}

// Identity returns the SHA-256 of the attestation's entry. Two entries with
// the same identity are the same attestation (the log refuses to append one
// twice).
func (a Attestation) Identity() [32]byte {
	return sha256.Sum256(a.Entry())
}

// Validate reports the first field, in the order of Text, that breaks the
// rules given at Attestation, as a *FieldError naming it ("origin", "site",
// "time", "count"), or nil. KeyID, Root and Signature are 32, 256 and 512
// bits with no further rule.
func (a Attestation) Validate() error {
	if err := checkOrigin(a.Origin); err != nil {
		return err
	}
	if err := checkLocation("site", a.Site); err != nil {
		return err
	}
	if a.Time.IsZero() {
		return fieldErr("time", "required")
	}
	if err := checkYear("time", a.Time); err != nil {
		return err
	}
	if a.Time.Nanosecond() != 0 {
		return fieldErr("time", "fraction of a second not allowed: want whole seconds")
	}
	if a.Count < 1 || a.Count > MaxAttestedEvents {
		return fieldErr("count", fmt.Sprintf("%d events: want 1..%d", a.Count, MaxAttestedEvents))
	}
	return nil
}

// CheckOrigin reports, as a *FieldError for "origin", whether s is not a
// valid log origin for an attestation: 1..MaxOriginLen bytes, each a
// printable ASCII character other than the space (0x21..0x7e).
func CheckOrigin(s string) error {
	return checkOrigin(s)
}

func checkOrigin(s string) error {
	if s == "" {
		return fieldErr("origin", "required")
	}
	if len(s) > MaxOriginLen {
		return fieldErr("origin", fmt.Sprintf("%d bytes, more than the maximum of %d", len(s), MaxOriginLen))
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e {
			return fieldErr("origin", fmt.Sprintf("byte 0x%02x at %d not allowed: want printable ASCII without spaces", c, i))
		}
	}
	return nil
}

// CheckSite reports, as a *FieldError for "site", whether s is not a valid
// site name ([a-z0-9-]{2,32}, the same rule as a location).
func CheckSite(s string) error {
	return checkLocation("site", s)
}

// DecodeAttestation parses an attestation entry strictly: data must be
// byte for byte the Entry of an Attestation that satisfies Validate, at
// most MaxAttestationSize bytes, with exactly one signature whose name is
// the site line and whose key hash is the key line. Every error is a
// *FieldError naming the line ("origin", "site", "key", "time", "count",
// "root", "signature"), or Field "" for the entry as a whole. It does not
// verify the signature.
func DecodeAttestation(data []byte) (Attestation, error) {
	if len(data) > MaxAttestationSize {
		return Attestation{}, fieldErr("", fmt.Sprintf("attestation is %d bytes, more than the maximum of %d", len(data), MaxAttestationSize))
	}
	rest, ok := bytes.CutPrefix(data, []byte(AttestationHeader))
	if !ok {
		return Attestation{}, fieldErr("", fmt.Sprintf("not an attestation: want the first line %q", AttestationHeader[:len(AttestationHeader)-1]))
	}
	var a Attestation
	line := func(key string) (string, error) {
		k, r, ok := bytes.Cut(rest, []byte{'\n'})
		if !ok {
			return "", fieldErr(key, "unexpected end of attestation: want the line "+strconv.Quote(key+" …"))
		}
		v, ok := bytes.CutPrefix(k, []byte(key+" "))
		if !ok {
			return "", fieldErr(key, fmt.Sprintf("line %.40q: want %q followed by a space and the value", k, key))
		}
		rest = r
		return string(v), nil
	}

	v, err := line("origin")
	if err != nil {
		return Attestation{}, err
	}
	if err := checkOrigin(v); err != nil {
		return Attestation{}, err
	}
	a.Origin = v

	if v, err = line("site"); err != nil {
		return Attestation{}, err
	}
	if err := checkLocation("site", v); err != nil {
		return Attestation{}, err
	}
	a.Site = v

	if v, err = line("key"); err != nil {
		return Attestation{}, err
	}
	if a.KeyID, err = parseKeyID(v); err != nil {
		return Attestation{}, err
	}

	if v, err = line("time"); err != nil {
		return Attestation{}, err
	}
	if a.Time, err = parseTime("time", v); err != nil {
		return Attestation{}, err
	}
	if err := checkYear("time", a.Time); err != nil {
		return Attestation{}, err
	}
	var tb [len(timeLayout)]byte
	if string(appendTime(tb[:0], a.Time)) != v {
		return Attestation{}, fieldErr("time", fmt.Sprintf("%q is not in canonical form: want UTC with whole seconds, such as 2024-05-01T12:00:00Z", v))
	}

	if v, err = line("count"); err != nil {
		return Attestation{}, err
	}
	n, err := strconv.Atoi(v)
	if err != nil || strconv.Itoa(n) != v || n < 1 || n > MaxAttestedEvents {
		return Attestation{}, fieldErr("count", fmt.Sprintf("%.20q: want a decimal number 1..%d without leading zeros", v, MaxAttestedEvents))
	}
	a.Count = n

	if v, err = line("root"); err != nil {
		return Attestation{}, err
	}
	if err := decodeB64(a.Root[:], v); err != nil {
		return Attestation{}, fieldErr("root", fmt.Sprintf("%.60q: want the standard base64 of 32 bytes (44 characters): %v", v, err))
	}

	// The signature block: an empty line, then exactly one signature line.
	const dash = "\n\u2014 "
	r, ok := bytes.CutPrefix(rest, []byte(dash))
	if !ok {
		return Attestation{}, fieldErr("signature", "want an empty line and then one signature line \"— SITE SIGNATURE\" after the root line")
	}
	sigLine, after, ok := bytes.Cut(r, []byte{'\n'})
	if !ok || len(after) != 0 {
		return Attestation{}, fieldErr("signature", "want exactly one signature line, ending in a newline, and nothing after it")
	}
	name, b64, ok := bytes.Cut(sigLine, []byte{' '})
	if !ok || string(name) != a.Site {
		return Attestation{}, fieldErr("signature", fmt.Sprintf("signature line names %.40q: want the site %q", name, a.Site))
	}
	var sig [4 + 64]byte
	if err := decodeB64(sig[:], string(b64)); err != nil {
		return Attestation{}, fieldErr("signature", fmt.Sprintf("want the standard base64 of a 4-byte key hash and a 64-byte Ed25519 signature (92 characters): %v", err))
	}
	if h := binary.BigEndian.Uint32(sig[:4]); h != a.KeyID {
		return Attestation{}, fieldErr("signature", fmt.Sprintf("signature by key %08x, but the key line says %08x", h, a.KeyID))
	}
	copy(a.Signature[:], sig[4:])
	return a, nil
}

func parseKeyID(v string) (uint32, error) {
	if len(v) != 8 {
		return 0, fieldErr("key", fmt.Sprintf("%.20q: want 8 lowercase hex digits", v))
	}
	var id uint32
	for i := 0; i < 8; i++ {
		c := v[i]
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		default:
			return 0, fieldErr("key", fmt.Sprintf("%q: want 8 lowercase hex digits", v))
		}
		id = id<<4 | uint32(c)
	}
	return id, nil
}

// decodeB64 decodes the canonical standard base64 of exactly len(dst)
// bytes (at most 68).
func decodeB64(dst []byte, s string) error {
	if len(s) != base64.StdEncoding.EncodedLen(len(dst)) {
		return fmt.Errorf("%d characters", len(s))
	}
	// Decode may write up to DecodedLen(len(s)) bytes (more than len(dst)
	// when the padding is missing), so it decodes into a buffer of that size.
	var buf [72]byte
	n, err := base64.StdEncoding.Strict().Decode(buf[:base64.StdEncoding.DecodedLen(len(s))], []byte(s))
	if err != nil {
		return err
	}
	if n != len(dst) {
		return fmt.Errorf("%d bytes", n)
	}
	copy(dst, buf[:n])
	return nil
}

// AttestationRoot returns the RFC 6962 Merkle tree hash of the leaves ids
// (each leaf's data is the 32-byte identity): a leaf hashes to
// SHA-256(0x00 || id) and a node to SHA-256(0x01 || left || right), the
// left subtree holding the largest power of two of leaves smaller than the
// total. It is the tree hash golang.org/x/mod/sumdb/tlog computes for
// records with these data. ids must not be empty (the root of no leaves is
// SHA-256 of nothing, which no attestation uses). The tree is custody's
// one implementation, package internal/tiles.
func AttestationRoot(ids [][32]byte) [32]byte {
	var rb RootBuilder
	for i := range ids {
		rb.Add(&ids[i])
	}
	return rb.Root()
}

// RootBuilder computes AttestationRoot incrementally, one identity at a
// time, in O(log n) memory and without allocating: a compact range kept
// by tiles.AppendLeaf. The zero value is an empty builder.
type RootBuilder struct {
	rng   [11]tiles.Hash // the compact range: one hash per 1 bit of n
	depth int            // len of the compact range
	n     int
}

// Reset empties the builder.
func (rb *RootBuilder) Reset() { rb.depth, rb.n = 0, 0 }

// Len returns the number of identities added since the last Reset.
func (rb *RootBuilder) Len() int { return rb.n }

// Add adds the next leaf. It panics after MaxAttestedEvents leaves (more
// than any attestation covers).
func (rb *RootBuilder) Add(id *[32]byte) { rb.AddLeaf(IdentityLeaf(id)) }

// IdentityLeaf is the leaf hash of identity id in an attestation's tree
// (RFC 6962: SHA-256 of 0x00 and id), which RootBuilder.AddLeaf takes: a
// caller may compute it on another core.
func IdentityLeaf(id *[32]byte) [32]byte { return tiles.LeafHash(id[:]) }

// AddLeaf adds the next identity by its leaf hash, IdentityLeaf(id): Add
// for a caller that hashed the identity already. It panics past
// MaxAttestedEvents leaves.
func (rb *RootBuilder) AddLeaf(leaf [32]byte) {
	if rb.n >= MaxAttestedEvents {
		panic("record: RootBuilder: more than MaxAttestedEvents leaves")
	}
	rng := tiles.AppendLeaf(rb.rng[:rb.depth], uint64(rb.n), leaf)
	rb.depth = len(rng)
	rb.n++
}

// Root returns the tree hash of the leaves added so far (SHA-256 of
// nothing if none). It does not change the builder.
func (rb *RootBuilder) Root() [32]byte { return tiles.FoldRoot(rb.rng[:rb.depth]) }

// AttestationPath returns the RFC 6962 audit path (PATH(m, D[n]), leaf
// first) that proves ids[m] is leaf m of AttestationRoot(ids): at most
// log2(len(ids))+1 hashes, 8 for a batch of 256. It panics if m is out of
// range.
func AttestationPath(ids [][32]byte, m int) [][32]byte {
	if m < 0 || m >= len(ids) {
		panic("record: AttestationPath: leaf index out of range")
	}
	leaves := make([]tiles.Hash, len(ids))
	for i := range ids {
		leaves[i] = tiles.LeafHash(ids[i][:])
	}
	return tiles.InclusionPath(leaves, m)
}

// CheckAttestationPath reports whether path proves that id is leaf m of a
// tree of count leaves with the hash root (RFC 6962 section 2.1.1).
func CheckAttestationPath(root [32]byte, count, m int, id [32]byte, path [][32]byte) bool {
	if count < 1 || count > MaxAttestedEvents || m < 0 || m >= count {
		return false
	}
	r, err := tiles.RootFromPath(uint64(m), uint64(count), tiles.LeafHash(id[:]), path)
	return err == nil && r == root
}
