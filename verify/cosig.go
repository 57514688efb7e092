package verify

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// Sizes of a c2sp.org/tlog-cosignature cosignature/v1 signature: an 8-byte
// big-endian timestamp and a 64-byte Ed25519 signature (72 bytes), preceded
// on the note signature line by the 4-byte key ID (76 bytes).
const (
	cosigTimestampSize = 8
	cosigSize          = cosigTimestampSize + ed25519.SignatureSize
	cosigLineSize      = 4 + cosigSize
)

// cosignatureMessage returns the bytes a cosignature/v1 signature covers:
// "cosignature/v1\ntime <ts>\n" followed by the checkpoint note text.
func cosignatureMessage(ts uint64, text []byte) []byte {
	var b bytes.Buffer
	b.Grow(32 + len(text))
	b.WriteString("cosignature/v1\ntime ")
	b.WriteString(strconv.FormatUint(ts, 10))
	b.WriteByte('\n')
	b.Write(text)
	return b.Bytes()
}

// cosignatureKeyHash is the key ID of a cosignature/v1 key:
// SHA-256(name || 0x0A || 0x04 || pub)[:4], big-endian.
func cosignatureKeyHash(name string, pub []byte) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{'\n', sigTypeCosignature})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil)[:4])
}

// CosignatureVKey returns the verifier key string of a cosignature/v1
// (type 0x04) key: "<name>+<8 hex key ID>+<base64(0x04 || pub)>". It does
// not check name or pub; NewCosignatureVerifier rejects the result if
// either is invalid.
func CosignatureVKey(name string, pub ed25519.PublicKey) string {
	id := cosignatureKeyHash(name, pub)
	return fmt.Sprintf("%s+%08x+%s", name, id,
		base64.StdEncoding.EncodeToString(append([]byte{sigTypeCosignature}, pub...)))
}

// cosigVerifier verifies c2sp.org/tlog-cosignature cosignature/v1
// signatures. It implements note.Verifier.
type cosigVerifier struct {
	name string
	hash uint32
	pub  ed25519.PublicKey
	vkey string
}

func (v *cosigVerifier) Name() string    { return v.name }
func (v *cosigVerifier) KeyHash() uint32 { return v.hash }

// Verify reports whether sig (the signature blob after the key ID: an
// 8-byte timestamp and a 64-byte Ed25519 signature) is a valid
// cosignature/v1 signature on the note text msg. It never panics.
func (v *cosigVerifier) Verify(msg, sig []byte) bool {
	if len(sig) != cosigSize {
		return false
	}
	ts := binary.BigEndian.Uint64(sig[:cosigTimestampSize])
	if ts > math.MaxInt64 {
		return false
	}
	return ed25519.Verify(v.pub, cosignatureMessage(ts, msg), sig[cosigTimestampSize:])
}

// NewCosignatureVerifier returns a note.Verifier for a witness's
// cosignature/v1 verifier key "<name>+<8 lowercase hex key ID>+<base64(0x04
// || 32-byte Ed25519 public key)>" (c2sp.org/tlog-cosignature). It checks
// the key strictly: a valid key name, a lowercase key ID equal to
// SHA-256(name || 0x0A || 0x04 || pub)[:4], canonical standard base64, type
// 0x04 and a 32-byte key. Its Verify accepts only a 72-byte timestamped
// signature with a timestamp at most 2^63-1 whose Ed25519 signature covers
// "cosignature/v1\ntime <timestamp>\n" followed by the note text; it never
// panics on any input. It does not judge the timestamp: see
// [CosignatureTime] and [TrustPolicy.Evaluate].
//
// A cosignature verifier never accepts a plain Ed25519 note signature, and
// a plain verifier for the same public key (type 0x01) has a different key
// ID, so it never matches a cosignature line.
func NewCosignatureVerifier(vkey string) (note.Verifier, error) {
	v, err := newCosigVerifier(vkey)
	if err != nil {
		return nil, err
	}
	return v, nil
}

