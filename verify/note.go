package verify

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxNoteSignatures is the number of signature lines above which x/mod's
// note.Open rejects a note as malformed.
const maxNoteSignatures = 100

// checkNoteSyntax reports why msg is not a syntactically valid signed note,
// applying exactly the checks that x/mod note.Open applies before it looks
// at any key, so that a nil result means note.Open will not fail with
// "malformed note". It exists to give a precise reason.
func checkNoteSyntax(msg []byte) error {
	if err := checkNoteCharset(msg); err != nil {
		return err
	}
	split := bytes.LastIndex(msg, []byte("\n\n"))
	if split < 0 {
		return errors.New("no blank line before the signatures")
	}
	sigs := msg[split+2:]
	if len(sigs) == 0 {
		return errors.New("no signature lines after the blank line")
	}
	if sigs[len(sigs)-1] != '\n' {
		return errors.New("last signature line does not end in a newline")
	}
	for n := 1; len(sigs) > 0; n++ {
		i := bytes.IndexByte(sigs, '\n')
		line := sigs[:i]
		sigs = sigs[i+1:]
		if n > maxNoteSignatures {
			return fmt.Errorf("more than %d signature lines", maxNoteSignatures)
		}
		rest, ok := bytes.CutPrefix(line, []byte("— "))
		if !ok {
			return fmt.Errorf("signature line %d does not start with an em dash and a space", n)
		}
		name, b64, _ := strings.Cut(string(rest), " ")
		if !isValidKeyName(name) {
			return fmt.Errorf("signature line %d: invalid key name %q", n, name)
		}
		sig, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || b64 == "" {
			return fmt.Errorf("signature line %d: signature is not base64", n)
		}
		if len(sig) < 5 {
			return fmt.Errorf("signature line %d: signature is %d bytes, want at least 5 (key ID and signature)", n, len(sig))
		}
	}
	return nil
}

// isValidKeyName reports whether name is a valid signed-note key name:
// non-empty UTF-8 with no Unicode white space and no "+".
func isValidKeyName(name string) bool {
	return name != "" && utf8.ValidString(name) &&
		strings.IndexFunc(name, unicode.IsSpace) < 0 && !strings.Contains(name, "+")
}
