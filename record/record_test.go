package record

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"
)

// baseFields is a valid collected event, as raw JSON values.
var baseFields = [][2]string{
	{"sample", `"s-1"`},
	{"action", `"collected"`},
	{"location", `"ch-zrh-1"`},
	{"region", `"EU"`},
	{"time", `"2024-05-01T12:00:00Z"`},
	{"actor", `"collector"`},
}

// event returns the base event as JSON with changes applied. changes are
// pairs of a key and a raw JSON value: "" removes the key, anything else
// replaces its value or, for a key not in the base, adds it at the end.
func event(changes ...string) string {
	fields := append([][2]string(nil), baseFields...)
next:
	for i := 0; i < len(changes); i += 2 {
		k, v := changes[i], changes[i+1]
		for j := range fields {
			if fields[j][0] == k {
				fields[j][1] = v
				continue next
			}
		}
		fields = append(fields, [2]string{k, v})
	}
	var b strings.Builder
	b.WriteString("{")
	for _, f := range fields {
		if f[1] == "" {
			continue
		}
		if b.Len() > 1 {
			b.WriteString(",")
		}
		b.WriteString(`"` + f[0] + `":` + f[1])
	}
	b.WriteString("}")
	return b.String()
}

func transfer(changes ...string) string {
	return event(append([]string{"action", `"transferred"`, "to", `"de-fra-1"`}, changes...)...)
}

func quote(s string) string { return `"` + s + `"` }

func fieldOf(t *testing.T, err error) string {
	t.Helper()
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T) is not a *FieldError", err, err)
	}
	return fe.Field
}

var hex64 = strings.Repeat("0123456789abcdef", 4)

