package verify

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
)

// Errors reported by [ParseCheckpoint] and [OpenCheckpoint]. Every error
// those functions return for bad input wraps exactly one of these, or one of
// x/mod's *note.UnverifiedNoteError and *note.InvalidSignatureError, so
// callers can tell the cases apart with errors.Is and errors.As.
var (
	// ErrMalformedNote means the message is not a syntactically valid
	// signed note (c2sp.org/signed-note).
	ErrMalformedNote = errors.New("malformed signed note")
	// ErrMalformedCheckpoint means the note text is not a valid checkpoint
	// body (c2sp.org/tlog-checkpoint).
	ErrMalformedCheckpoint = errors.New("malformed checkpoint")
	// ErrOriginMismatch means the checkpoint was validly signed but names a
	// different log than the one asked for.
	ErrOriginMismatch = errors.New("checkpoint origin mismatch")
)

// Checkpoint is the parsed body of a c2sp.org/tlog-checkpoint note.
type Checkpoint struct {
	// Origin identifies the log. It is opaque and compared byte for byte.
	Origin string
	// Size is the number of entries in the tree.
	Size uint64
	// Root is the RFC 6962 root hash of the first Size entries.
	Root Hash
	// Extensions are the optional extension lines after the root, without
	// their newlines. Each is non-empty. They carry no meaning here.
	Extensions []string
}

// Marshal returns the checkpoint note text: origin, size, base64 root and
// each extension line, every line ending in "\n". For every Checkpoint
// returned by ParseCheckpoint, Marshal returns exactly the parsed text. For a
// Checkpoint that ParseCheckpoint would reject (an empty origin, say),
// Marshal still formats it, and ParseCheckpoint of the result fails.
func (c Checkpoint) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString(c.Origin)
	b.WriteByte('\n')
	b.WriteString(strconv.FormatUint(c.Size, 10))
	b.WriteByte('\n')
	b.WriteString(base64.StdEncoding.EncodeToString(c.Root[:]))
	b.WriteByte('\n')
	for _, e := range c.Extensions {
		b.WriteString(e)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// ParseCheckpoint parses a checkpoint note text (the text only, without the
// blank line and signatures) strictly. It guarantees that:
//
//   - the text is valid UTF-8 with no control characters other than "\n"
//     (the signed-note character set);
//   - it has at least three lines and every line, including the last, ends
//     in "\n";
//   - the origin is non-empty;
//   - the size is decimal with no sign and no leading zeros ("0" for zero);
//   - the root is exactly 44 characters of canonical standard base64
//     encoding 32 bytes;
//   - a size-0 checkpoint has root [EmptyRoot];
//   - every extension line is non-empty;
//   - Marshal of the result reproduces text exactly.
//
// Errors wrap [ErrMalformedCheckpoint]. ParseCheckpoint checks no signature;
// use [OpenCheckpoint] on anything received from elsewhere.
func ParseCheckpoint(text []byte) (Checkpoint, error) {
	c, err := parseCheckpoint(text)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w: %s", ErrMalformedCheckpoint, err)
	}
	return c, nil
}

func parseCheckpoint(text []byte) (Checkpoint, error) {
	if err := checkNoteCharset(text); err != nil {
		return Checkpoint{}, err
	}
	if len(text) == 0 {
		return Checkpoint{}, errors.New("empty text")
	}
	if text[len(text)-1] != '\n' {
		return Checkpoint{}, errors.New("text does not end in a newline")
	}
	lines := strings.Split(string(text[:len(text)-1]), "\n")
	if len(lines) < 3 {
		return Checkpoint{}, fmt.Errorf("text has %d lines, want at least 3 (origin, size, root)", len(lines))
	}
	var c Checkpoint
	c.Origin = lines[0]
	if c.Origin == "" {
		return Checkpoint{}, errors.New("origin line is empty")
	}
	size, err := parseDecimal(lines[1])
	if err != nil {
		return Checkpoint{}, fmt.Errorf("size line %q: %v", lines[1], err)
	}
	c.Size = size
	root, err := decodeHash(lines[2])
	if err != nil {
		return Checkpoint{}, fmt.Errorf("root line %q: %v", lines[2], err)
	}
	c.Root = root
	if c.Size == 0 && c.Root != EmptyRoot {
		return Checkpoint{}, fmt.Errorf("size is 0 but root %s is not the empty tree hash %s",
			lines[2], base64.StdEncoding.EncodeToString(EmptyRoot[:]))
	}
	for i, ext := range lines[3:] {
		if ext == "" {
			return Checkpoint{}, fmt.Errorf("extension line %d (line %d) is empty", i+1, i+4)
		}
	}
	if len(lines) > 3 {
		c.Extensions = lines[3:]
	}
	return c, nil
}

