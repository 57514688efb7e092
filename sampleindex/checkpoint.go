package sampleindex

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// ExtensionKeyword starts the checkpoint extension line that carries the
// map root: "custody-sample-index <base64 root>", the fourth line of the
// checkpoint body, after origin, size and root, which are unchanged.
const ExtensionKeyword = "custody-sample-index"

// ErrMalformedExtension is wrapped by the errors of [ParseExtension] and
// [FindExtension].
var ErrMalformedExtension = errors.New("malformed sample index checkpoint line")

// ErrNoExtension is returned by [FindExtension] for a checkpoint without
// an index line (a log that does not keep the index, or an older
// checkpoint).
var ErrNoExtension = errors.New("checkpoint has no sample index line")

// FormatExtension returns the checkpoint extension line committing map
// root, without its newline: the keyword, one space and the 44-character
// standard base64 encoding of the root.
func FormatExtension(root Hash) string {
	return ExtensionKeyword + " " + base64.StdEncoding.EncodeToString(root[:])
}

// ParseExtension parses a line made by [FormatExtension], strictly: the
// exact keyword, one space, and canonical padded standard base64 of 32
// bytes, nothing else. Errors wrap [ErrMalformedExtension].
func ParseExtension(line string) (Hash, error) {
	rest, ok := strings.CutPrefix(line, ExtensionKeyword+" ")
	if !ok {
		return Hash{}, fmt.Errorf("%w: %q does not start with %q", ErrMalformedExtension, line, ExtensionKeyword+" ")
	}
	if len(rest) != 44 {
		return Hash{}, fmt.Errorf("%w: root %q is %d characters, want 44 (base64 of 32 bytes)", ErrMalformedExtension, rest, len(rest))
	}
	b, err := base64.StdEncoding.Strict().DecodeString(rest)
	if err != nil || len(b) != HashSize || base64.StdEncoding.EncodeToString(b) != rest {
		return Hash{}, fmt.Errorf("%w: root %q is not canonical base64 of 32 bytes", ErrMalformedExtension, rest)
	}
	return Hash(b), nil
}

// FindExtension returns the map root from a checkpoint's extension lines
// (verify.Checkpoint.Extensions): exactly one line must start with the
// keyword, and it must parse; other lines are ignored. It returns
// [ErrNoExtension] when no line starts with the keyword.
func FindExtension(lines []string) (Hash, error) {
	var root Hash
	found := false
	for _, l := range lines {
		if l != ExtensionKeyword && !strings.HasPrefix(l, ExtensionKeyword+" ") {
			continue
		}
		if found {
			return Hash{}, fmt.Errorf("%w: two %s lines", ErrMalformedExtension, ExtensionKeyword)
		}
		r, err := ParseExtension(l)
		if err != nil {
			return Hash{}, err
		}
		root, found = r, true
	}
	if !found {
		return Hash{}, ErrNoExtension
	}
	return root, nil
}