func TestDecodeValid(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"base", event()},
		{"transfer", transfer()},
		{"every field", transfer("customer", quote(hex64), "logged", `"2024-05-01T12:00:01Z"`, "note", `"hello"`)},
		{"white space everywhere", " \t\r\n{ \"sample\" :\n\"s-1\" , \"action\":\"stored\",\"location\":\"ch-zrh-1\",\"region\":\"EU\",\"time\":\"2024-05-01T12:00:00Z\",\"actor\":\"a\" }\n\n"},
		{"every action", event("action", `"analysed"`)},
		{"released", event("action", `"released"`)},
		{"deleted", event("action", `"deleted"`)},
		{"sample max", event("sample", quote(strings.Repeat("aZ9:._-", 18)+"ab"))},
		{"location min", event("location", `"ab"`)},
		{"location max", event("location", quote(strings.Repeat("a", 32)))},
		{"region max", event("region", `"ABCDEFGH"`)},
		{"actor 64 runes", event("actor", quote(strings.Repeat("é", 64)))},
		{"actor 64 four-byte runes", event("actor", quote(strings.Repeat("😀", 64)))},
		{"actor with space", event("actor", `"svc mover 2"`)},
		{"note 256 bytes", event("note", quote(strings.Repeat("ab", 128)))},
		{"note 256 escaped quotes", event("note", quote(strings.Repeat(`\"`, 256)))},
		{"empty optionals", event("note", `""`, "customer", `""`)},
		{"time offset and fraction", event("time", `"2024-05-01T14:00:00.999999999+02:00"`)},
		{"time -00:00", event("time", `"2024-05-01T12:00:00-00:00"`)},
		{"leap day", event("time", `"2024-02-29T00:00:00Z"`)},
		{"epoch", event("time", `"1970-01-01T00:00:00Z"`)},
		{"last second", event("time", `"9999-12-31T23:59:59Z"`)},
		{"surrogate pair", event("note", `"\ud83d\ude00"`)},
		{"exactly MaxEventSize", event() + strings.Repeat(" ", MaxEventSize-len(event()))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Decode([]byte(tt.in))
			if err != nil {
				t.Fatalf("Decode(%q) = %v, want success", tt.in, err)
			}
			if err := e.Validate(); err != nil {
				t.Errorf("Validate() of decoded event = %v", err)
			}
			if loc := e.Time.Location(); loc != time.UTC {
				t.Errorf("Time location = %v, want UTC", loc)
			}
			if e.Time.Nanosecond() != 0 {
				t.Errorf("Time = %v, want whole seconds", e.Time)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		wantField string
	}{
		// Body.
		{"empty input", ``, ""},
		{"only white space", " \n\t ", ""},
		{"oversize", event() + strings.Repeat(" ", MaxEventSize-len(event())+1), ""},
		{"oversize note", event("note", quote(strings.Repeat("a", MaxEventSize))), ""},
		{"array", `[` + event() + `]`, ""},
		{"string", `"sample"`, ""},
		{"number", `42`, ""},
		{"null", `null`, ""},
		{"garbage", `sample=s-1`, ""},
		{"byte order mark", "\ufeff" + event(), ""},
		{"trailing object", event() + `{}`, ""},
		{"trailing garbage", event() + ` x`, ""},
		{"trailing comma", event() + `,`, ""},
		{"trailing NUL", event() + "\x00", ""},
		{"trailing bad UTF-8", event() + "\xff", ""},
		{"unterminated object", strings.TrimSuffix(event(), "}"), ""},
		{"comma before close", strings.TrimSuffix(event(), "}") + `,}`, ""},
		{"empty key list with comma", `{,}`, ""},
		{"single quotes", `{'sample':'s-1'}`, ""},
		{"unquoted key", `{sample:"s-1"}`, ""},
		{"missing colon", `{"sample" "s-1"}`, "sample"},
		{"missing value", `{"sample":}`, "sample"},
		{"end after colon", `{"sample":`, "sample"},
		{"unterminated value", `{"sample":"s-1`, "sample"},
		{"missing comma", `{"sample":"s-1" "action":"collected"}`, ""},
		{"empty object", `{}`, "sample"},

		// Keys.
		{"unknown field", event("colour", `"red"`), "colour"},
		{"unknown field with number", event("size", `12`), "size"},
		{"unknown field escaped", event(`sampl\u0065s`, `"x"`), "samples"},
		{"key case matters", `{"Sample":"s-1"}`, "Sample"},
		{"duplicate key", event("sample", `"a","sample":"b"`), "sample"},
		{"duplicate key escaped", event("note", `"a","n\u006fte":"b"`), "note"},
		{"duplicate key far apart", `{"actor":"a","sample":"s","actor":"b"}`, "actor"},
		{"duplicate key with bad value", `{"sample":"a","sample":1}`, "sample"},
		{"bad UTF-8 in key", `{"s` + "\xff" + `":"x"}`, ""},

		// Types.
		{"number value", event("sample", `123`), "sample"},
		{"negative number", event("region", `-1`), "region"},
		{"null value", event("note", `null`), "note"},
		{"true value", event("actor", `true`), "actor"},
		{"false value", event("location", `false`), "location"},
		{"array value", event("time", `["2024-05-01T12:00:00Z"]`), "time"},
		{"object value", event("action", `{"a":"b"}`), "action"},
		{"null logged", event("logged", `null`), "logged"},
		{"bare word value", event("sample", `s-1`), "sample"},

		// Strings and UTF-8.
		{"bad UTF-8 in note", event("note", "\"caf\xe9\""), "note"},
		{"truncated UTF-8 in actor", event("actor", "\"a\xe2\x82\""), "actor"},
		{"overlong UTF-8", event("note", "\"\xc0\xaf\""), "note"},
		{"UTF-8 encoded surrogate", event("note", "\"\xed\xa0\x80\""), "note"},
		{"bad UTF-8 in sample", event("sample", "\"s\xff\""), "sample"},
		{"lone high surrogate", event("note", `"\ud800"`), "note"},
		{"lone low surrogate", event("note", `"\udc00x"`), "note"},
		{"high surrogate then letter", event("actor", `"\ud83d\u0041"`), "actor"},
		{"high surrogate then high", event("actor", `"\ud83d\ud83d"`), "actor"},
		{"high surrogate at end", event("note", `"x\ud83d`), "note"},
		{"escaped replacement character", event("note", `"\ufffd"`), "note"},
		{"raw replacement character", event("actor", "\"a\uFFFDb\""), "actor"},
		{"raw control character", event("note", "\"a\tb\""), "note"},
		{"raw newline", event("actor", "\"a\nb\""), "actor"},
		{"escaped newline", event("note", `"a\nb"`), "note"},
		{"escaped NUL", event("note", `"\u0000"`), "note"},
		{"escaped tab in actor", event("actor", `"a\tb"`), "actor"},
		{"DEL", event("note", "\"a\x7fb\""), "note"},
		{"right-to-left override", event("note", `"a\u202eb"`), "note"},
		{"zero width space", event("actor", `"a\u200bb"`), "actor"},
		{"no-break space", event("actor", `"a\u00a0b"`), "actor"},
		{"invalid escape", event("note", `"\x41"`), "note"},
		{"short unicode escape", event("note", `"\u41"`), "note"},
		{"non-hex unicode escape", event("note", `"\u00g1"`), "note"},

		// sample.
		{"missing sample", event("sample", ""), "sample"},
		{"empty sample", event("sample", `""`), "sample"},
		{"sample too long", event("sample", quote(strings.Repeat("a", 129))), "sample"},
		{"sample with space", event("sample", `"s 1"`), "sample"},
		{"sample with slash", event("sample", `"s/1"`), "sample"},
		{"sample non-ASCII", event("sample", `"s\u00e9"`), "sample"},

		// action.
		{"missing action", event("action", ""), "action"},
		{"unknown action", event("action", `"lost"`), "action"},
		{"action upper case", event("action", `"Collected"`), "action"},

		// location and to.
		{"missing location", event("location", ""), "location"},
		{"location too short", event("location", `"a"`), "location"},
		{"location too long", event("location", quote(strings.Repeat("a", 33))), "location"},
		{"location upper case", event("location", `"CH-ZRH-1"`), "location"},
		{"location underscore", event("location", `"ch_zrh"`), "location"},
		{"missing to on transferred", event("action", `"transferred"`), "to"},
		{"empty to on transferred", transfer("to", `""`), "to"},
		{"to on collected", event("to", `"de-fra-1"`), "to"},
		{"to on deleted", event("action", `"deleted"`, "to", `"de-fra-1"`), "to"},
		{"to same as location", transfer("to", `"ch-zrh-1"`), "to"},
		{"to too long", transfer("to", quote(strings.Repeat("b", 33))), "to"},
		{"to bad character", transfer("to", `"de.fra"`), "to"},

		// region and customer.
		{"missing region", event("region", ""), "region"},
		{"region too short", event("region", `"E"`), "region"},
		{"region too long", event("region", `"ABCDEFGHI"`), "region"},
		{"region lower case", event("region", `"eu"`), "region"},
		{"customer too short", event("customer", quote(hex64[:63])), "customer"},
		{"customer too long", event("customer", quote(hex64+"0")), "customer"},
		{"customer upper case", event("customer", quote(strings.ToUpper(hex64))), "customer"},
		{"customer not hex", event("customer", quote(hex64[:63]+"g")), "customer"},

		// time and logged.
		{"missing time", event("time", ""), "time"},
		{"empty time", event("time", `""`), "time"},
		{"time date only", event("time", `"2024-05-01"`), "time"},
		{"time without zone", event("time", `"2024-05-01T12:00:00"`), "time"},
		{"time with space", event("time", `"2024-05-01 12:00:00Z"`), "time"},
		{"time lower case t", event("time", `"2024-05-01t12:00:00Z"`), "time"},
		{"time lower case z", event("time", `"2024-05-01T12:00:00z"`), "time"},
		{"time month 13", event("time", `"2024-13-01T12:00:00Z"`), "time"},
		{"time February 30", event("time", `"2024-02-30T12:00:00Z"`), "time"},
		{"time February 29 non-leap", event("time", `"2023-02-29T12:00:00Z"`), "time"},
		{"time day 0", event("time", `"2024-05-00T12:00:00Z"`), "time"},
		{"time hour 24", event("time", `"2024-05-01T24:00:00Z"`), "time"},
		{"time leap second", event("time", `"2016-12-31T23:59:60Z"`), "time"},
		{"time empty fraction", event("time", `"2024-05-01T12:00:00.Z"`), "time"},
		{"time comma fraction", event("time", `"2024-05-01T12:00:00,5Z"`), "time"},
		{"time offset without colon", event("time", `"2024-05-01T12:00:00+0200"`), "time"},
		{"time offset hour 24", event("time", `"2024-05-01T12:00:00+24:00"`), "time"},
		{"time trailing data", event("time", `"2024-05-01T12:00:00Z "`), "time"},
		{"time unix seconds", event("time", `"1714564800"`), "time"},
		{"time before 1970", event("time", `"1969-12-31T23:59:59Z"`), "time"},
		{"time before 1970 in UTC", event("time", `"1970-01-01T00:30:00+01:00"`), "time"},
		{"time after 9999 in UTC", event("time", `"9999-12-31T23:00:00-02:00"`), "time"},
		{"time five-digit year", event("time", `"10000-01-01T00:00:00Z"`), "time"},
		{"time signed year", event("time", `"+2024-05-01T12:00:00Z"`), "time"},
		{"bad logged", event("logged", `"yesterday"`), "logged"},
		{"empty logged", event("logged", `""`), "logged"},
		{"logged before 1970", event("logged", `"1969-01-01T00:00:00Z"`), "logged"},

		// actor and note.
		{"missing actor", event("actor", ""), "actor"},
		{"empty actor", event("actor", `""`), "actor"},
		{"actor 65 runes", event("actor", quote(strings.Repeat("é", 65))), "actor"},
		{"actor 65 ASCII", event("actor", quote(strings.Repeat("a", 65))), "actor"},
		{"note 257 bytes", event("note", quote(strings.Repeat("a", 257))), "note"},
		{"note 258 bytes of two-byte runes", event("note", quote(strings.Repeat("é", 129))), "note"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Decode([]byte(tt.in))
			if err == nil {
				t.Fatalf("Decode(%q) = %+v, want error for field %q", tt.in, e, tt.wantField)
			}
			if got := fieldOf(t, err); got != tt.wantField {
				t.Errorf("Decode(%q) error field = %q (%v), want %q", tt.in, got, err, tt.wantField)
			}
			if e != (Event{}) {
				t.Errorf("Decode returned non-zero Event %+v with error", e)
			}
			if msg := err.Error(); msg == "" || strings.ContainsAny(msg, "\n") {
				t.Errorf("bad error message %q", msg)
			}
		})
	}
}

