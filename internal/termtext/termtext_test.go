package termtext

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestClean(t *testing.T) {
	for _, tc := range []struct{ in, clean, lines string }{
		{"", "", ""},
		{"plain text: 200 OK", "plain text: 200 OK", "plain text: 200 OK"},
		{"naïve café ✓ 日本", "naïve café ✓ 日本", "naïve café ✓ 日本"},
		{`back\slash \x1b`, `back\slash \x1b`, `back\slash \x1b`},
		// ESC-based sequences: clear screen, set title (OSC), OSC 52 clipboard.
		{"\x1b[2J\x1b[H", `\x1b[2J\x1b[H`, `\x1b[2J\x1b[H`},
		{"\x1b]0;pwned\a", `\x1b]0;pwned\a`, `\x1b]0;pwned\a`},
		{"\x1b]52;c;ZXZpbA==\x1b\\", `\x1b]52;c;ZXZpbA==\x1b\`, `\x1b]52;c;ZXZpbA==\x1b\`},
		// Overwriting: CR, BS.
		{"ok\rFAIL", `ok\rFAIL`, `ok\rFAIL`},
		{"abc\b\b\bxyz", `abc\b\b\bxyz`, `abc\b\b\bxyz`},
		// Newline and tab: Clean escapes both, CleanLines keeps only '\n'.
		{"a\nb\tc", `a\nb\tc`, "a\nb\\tc"},
		{"\x00\x01\x1f\x7f\v\f", `\x00\x01\x1f\x7f\v\f`, `\x00\x01\x1f\x7f\v\f`},
		// C1 controls as runes (CSI U+009B, OSC U+009D, NEL U+0085).
		{"\u009b2J\u009d0;x\u0085", `\u009b2J\u009d0;x\u0085`, `\u009b2J\u009d0;x\u0085`},
		// Raw C1 bytes are not valid UTF-8 on their own.
		{"\x9b2J", `\x9b2J`, `\x9b2J`},
		// Invalid UTF-8: lone continuation, truncated sequence, overlong, surrogate.
		{"a\x80b", `a\x80b`, `a\x80b`},
		{"\xe2\x9c", `\xe2\x9c`, `\xe2\x9c`},
		{"\xc0\xaf", `\xc0\xaf`, `\xc0\xaf`},
		{"\xed\xa0\x80", `\xed\xa0\x80`, `\xed\xa0\x80`},
		{"\xff", `\xff`, `\xff`},
		// Bidi overrides and line separators.
		{"evil\u202egnp.exe", `evil\u202egnp.exe`, `evil\u202egnp.exe`},
		{"a\u2028b\u2029c\u2066d\u2069\u200e\u200f\u061c", `a\u2028b\u2029c\u2066d\u2069\u200e\u200f\u061c`, `a\u2028b\u2029c\u2066d\u2069\u200e\u200f\u061c`},
		// Printable characters around the escaped ranges are kept.
		{"\u00a0\u00ff\u2027\u202f\u2065\u206a", "\u00a0\u00ff\u2027\u202f\u2065\u206a", "\u00a0\u00ff\u2027\u202f\u2065\u206a"},
	} {
		if got := Clean(tc.in); got != tc.clean {
			t.Errorf("Clean(%q) = %q, want %q", tc.in, got, tc.clean)
		}
		if got := CleanLines(tc.in); got != tc.lines {
			t.Errorf("CleanLines(%q) = %q, want %q", tc.in, got, tc.lines)
		}
	}
}

// TestCleanUnchangedNoAlloc: text with nothing to escape is returned as is.
func TestCleanUnchangedNoAlloc(t *testing.T) {
	s := "custody: fetching https://log.example/checkpoint: 404 Not Found"
	if n := testing.AllocsPerRun(100, func() { _ = Clean(s) }); n != 0 {
		t.Errorf("Clean of clean text allocated %v times", n)
	}
}

// checkSafe fails if out contains anything a terminal would interpret.
func checkSafe(t *testing.T, in, out string, keepNewline bool) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Fatalf("output for %q is not valid UTF-8: %q", in, out)
	}
	for _, r := range out {
		if r == '\n' && keepNewline {
			continue
		}
		if needsEscape(r, utf8.RuneLen(r), keepNewline) {
			t.Fatalf("output for %q contains %U: %q", in, r, out)
		}
	}
}

func FuzzClean(f *testing.F) {
	for _, s := range []string{"", "ok", "\x1b[31mred\x1b[0m", "a\r\nb", "\u009b", "\xff\xfe", "\u202e", `\x1b`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := Clean(s)
		checkSafe(t, s, c, false)
		if strings.ContainsRune(c, '\n') {
			t.Fatalf("Clean(%q) contains a newline", s)
		}
		l := CleanLines(s)
		checkSafe(t, s, l, true)
		// CleanLines differs from Clean only in keeping newlines.
		if strings.ReplaceAll(l, "\n", `\n`) != c {
			t.Fatalf("CleanLines(%q) = %q is not Clean(%q) = %q with newlines kept", s, l, s, c)
		}
		if strings.Count(l, "\n") != strings.Count(s, "\n") {
			t.Fatalf("CleanLines(%q) changed the number of lines", s)
		}
		// Clean's output never needs cleaning again.
		if Clean(c) != c {
			t.Fatalf("Clean(Clean(%q)) changed the text", s)
		}
		// Text without anything to escape is returned unchanged.
		safe := true
		for i := 0; i < len(s); {
			r, size := utf8.DecodeRuneInString(s[i:])
			if needsEscape(r, size, false) {
				safe = false
				break
			}
			i += size
		}
		if safe && c != s {
			t.Fatalf("Clean(%q) = %q, want it unchanged", s, c)
		}
	})
}

func TestCleanJSON(t *testing.T) {
	for _, s := range []string{"plain", "\x1b[2J\r\n\t", "\u009b31m\u0085", "del\x7f", "evil\u202egnp\u2066", "\u2028\u2029", "naïve ✓"} {
		b, err := json.Marshal(map[string]string{"k": s})
		if err != nil {
			t.Fatal(err)
		}
		c := CleanJSON(b)
		var back map[string]string
		if err := json.Unmarshal(c, &back); err != nil || back["k"] != s {
			t.Errorf("CleanJSON(%s) = %s decodes to %q, %v; want %q", b, c, back["k"], err, s)
		}
		checkSafe(t, string(b), string(c), false)
	}
	// Pretty-printed JSON keeps its newlines and indentation.
	b, _ := json.MarshalIndent(map[string]string{"a": "\u009b"}, "", "  ")
	if got, want := string(CleanJSON(b)), "{\n  \"a\": \"\\u009b\"\n}"; got != want {
		t.Errorf("CleanJSON(indented) = %q, want %q", got, want)
	}
	if got := string(CleanJSON([]byte("\"a\xffb\""))); got != `"a\ufffdb"` {
		t.Errorf("CleanJSON(invalid UTF-8) = %q", got)
	}
}
