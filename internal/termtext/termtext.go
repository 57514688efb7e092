// Package termtext makes untrusted text safe to print on a terminal.
//
// Text that a log server, a log directory or any other party the CLI does
// not trust supplies (HTTP reason phrases, error bodies, event fields,
// origins, file names) may carry control sequences: ESC and CSI start
// terminal escape sequences that can move the cursor, rewrite earlier lines,
// change the window title or, on some terminals, write to the clipboard; CR
// and BS overwrite what was printed; BEL rings. Clean and CleanLines turn
// every such character into a visible Go-style escape, so what reaches the
// terminal is exactly the printable text plus backslash escapes.
package termtext

import (
	"strings"
	"unicode/utf8"
)

// Clean returns s with every character that could control a terminal
// replaced by a visible escape:
//
//   - C0 controls (U+0000–U+001F, including '\n', '\r' and '\t') and DEL
//     (U+007F) become \a \b \t \n \v \f \r or \xNN;
//   - C1 controls (U+0080–U+009F) become \u0080 … \u009f;
//   - Unicode line and paragraph separators (U+2028, U+2029) and
//     bidirectional formatting characters (U+061C, U+200E, U+200F,
//     U+202A–U+202E, U+2066–U+2069), which can reorder or hide what is
//     shown, become \uNNNN;
//   - each byte that is not part of valid UTF-8 becomes \xNN.
//
// Everything else, including a backslash, is kept as is. The result is valid
// UTF-8, contains no character in the ranges above, and fits on one line.
// Clean of text that contains none of these characters returns it
// unchanged.
func Clean(s string) string { return clean(s, false) }

// CleanLines is Clean except that it keeps '\n', for multi-line text such as
// an error body printed as a block. Every other control character, including
// '\r' (which would let one line overwrite another), is escaped.
func CleanLines(s string) string { return clean(s, true) }

const hexDigits = "0123456789abcdef"

func clean(s string, keepNewline bool) string {
	// Fast path: nothing to escape.
	i := 0
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if needsEscape(r, size, keepNewline) {
			break
		}
		i += size
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if !needsEscape(r, size, keepNewline) {
			b.WriteString(s[i : i+size])
			i += size
			continue
		}
		switch {
		case r == utf8.RuneError && size == 1:
			writeHexByte(&b, s[i])
		case r < 0x80:
			switch r {
			case '\a':
				b.WriteString(`\a`)
			case '\b':
				b.WriteString(`\b`)
			case '\t':
				b.WriteString(`\t`)
			case '\n':
				b.WriteString(`\n`)
			case '\v':
				b.WriteString(`\v`)
			case '\f':
				b.WriteString(`\f`)
			case '\r':
				b.WriteString(`\r`)
			default:
				writeHexByte(&b, byte(r))
			}
		default:
			b.WriteString(`\u`)
			for shift := 12; shift >= 0; shift -= 4 {
				b.WriteByte(hexDigits[(r>>shift)&0xf])
			}
		}
		i += size
	}
	return b.String()
}

func writeHexByte(b *strings.Builder, c byte) {
	b.WriteString(`\x`)
	b.WriteByte(hexDigits[c>>4])
	b.WriteByte(hexDigits[c&0xf])
}

// needsEscape reports whether the rune r, decoded from size bytes, must be
// escaped.
func needsEscape(r rune, size int, keepNewline bool) bool {
	switch {
	case r == utf8.RuneError && size == 1: // invalid UTF-8
		return true
	case r == '\n':
		return !keepNewline
	case r < 0x20, r == 0x7f: // C0, DEL
		return true
	case r >= 0x80 && r <= 0x9f: // C1
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, // bidi marks
		r >= 0x202a && r <= 0x202e, // bidi embeddings and overrides
		r >= 0x2066 && r <= 0x2069, // bidi isolates
		r == 0x2028, r == 0x2029:   // line and paragraph separators
		return true
	}
	return false
}

// CleanJSON returns the JSON text b (as encoding/json writes it) with every
// character that Clean would escape and that encoding/json leaves as is
// (DEL, C1 controls, bidirectional formatting characters; encoding/json
// already escapes C0 controls, U+2028 and U+2029, and replaces invalid
// UTF-8 with U+FFFD) written as a \uNNNN escape. In valid JSON such
// characters can only occur inside strings, where \uNNNN means the same
// character, so the result decodes to the same value. A byte that is not
// valid UTF-8 (which encoding/json never writes) becomes \ufffd. b is not
// modified.
func CleanJSON(b []byte) []byte {
	i := 0
	for i < len(b) {
		r, size := utf8.DecodeRune(b[i:])
		if needsEscape(r, size, true) && r != '\n' && r >= 0x20 || r == utf8.RuneError && size == 1 {
			break
		}
		i += size
	}
	if i == len(b) {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	out = append(out, b[:i]...)
	for i < len(b) {
		r, size := utf8.DecodeRune(b[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			out = append(out, `\ufffd`...)
		case r >= 0x20 && needsEscape(r, size, true):
			out = append(out, '\\', 'u')
			for shift := 12; shift >= 0; shift -= 4 {
				out = append(out, hexDigits[(r>>shift)&0xf])
			}
		default:
			out = append(out, b[i:i+size]...)
		}
		i += size
	}
	return out
}