func newCosigVerifier(vkey string) (*cosigVerifier, error) {
	name, id, key, err := splitVKey(vkey)
	if err != nil {
		return nil, fmt.Errorf("cosignature verifier key: %w", err)
	}
	switch key[0] {
	case sigTypeCosignature:
	case sigTypeEd25519:
		return nil, errors.New("cosignature verifier key: key type 0x01 is a plain Ed25519 note key (a log key); a witness cosignature key has type 0x04")
	default:
		return nil, fmt.Errorf("cosignature verifier key: key type %#02x is not supported; want cosignature/v1, type 0x04", key[0])
	}
	if len(key) != 1+ed25519.PublicKeySize {
		return nil, fmt.Errorf("cosignature verifier key: Ed25519 public key is %d bytes, want %d", len(key)-1, ed25519.PublicKeySize)
	}
	pub := ed25519.PublicKey(bytes.Clone(key[1:]))
	hash := cosignatureKeyHash(name, pub)
	if want := fmt.Sprintf("%08x", hash); id != want {
		return nil, fmt.Errorf("cosignature verifier key: key ID %s does not match the name and public key (computed %s)", id, want)
	}
	return &cosigVerifier{name: name, hash: hash, pub: pub, vkey: vkey}, nil
}

// splitVKey splits a verifier key into name, key ID and decoded key
// (non-empty), checking the syntax shared by all key types. Its errors
// quote no part of vkey; a private key wraps ErrPrivateKey.
func splitVKey(vkey string) (name, id string, key []byte, err error) {
	if vkey == "" {
		return "", "", nil, errors.New("empty key")
	}
	if looksPrivate(vkey) {
		return "", "", nil, ErrPrivateKey
	}
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		return "", "", nil, fmt.Errorf("key has %d '+'-separated fields, want 3 (name+keyid+base64key)", len(parts))
	}
	name, id, key64 := parts[0], parts[1], parts[2]
	if !isValidKeyName(name) {
		return "", "", nil, errors.New("invalid key name (the first field): must be non-empty UTF-8 without white space or '+'")
	}
	if len(id) != 8 || strings.Trim(id, "0123456789abcdef") != "" {
		return "", "", nil, errors.New("the key ID (the second field) is not 8 lowercase hex digits")
	}
	key, err = base64.StdEncoding.Strict().DecodeString(key64)
	if err != nil || base64.StdEncoding.EncodeToString(key) != key64 {
		return "", "", nil, errors.New("the public key (the third field) is not canonical standard base64")
	}
	if len(key) == 0 {
		return "", "", nil, errors.New("public key is empty")
	}
	return name, id, key, nil
}

// CosignatureTime returns the timestamp of a cosignature/v1 signature. sig
// is either the decoded base64 of a note signature line (key ID, timestamp
// and signature: 76 bytes) or the blob after the key ID that a
// note.Verifier sees (timestamp and signature: 72 bytes). It checks only the
// length and that the timestamp is at most 2^63-1, not the signature.
func CosignatureTime(sig []byte) (time.Time, error) {
	var ts uint64
	switch len(sig) {
	case cosigLineSize:
		ts = binary.BigEndian.Uint64(sig[4:])
	case cosigSize:
		ts = binary.BigEndian.Uint64(sig)
	default:
		return time.Time{}, fmt.Errorf("cosignature is %d bytes, want %d (with key ID) or %d", len(sig), cosigLineSize, cosigSize)
	}
	if ts > math.MaxInt64 {
		return time.Time{}, fmt.Errorf("cosignature timestamp %d is above 2^63-1", ts)
	}
	return time.Unix(int64(ts), 0).UTC(), nil
}

// cosigSigner signs checkpoints with cosignature/v1. It implements
// note.Signer.
type cosigSigner struct {
	name string
	hash uint32
	key  ed25519.PrivateKey
	now  func() time.Time
	err  error
}

func (s *cosigSigner) Name() string    { return s.name }
func (s *cosigSigner) KeyHash() uint32 { return s.hash }

// Sign returns the cosignature/v1 blob for the note text msg: the current
// time (from the signer's clock, in whole seconds) as an 8-byte big-endian
// timestamp followed by the Ed25519 signature of "cosignature/v1\ntime
// <timestamp>\n" || msg. note.Sign prepends the key ID.
func (s *cosigSigner) Sign(msg []byte) ([]byte, error) {
	if s.err != nil {
		return nil, s.err
	}
	t := s.now().Unix()
	if t < 0 {
		return nil, fmt.Errorf("cosigning as %s: clock reads %d, before 1970", s.name, t)
	}
	sig := make([]byte, cosigTimestampSize, cosigSize)
	binary.BigEndian.PutUint64(sig, uint64(t))
	return append(sig, ed25519.Sign(s.key, cosignatureMessage(uint64(t), msg))...), nil
}