// OpenCheckpoint verifies the signed note msg against verifiers, requires
// that its checkpoint body names origin, and parses the body strictly with
// [ParseCheckpoint]. On success it returns the checkpoint and the opened note,
// whose Sigs lists the verified signatures and whose UnverifiedSigs lists
// signatures from unknown keys (witness cosignatures, for example), which are
// tolerated and ignored.
//
// The note text is not looked at before a known key has verified it. Errors
// are distinguishable:
//
//   - msg is not a valid signed note: wraps [ErrMalformedNote];
//   - no known key signed it: wraps *note.UnverifiedNoteError;
//   - a known key's signature is bad: wraps *note.InvalidSignatureError;
//   - the verified body is not a valid checkpoint: wraps [ErrMalformedCheckpoint];
//   - the verified checkpoint is for another origin: wraps [ErrOriginMismatch].
//
// An error from verifiers.Verifier other than *note.UnknownVerifierError
// (a misconfigured verifier set) is returned wrapped as is.
func OpenCheckpoint(msg []byte, origin string, verifiers note.Verifiers) (Checkpoint, *note.Note, error) {
	if origin == "" {
		return Checkpoint{}, nil, errors.New("opening checkpoint: no origin given to check against")
	}
	if err := checkNoteSyntax(msg); err != nil {
		return Checkpoint{}, nil, fmt.Errorf("opening checkpoint for %q: %w: %s", origin, ErrMalformedNote, err)
	}
	n, err := note.Open(msg, verifiers)
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		switch {
		case errors.As(err, &unverified):
			return Checkpoint{}, nil, fmt.Errorf("opening checkpoint for %q: no valid signature from a known key: %w", origin, err)
		case errors.As(err, &invalid):
			return Checkpoint{}, nil, fmt.Errorf("opening checkpoint for %q: %w", origin, err)
		default:
			return Checkpoint{}, nil, fmt.Errorf("opening checkpoint for %q: checking signatures: %w", origin, err)
		}
	}
	c, err := ParseCheckpoint([]byte(n.Text))
	if err != nil {
		return Checkpoint{}, nil, fmt.Errorf("opening checkpoint for %q: %w", origin, err)
	}
	if c.Origin != origin {
		return Checkpoint{}, nil, fmt.Errorf("opening checkpoint for %q: %w: the signed checkpoint is for %q", origin, ErrOriginMismatch, c.Origin)
	}
	return c, n, nil
}

// parseDecimal parses a canonical decimal uint64: no sign, no leading zeros,
// no other characters.
func parseDecimal(s string) (uint64, error) {
	if s == "" {
		return 0, errors.New("empty number")
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		var numErr *strconv.NumError
		if errors.As(err, &numErr) && errors.Is(numErr.Err, strconv.ErrRange) {
			return 0, errors.New("number does not fit in 64 bits")
		}
		return 0, errors.New("not a decimal number")
	}
	if strconv.FormatUint(v, 10) != s {
		return 0, errors.New("number has leading zeros")
	}
	return v, nil
}

// decodeHash decodes the canonical standard base64 encoding of a 32-byte
// hash: exactly 44 characters, padded, zero trailing bits.
func decodeHash(s string) (Hash, error) {
	var h Hash
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return h, errors.New("hash is not standard base64")
	}
	if len(b) != HashSize {
		return h, fmt.Errorf("hash is %d bytes, want %d", len(b), HashSize)
	}
	if base64.StdEncoding.EncodeToString(b) != s {
		return h, errors.New("hash is not canonical standard base64")
	}
	copy(h[:], b)
	return h, nil
}

// checkNoteCharset enforces the signed-note character set: valid UTF-8 with
// no byte below 0x20 other than "\n".
func checkNoteCharset(b []byte) error {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return fmt.Errorf("invalid UTF-8 at byte %d", i)
		}
		if r < 0x20 && r != '\n' {
			return fmt.Errorf("control character %#02x at byte %d", r, i)
		}
		i += size
	}
	return nil
}