func TestFieldErrorMessage(t *testing.T) {
	_, err := Decode([]byte(event("action", `"transferred"`)))
	if got, want := err.Error(), `field "to": required when action is "transferred"`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	_, err = Decode(nil)
	if got := err.Error(); strings.HasPrefix(got, "field") {
		t.Errorf("Error() for the whole body = %q, want no field prefix", got)
	}
	_, err = Decode([]byte(event("bogus\u2028", `"x"`)))
	if got, want := err.Error(), `field "bogus\u2028": unknown field`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestCanonical(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{
			"key order and white space",
			` { "actor" : "collector", "time": "2024-05-01T12:00:00Z", "region":"EU", "location":"ch-zrh-1", "action":"collected", "sample":"s-1" } `,
			`{"sample":"s-1","action":"collected","location":"ch-zrh-1","region":"EU","time":"2024-05-01T12:00:00Z","actor":"collector"}`,
		},
		{
			"all fields in order",
			transfer("note", `"n"`, "logged", `"2024-05-01T12:00:05Z"`, "customer", quote(hex64)),
			`{"sample":"s-1","action":"transferred","location":"ch-zrh-1","to":"de-fra-1","region":"EU","customer":"` + hex64 + `","time":"2024-05-01T12:00:00Z","logged":"2024-05-01T12:00:05Z","actor":"collector","note":"n"}`,
		},
		{
			"offset to UTC",
			event("time", `"2024-05-01T14:30:00+02:30"`),
			`{"sample":"s-1","action":"collected","location":"ch-zrh-1","region":"EU","time":"2024-05-01T12:00:00Z","actor":"collector"}`,
		},
		{
			"negative offset across midnight and year",
			event("time", `"2023-12-31T22:00:00-03:00"`),
			`{"sample":"s-1","action":"collected","location":"ch-zrh-1","region":"EU","time":"2024-01-01T01:00:00Z","actor":"collector"}`,
		},
		{
			"fraction dropped, not rounded",
			event("time", `"2024-05-01T12:00:00.999999999999Z"`, "logged", `"2024-05-01T12:00:01.5+00:00"`),
			`{"sample":"s-1","action":"collected","location":"ch-zrh-1","region":"EU","time":"2024-05-01T12:00:00Z","logged":"2024-05-01T12:00:01Z","actor":"collector"}`,
		},
		{
			"empty optionals omitted",
			event("note", `""`, "customer", `""`),
			`{"sample":"s-1","action":"collected","location":"ch-zrh-1","region":"EU","time":"2024-05-01T12:00:00Z","actor":"collector"}`,
		},
		{
			"escapes in note",
			event("note", `"say \"hi\" \\o\/ caf\u00e9 \ud83d\ude00 \u003c\u0026"`),
			`{"sample":"s-1","action":"collected","location":"ch-zrh-1","region":"EU","time":"2024-05-01T12:00:00Z","actor":"collector","note":"say \"hi\" \\o/ café 😀 <&"}`,
		},
		{
			"raw non-ASCII kept",
			event("actor", `"Zürich-Sammler \"α\""`, "note", `"日本語 ✓"`),
			`{"sample":"s-1","action":"collected","location":"ch-zrh-1","region":"EU","time":"2024-05-01T12:00:00Z","actor":"Zürich-Sammler \"α\"","note":"日本語 ✓"}`,
		},
		{
			"escaped ASCII letters in values",
			event("sample", `"\u0073-1"`),
			`{"sample":"s-1","action":"collected","location":"ch-zrh-1","region":"EU","time":"2024-05-01T12:00:00Z","actor":"collector"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Decode([]byte(tt.in))
			if err != nil {
				t.Fatalf("Decode(%q) = %v", tt.in, err)
			}
			got := e.Canonical()
			if string(got) != tt.want {
				t.Errorf("Canonical() =\n%s\nwant\n%s", got, tt.want)
			}
			e2, err := Decode(got)
			if err != nil {
				t.Fatalf("Decode(Canonical()) = %v", err)
			}
			if e2 != e {
				t.Errorf("Decode(Canonical()) = %+v, want %+v", e2, e)
			}
			if got2 := e2.Canonical(); !bytes.Equal(got2, got) {
				t.Errorf("Canonical is not a fixed point:\n%s\n%s", got, got2)
			}
		})
	}
}

func TestDecodedTimes(t *testing.T) {
	e, err := Decode([]byte(event("time", `"2024-05-01T14:30:00.75+02:30"`, "logged", `"2024-05-01T12:00:01Z"`)))
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC); e.Time != want {
		t.Errorf("Time = %v, want %v", e.Time, want)
	}
	if want := time.Date(2024, 5, 1, 12, 0, 1, 0, time.UTC); e.Logged != want {
		t.Errorf("Logged = %v, want %v", e.Logged, want)
	}
}

func validEvent() Event {
	return Event{
		Sample:   "s-1",
		Action:   Transferred,
		Location: "ch-zrh-1",
		To:       "de-fra-1",
		Region:   "EU",
		Customer: hex64,
		Actor:    "mover",
		Note:     "note",
		Time:     time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC),
	}
}

func TestIdentity(t *testing.T) {
	base := validEvent()
	id := base.Identity()

	withoutLogged := base.Canonical()
	if want := sha256.Sum256(withoutLogged); id != want {
		t.Errorf("Identity() = %x, want SHA-256 of canonical form %x", id, want)
	}

	logged := base
	logged.Logged = time.Date(2024, 5, 1, 12, 0, 3, 0, time.UTC)
	if logged.Identity() != id {
		t.Errorf("Identity changed when Logged was set")
	}
	if bytes.Equal(logged.Canonical(), withoutLogged) {
		t.Errorf("Canonical did not change when Logged was set")
	}

	mutations := map[string]func(*Event){
		"sample":      func(e *Event) { e.Sample = "s-2" },
		"action":      func(e *Event) { e.Action = Collected; e.To = "" },
		"location":    func(e *Event) { e.Location = "ch-zrh-2" },
		"to":          func(e *Event) { e.To = "de-fra-2" },
		"region":      func(e *Event) { e.Region = "US" },
		"customer":    func(e *Event) { e.Customer = strings.Repeat("f", 64) },
		"no customer": func(e *Event) { e.Customer = "" },
		"time":        func(e *Event) { e.Time = e.Time.Add(time.Second) },
		"actor":       func(e *Event) { e.Actor = "mover2" },
		"note":        func(e *Event) { e.Note = "note2" },
		"no note":     func(e *Event) { e.Note = "" },
	}
	seen := map[[32]byte]string{id: "base"}
	for name, mutate := range mutations {
		e := base
		mutate(&e)
		if err := e.Validate(); err != nil {
			t.Fatalf("%s: mutated event invalid: %v", name, err)
		}
		got := e.Identity()
		if prev, dup := seen[got]; dup {
			t.Errorf("mutation %q has the same identity as %q", name, prev)
		}
		seen[got] = name
	}

	// Normalised times give the same identity.
	e := base
	e.Time = base.Time.In(time.FixedZone("X", 3600)).Add(400 * time.Millisecond)
	if e.Identity() != id {
		t.Errorf("Identity depends on time zone or fraction of a second")
	}
}

func TestDecodeEntry(t *testing.T) {
	e := validEvent()
	e.Logged = time.Date(2024, 5, 1, 12, 0, 3, 0, time.UTC)
	entry := e.Canonical()
	got, err := DecodeEntry(entry)
	if err != nil {
		t.Fatalf("DecodeEntry(%s) = %v", entry, err)
	}
	if got != e {
		t.Errorf("DecodeEntry = %+v, want %+v", got, e)
	}

	s := string(entry)
	tests := []struct {
		name      string
		in        string
		wantField string
	}{
		{"no logged", string(validEvent().Canonical()), "logged"},
		{"trailing newline", s + "\n", ""},
		{"leading space", " " + s, ""},
		{"space after colon", strings.Replace(s, `"sample":`, `"sample": `, 1), ""},
		{"keys reordered", strings.Replace(s, `"sample":"s-1","action":"transferred"`, `"action":"transferred","sample":"s-1"`, 1), ""},
		{"offset time", strings.Replace(s, `"time":"2024-05-01T12:00:00Z"`, `"time":"2024-05-01T13:00:00+01:00"`, 1), ""},
		{"fraction", strings.Replace(s, `12:00:03Z`, `12:00:03.0Z`, 1), ""},
		{"escaped letter", strings.Replace(s, `"mover"`, `"mov\u0065r"`, 1), ""},
		{"escaped slash", strings.Replace(s, `:"note"}`, `:"no\/te"}`, 1), ""},
		{"empty note present", strings.Replace(s, `,"note":"note"`, `,"note":""`, 1), ""},
		{"invalid event", strings.Replace(s, `"EU"`, `"eu"`, 1), "region"},
		{"syntax", s[:len(s)-1], ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeEntry([]byte(tt.in))
			if err == nil {
				t.Fatalf("DecodeEntry(%q) succeeded, want error for field %q", tt.in, tt.wantField)
			}
			if got := fieldOf(t, err); got != tt.wantField {
				t.Errorf("DecodeEntry(%q) error field = %q (%v), want %q", tt.in, got, err, tt.wantField)
			}
		})
	}
	_, err = DecodeEntry([]byte(strings.Replace(s, `"sample":`, `"sample": `, 1)))
	if got, want := err.Error(), "entry is not in canonical form"; got != want {
		t.Errorf("DecodeEntry of non-canonical bytes: %q, want %q", got, want)
	}
}

func TestDecodeSubmission(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	ok := []struct {
		name string
		in   string
	}{
		{"past", event("time", `"2020-01-01T00:00:00Z"`)},
		{"now", event("time", `"2024-05-01T12:00:00Z"`)},
		{"exactly now+skew", event("time", `"2024-05-01T12:05:00Z"`)},
		{"fraction past now+skew", event("time", `"2024-05-01T12:05:00.9Z"`)},
		{"now+skew with offset", event("time", `"2024-05-01T14:05:00+02:00"`)},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			e, err := DecodeSubmission([]byte(tt.in), now)
			if err != nil {
				t.Fatalf("DecodeSubmission(%q) = %v", tt.in, err)
			}
			if !e.Logged.IsZero() {
				t.Errorf("Logged = %v, want zero", e.Logged)
			}
		})
	}

	bad := []struct {
		name      string
		in        string
		wantField string
	}{
		{"logged", event("logged", `"2024-05-01T12:00:00Z"`), "logged"},
		{"logged invalid", event("logged", `"soon"`), "logged"},
		{"logged null", event("logged", `null`), "logged"},
		{"logged escaped key", event(`l\u006fgged`, `"2024-05-01T12:00:00Z"`), "logged"},
		{"one second past skew", event("time", `"2024-05-01T12:05:01Z"`), "time"},
		{"far future", event("time", `"2999-01-01T00:00:00Z"`), "time"},
		{"far future by offset", event("time", `"2024-05-01T12:06:00-01:00"`), "time"},
		{"other errors still reported", event("sample", `""`), "sample"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeSubmission([]byte(tt.in), now)
			if err == nil {
				t.Fatalf("DecodeSubmission(%q) succeeded, want error for field %q", tt.in, tt.wantField)
			}
			if got := fieldOf(t, err); got != tt.wantField {
				t.Errorf("DecodeSubmission(%q) error field = %q (%v), want %q", tt.in, got, err, tt.wantField)
			}
		})
	}
	_, err := DecodeSubmission([]byte(event("logged", `"2024-05-01T12:00:00Z"`)), now)
	if got, want := err.Error(), `field "logged": set by the log, not by clients`; got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
}

func TestValidate(t *testing.T) {
	if err := validEvent().Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	// Times in another zone or with a fraction are fine in code; Canonical
	// normalises them exactly as Decode would.
	e := validEvent()
	e.Time = time.Date(2024, 5, 1, 14, 0, 0, 123456789, time.FixedZone("CEST", 2*3600))
	e.Logged = time.Now()
	if err := e.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	d, err := Decode(e.Canonical())
	if err != nil {
		t.Fatal(err)
	}
	if want := validEvent().Time; d.Time != want {
		t.Errorf("round trip Time = %v, want %v", d.Time, want)
	}

	tests := []struct {
		name      string
		mutate    func(*Event)
		wantField string
	}{
		{"zero event", func(e *Event) { *e = Event{} }, "sample"},
		{"zero time", func(e *Event) { e.Time = time.Time{} }, "time"},
		{"time 1969", func(e *Event) { e.Time = time.Unix(-1, 0) }, "time"},
		{"time year 10000", func(e *Event) { e.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "time"},
		{"logged 1969", func(e *Event) { e.Logged = time.Unix(-1, 0) }, "logged"},
		{"invalid UTF-8 actor", func(e *Event) { e.Actor = "a\xffb" }, "actor"},
		{"invalid UTF-8 note", func(e *Event) { e.Note = "\xe2\x82" }, "note"},
		{"replacement character note", func(e *Event) { e.Note = "\uFFFD" }, "note"},
		{"control character note", func(e *Event) { e.Note = "a\nb" }, "note"},
		{"invalid UTF-8 sample", func(e *Event) { e.Sample = "\xff" }, "sample"},
		{"unknown action", func(e *Event) { e.Action = "moved" }, "action"},
		{"to without transfer", func(e *Event) { e.Action = Stored }, "to"},
		{"transfer without to", func(e *Event) { e.To = "" }, "to"},
		{"first error in canonical order", func(e *Event) { e.Note = "\x00"; e.Region = "" }, "region"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := validEvent()
			tt.mutate(&e)
			err := e.Validate()
			if err == nil {
				t.Fatalf("Validate(%+v) = nil, want error for field %q", e, tt.wantField)
			}
			if got := fieldOf(t, err); got != tt.wantField {
				t.Errorf("Validate error field = %q (%v), want %q", got, err, tt.wantField)
			}
		})
	}
}

// TestMaxCanonicalSize checks that the largest valid event, logged, stays
// within maxCanonicalSize and MaxEventSize, so every entry the log writes can
// be decoded again.
func TestMaxCanonicalSize(t *testing.T) {
	for _, rune4 := range []bool{false, true} {
		actor := strings.Repeat(`"`, 64)
		if rune4 {
			actor = strings.Repeat("😀", 64)
		}
		e := Event{
			Sample:   strings.Repeat("s", 128),
			Action:   Transferred,
			Location: strings.Repeat("a", 32),
			To:       strings.Repeat("b", 32),
			Region:   "ABCDEFGH",
			Customer: hex64,
			Time:     time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC),
			Logged:   time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC),
			Actor:    actor,
			Note:     strings.Repeat(`\`, 256),
		}
		if err := e.Validate(); err != nil {
			t.Fatal(err)
		}
		c := e.Canonical()
		if len(c) > maxCanonicalSize || len(c) > MaxEventSize {
			t.Errorf("len(Canonical()) = %d, want ≤ %d and ≤ %d", len(c), maxCanonicalSize, MaxEventSize)
		}
		if _, err := DecodeEntry(c); err != nil {
			t.Errorf("DecodeEntry(maximal event) = %v", err)
		}
	}
	if maxCanonicalSize > 1300 {
		t.Errorf("maxCanonicalSize = %d, documented as about 1.2 KiB", maxCanonicalSize)
	}
}

func TestDecodeDoesNotKeepInput(t *testing.T) {
	in := []byte(event("note", `"abc"`))
	e, err := Decode(in)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		in[i] = 'x'
	}
	if e.Note != "abc" || e.Sample != "s-1" {
		t.Errorf("decoded strings changed with the input buffer: %+v", e)
	}
}