// NewCosignatureSigner returns a note.Signer that produces c2sp.org/tlog-
// cosignature cosignature/v1 signatures as the cosigner name with key,
// timestamped with now() (time.Now if now is nil). Use it with note.Sign
// on a checkpoint note: the result is a "— <name> <base64(key ID ||
// timestamp || signature)>" line that NewCosignatureVerifier(
// CosignatureVKey(name, key.Public())) accepts. Its KeyHash is the 0x04 key
// ID. If name is not a valid key name or key is not a well-formed Ed25519
// private key, the signer's Sign always fails with an error saying so.
func NewCosignatureSigner(name string, key ed25519.PrivateKey, now func() time.Time) note.Signer {
	if now == nil {
		now = time.Now
	}
	s := &cosigSigner{name: name, now: now}
	switch {
	case !isValidKeyName(name):
		s.err = fmt.Errorf("cosignature signer: invalid key name %q", name)
	case len(key) != ed25519.PrivateKeySize:
		s.err = fmt.Errorf("cosignature signer %s: private key is %d bytes, want %d", name, len(key), ed25519.PrivateKeySize)
	case !bytes.Equal(ed25519.NewKeyFromSeed(key.Seed()), key):
		s.err = fmt.Errorf("cosignature signer %s: private key's public half does not match its seed", name)
	default:
		s.key = bytes.Clone(key)
		s.hash = cosignatureKeyHash(name, key[ed25519.SeedSize:])
	}
	return s
}

// NewCosignatureSignerFromKey parses a signer key in x/mod's form
// "PRIVATE+KEY+<name>+<8 hex key ID>+<base64(type || 32-byte Ed25519 seed)>"
// and returns a cosignature/v1 signer for it (see NewCosignatureSigner)
// and the matching cosignature verifier key (type 0x04). The type may be
// 0x01 (an ordinary x/mod note key, as transparency-dev's generate_keys
// stores witness keys) or 0x04; the key ID must be the one x/mod (for 0x01)
// or c2sp.org/tlog-cosignature (for 0x04) derives from the name and public
// key. Errors never include the secret key.
func NewCosignatureSignerFromKey(skey string, now func() time.Time) (note.Signer, string, error) {
	fail := func(format string, args ...any) (note.Signer, string, error) {
		return nil, "", fmt.Errorf("cosignature signer key: "+format, args...)
	}
	rest, ok := strings.CutPrefix(skey, "PRIVATE+KEY+")
	if !ok {
		return fail("does not start with PRIVATE+KEY+")
	}
	parts := strings.SplitN(rest, "+", 3)
	if len(parts) != 3 {
		return fail("want PRIVATE+KEY+<name>+<keyid>+<base64 key>")
	}
	name, id, key64 := parts[0], parts[1], parts[2]
	if !isValidKeyName(name) {
		return fail("invalid key name %q", name)
	}
	if len(id) != 8 || strings.Trim(id, "0123456789abcdef") != "" {
		return fail("key ID %q is not 8 lowercase hex digits", id)
	}
	key, err := base64.StdEncoding.Strict().DecodeString(key64)
	if err != nil || base64.StdEncoding.EncodeToString(key) != key64 {
		return fail("key is not canonical standard base64")
	}
	if len(key) != 1+ed25519.SeedSize {
		return fail("key is %d bytes, want %d (type and Ed25519 seed)", len(key), 1+ed25519.SeedSize)
	}
	priv := ed25519.NewKeyFromSeed(key[1:])
	pub := priv.Public().(ed25519.PublicKey)
	var want uint32
	switch key[0] {
	case sigTypeEd25519:
		sum := sha256.Sum256(append(append([]byte(name), '\n', sigTypeEd25519), pub...))
		want = binary.BigEndian.Uint32(sum[:4])
	case sigTypeCosignature:
		want = cosignatureKeyHash(name, pub)
	default:
		return fail("key type %#02x is not supported; want 0x01 or 0x04", key[0])
	}
	if id != fmt.Sprintf("%08x", want) {
		return fail("key ID %s does not match the name and key (computed %08x)", id, want)
	}
	return NewCosignatureSigner(name, priv, now), CosignatureVKey(name, pub), nil
}
