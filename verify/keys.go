package verify

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// Signature type bytes of signed-note keys (c2sp.org/signed-note).
const (
	sigTypeEd25519      = 0x01
	sigTypeCosignature  = 0x04
	sigTypeMLDSASubtree = 0x06
)

// maxKeyFileSize bounds how much of a key file LoadVerifierKey reads.
const maxKeyFileSize = 64 << 10

// NewVerifier returns a note verifier for an Ed25519 (type 0x01) signed-note
// verifier key "<name>+<8 lowercase hex key ID>+<base64(0x01 || 32-byte
// public key)>", the form of a log's public key. It checks the key more
// strictly than x/mod's note.NewVerifier (lowercase key ID, canonical base64,
// no surrounding white space) and its error names the part that is wrong. The
// returned verifier is x/mod's own.
func NewVerifier(vkey string) (note.Verifier, error) {
	if err := checkVerifierKey(vkey); err != nil {
		return nil, fmt.Errorf("verifier key %q: %v", vkey, err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("verifier key %q: %v", vkey, err)
	}
	return v, nil
}

func checkVerifierKey(vkey string) error {
	if vkey == "" {
		return errors.New("empty key")
	}
	if strings.TrimSpace(vkey) != vkey {
		return errors.New("key has leading or trailing white space")
	}
	if strings.HasPrefix(vkey, "PRIVATE+KEY+") {
		return errors.New("this is a private signer key, not a public verifier key")
	}
	// The base64 key may itself contain '+': split off name and key ID only.
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		return fmt.Errorf("key has %d '+'-separated fields, want 3 (name+keyid+base64key)", len(parts))
	}
	name, id, key64 := parts[0], parts[1], parts[2]
	if !isValidKeyName(name) {
		return fmt.Errorf("invalid key name %q: must be non-empty UTF-8 without white space or '+'", name)
	}
	if len(id) != 8 || strings.Trim(id, "0123456789abcdef") != "" {
		return fmt.Errorf("key ID %q is not 8 lowercase hex digits", id)
	}
	key, err := base64.StdEncoding.Strict().DecodeString(key64)
	if err != nil || base64.StdEncoding.EncodeToString(key) != key64 {
		return fmt.Errorf("public key %q is not canonical standard base64", key64)
	}
	if len(key) == 0 {
		return errors.New("public key is empty")
	}
	switch key[0] {
	case sigTypeEd25519:
	case sigTypeCosignature:
		return errors.New("key type 0x04 is a witness cosignature key; a log key is Ed25519, type 0x01")
	case sigTypeMLDSASubtree:
		return errors.New("key type 0x06 is an ML-DSA-44 cosignature key; a log key is Ed25519, type 0x01")
	default:
		return fmt.Errorf("key type %#02x is not supported; want Ed25519, type 0x01", key[0])
	}
	if len(key) != 1+32 {
		return fmt.Errorf("Ed25519 public key is %d bytes, want 32", len(key)-1)
	}
	sum := sha256.Sum256(append([]byte(name+"\n"), key...))
	if want := fmt.Sprintf("%08x", binary.BigEndian.Uint32(sum[:4])); id != want {
		return fmt.Errorf("key ID %s does not match the name and public key (computed %s)", id, want)
	}
	return nil
}

// LoadVerifierKey returns a verifier key string given either the key itself
// or the path of a file holding exactly one key (surrounding white space
// trimmed). Whatever it returns has been checked with [NewVerifier]. A string
// that is a valid key is taken as a key even if a file of that name exists.
func LoadVerifierKey(s string) (string, error) {
	keyErr := checkVerifierKey(s)
	if keyErr == nil {
		return s, nil
	}
	f, err := os.Open(s)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && strings.Contains(s, "+") {
			// Looks like a key, not a path: the key error is the useful one.
			return "", fmt.Errorf("verifier key %q: %v", s, keyErr)
		}
		return "", fmt.Errorf("%q is neither a verifier key (%v) nor a readable key file: %v", s, keyErr, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return "", fmt.Errorf("reading key file %s: %v", s, err)
	}
	if len(data) > maxKeyFileSize {
		return "", fmt.Errorf("key file %s is larger than %d bytes", s, maxKeyFileSize)
	}
	key := strings.TrimSpace(string(data))
	if strings.ContainsAny(key, "\n") {
		return "", fmt.Errorf("key file %s holds more than one line", s)
	}
	if err := checkVerifierKey(key); err != nil {
		return "", fmt.Errorf("key file %s: verifier key %q: %v", s, key, err)
	}
	return key, nil
}
