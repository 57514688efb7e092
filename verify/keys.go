package verify

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
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

// ErrPrivateKey is wrapped by the errors of NewVerifier,
// NewCosignatureVerifier, LoadVerifierKey and ParseTrustPolicy when they are
// given a private signer key ("PRIVATE+KEY+…") where a public verifier key
// belongs. Those errors never quote the key.
var ErrPrivateKey = errors.New("a private signer key (PRIVATE+KEY+…) was given where a public verifier key belongs")

// looksPrivate reports whether s looks like a signed-note private key.
func looksPrivate(s string) bool {
	s = strings.TrimSpace(s)
	return len(s) >= len("PRIVATE+KEY+") && strings.EqualFold(s[:len("PRIVATE+KEY+")], "PRIVATE+KEY+")
}

// NewVerifier returns a note verifier for an Ed25519 (type 0x01) signed-note
// verifier key "<name>+<8 lowercase hex key ID>+<base64(0x01 || 32-byte
// public key)>", the form of a log's public key. It checks the key more
// strictly than x/mod's note.NewVerifier (lowercase key ID, canonical base64,
// no surrounding white space) and its error names the part that is wrong
// without quoting any of the key: what is passed as a key may be a secret
// (a private key wraps ErrPrivateKey). The returned verifier is x/mod's own.
func NewVerifier(vkey string) (note.Verifier, error) {
	if err := checkVerifierKey(vkey); err != nil {
		return nil, fmt.Errorf("verifier key: %w", err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, errors.New("verifier key: not a valid Ed25519 note verifier key")
	}
	return v, nil
}

func checkVerifierKey(vkey string) error {
	if vkey == "" {
		return errors.New("empty key")
	}
	if looksPrivate(vkey) {
		return ErrPrivateKey
	}
	if strings.TrimSpace(vkey) != vkey {
		return errors.New("key has leading or trailing white space")
	}
	// The base64 key may itself contain '+': split off name and key ID only.
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		return fmt.Errorf("key has %d '+'-separated fields, want 3 (name+keyid+base64key)", len(parts))
	}
	name, id, key64 := parts[0], parts[1], parts[2]
	if !isValidKeyName(name) {
		return errors.New("invalid key name (the first field): must be non-empty UTF-8 without white space or '+'")
	}
	if len(id) != 8 || strings.Trim(id, "0123456789abcdef") != "" {
		return errors.New("the key ID (the second field) is not 8 lowercase hex digits")
	}
	key, err := base64.StdEncoding.Strict().DecodeString(key64)
	if err != nil || base64.StdEncoding.EncodeToString(key) != key64 {
		return errors.New("the public key (the third field) is not canonical standard base64")
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
//
// Its errors never quote key material, neither s (unless s names an
// existing file: then it is a path) nor the file's contents. A private key,
// given as s or held in the file, is an error wrapping ErrPrivateKey that
// names the file.
func LoadVerifierKey(s string) (string, error) {
	keyErr := checkVerifierKey(s)
	if keyErr == nil {
		return s, nil
	}
	if looksPrivate(s) {
		return "", fmt.Errorf("the key given: %w", ErrPrivateKey)
	}
	f, err := os.Open(s)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			if strings.Contains(s, "+") {
				// Looks like a key, not a path: the key error is the useful one.
				return "", fmt.Errorf("verifier key: %w", keyErr)
			}
			return "", errors.New("neither a verifier key (name+keyid+base64) nor the name of an existing file")
		}
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", fmt.Errorf("reading key file %s: %v", s, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", fmt.Errorf("reading key file %s: %v", s, err)
	}
	if len(data) > maxKeyFileSize {
		return "", fmt.Errorf("key file %s is larger than %d bytes", s, maxKeyFileSize)
	}
	key := strings.TrimSpace(string(data))
	if looksPrivate(key) {
		return "", fmt.Errorf("key file %s: %w", s, ErrPrivateKey)
	}
	if strings.ContainsAny(key, "\n") {
		return "", fmt.Errorf("key file %s holds more than one line", s)
	}
	if err := checkVerifierKey(key); err != nil {
		return "", fmt.Errorf("key file %s: verifier key: %w", s, err)
	}
	return key, nil
}
