package record

import (
	"fmt"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"
)

// Action is what happened to a sample. Exactly the six constants below are
// valid; Validate rejects any other value, including the empty one.
type Action string

// The actions an event can record.
const (
	// Collected: the sample was taken from a customer at Location.
	Collected Action = "collected"
	// Transferred: the sample was copied from Location to To. The copy at
	// Location stays until a Deleted event there.
	Transferred Action = "transferred"
	// Stored: the sample was put into storage at Location.
	Stored Action = "stored"
	// Analysed: the sample was analysed at Location.
	Analysed Action = "analysed"
	// Released: the sample was released (for example its verdict published)
	// from Location.
	Released Action = "released"
	// Deleted: the copy of the sample at Location was destroyed.
	Deleted Action = "deleted"
)

// MaxEventSize is the largest JSON input, in bytes and including any white
// space, that Decode, DecodeSubmission and DecodeEntry accept for one event.
const MaxEventSize = 4096

// MaxFutureSkew is how far past the caller's clock DecodeSubmission lets an
// event's time be.
const MaxFutureSkew = 5 * time.Minute

// Event is one handling of one sample.
//
// The string fields hold the JSON values unescaped. An Event returned by
// Decode, DecodeSubmission or DecodeEntry satisfies Validate, its Time and
// Logged are in UTC with whole seconds (Logged possibly zero), and decoding
// its Canonical form gives back an Event equal to it under ==.
type Event struct {
	Sample   string // opaque sample identifier
	Location string // data centre where it happened; for Transferred the source
	To       string // destination data centre; set exactly when Action is Transferred
	Region   string // customer jurisdiction, such as "EU" or "ROW"
	Customer string // optional commitment to the customer, 64 lowercase hex digits
	Actor    string // system or service that did it
	Note     string // optional free text
	Action   Action // what happened

	Time   time.Time // when it happened, as claimed by the submitter; UTC, whole seconds
	Logged time.Time // when the log accepted it; zero unless set by the log
}

// FieldError reports input or an Event that breaks the rules of this package.
// Every error returned by this package is a *FieldError.
//
// Field is the JSON name of the offending field ("sample", "to", …), or the
// unknown or duplicated key as it was written after unescaping. Field is empty
// when the problem is with the event as a whole: its size, its JSON syntax
// outside any field's value, or (DecodeEntry) its canonical form.
type FieldError struct {
	Field  string
	Reason string
}

// Error returns `field "NAME": REASON`, or just REASON when Field is empty.
func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return "field " + strconv.Quote(e.Field) + ": " + e.Reason
}

func fieldErr(field, reason string) error {
	return &FieldError{Field: field, Reason: reason}
}

// Validate reports the first field, in canonical order, that breaks the
// rules given in the package documentation, as a *FieldError, or nil.
//
// Validate applies the same rules as Decode to an Event built in code. Times
// may be in any location and carry fractions of a second: the year rule is
// checked on the time converted to UTC, and Canonical converts to UTC and
// drops the fraction just as Decode does. Logged may be zero.
func (e Event) Validate() error {
	return e.validate(nil, nil)
}

// validate checks the fields in canonical order. timeErr and loggedErr, if
// not nil, are reported in place of the checks of Time and Logged: the
// decoder uses them for time values it could not parse.
func (e *Event) validate(timeErr, loggedErr error) error {
	if err := CheckSample(e.Sample); err != nil {
		return err
	}

	switch e.Action {
	case Collected, Transferred, Stored, Analysed, Released, Deleted:
	case "":
		return fieldErr("action", "required")
	default:
		return fieldErr("action", fmt.Sprintf("unknown action %q: want one of collected, transferred, stored, analysed, released, deleted", string(e.Action)))
	}

	if err := checkLocation("location", e.Location); err != nil {
		return err
	}

	if e.Action == Transferred {
		if e.To == "" {
			return fieldErr("to", `required when action is "transferred"`)
		}
		if err := checkLocation("to", e.To); err != nil {
			return err
		}
		if e.To == e.Location {
			return fieldErr("to", "must differ from location")
		}
	} else if e.To != "" {
		return fieldErr("to", fmt.Sprintf("not allowed when action is %q, only for \"transferred\"", string(e.Action)))
	}

	if n := len(e.Region); n == 0 {
		return fieldErr("region", "required")
	} else if n < 2 || n > 8 {
		return fieldErr("region", fmt.Sprintf("%d characters: want 2..8 of A-Z", n))
	}
	for i := 0; i < len(e.Region); i++ {
		if c := e.Region[i]; c < 'A' || c > 'Z' {
			return fieldErr("region", badChar(e.Region[i:], "A-Z"))
		}
	}

	if e.Customer != "" {
		if len(e.Customer) != 64 {
			return fieldErr("customer", fmt.Sprintf("%d characters: want exactly 64 lowercase hex digits", len(e.Customer)))
		}
		for i := 0; i < len(e.Customer); i++ {
			if c := e.Customer[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return fieldErr("customer", badChar(e.Customer[i:], "0-9 a-f"))
			}
		}
	}

	if timeErr != nil {
		return timeErr
	}
	if e.Time.IsZero() {
		return fieldErr("time", "required")
	}
	if err := checkYear("time", e.Time); err != nil {
		return err
	}

	if loggedErr != nil {
		return loggedErr
	}
	if !e.Logged.IsZero() {
		if err := checkYear("logged", e.Logged); err != nil {
			return err
		}
	}

	if e.Actor == "" {
		return fieldErr("actor", "required")
	}
	if err := checkText("actor", e.Actor); err != nil {
		return err
	}
	if n := utf8.RuneCountInString(e.Actor); n > 64 {
		return fieldErr("actor", fmt.Sprintf("%d characters, more than the maximum of 64", n))
	}

	if len(e.Note) > 256 {
		return fieldErr("note", fmt.Sprintf("%d bytes, more than the maximum of 256", len(e.Note)))
	}
	return checkText("note", e.Note)
}

// CheckSample reports, as a *FieldError for "sample", whether s is not a
// valid sample identifier (1..128 characters of A-Z a-z 0-9 : . _ -).
func CheckSample(s string) error {
	if s == "" {
		return fieldErr("sample", "required")
	}
	if len(s) > 128 {
		return fieldErr("sample", fmt.Sprintf("%d characters, more than the maximum of 128", len(s)))
	}
	for i := 0; i < len(s); i++ {
		if !isSampleByte(s[i]) {
			return fieldErr("sample", badChar(s[i:], "A-Z a-z 0-9 : . _ -"))
		}
	}
	return nil
}

func isSampleByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == ':' || c == '.' || c == '_' || c == '-'
}

func checkLocation(field, s string) error {
	if s == "" {
		return fieldErr(field, "required")
	}
	if len(s) < 2 || len(s) > 32 {
		return fieldErr(field, fmt.Sprintf("%d characters: want 2..32 of a-z 0-9 -", len(s)))
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return fieldErr(field, badChar(s[i:], "a-z 0-9 -"))
		}
	}
	return nil
}

// badChar describes the first character of s, which is not in allowed.
func badChar(s, allowed string) string {
	r, size := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError && size == 1 {
		return "invalid UTF-8"
	}
	return fmt.Sprintf("character %q not allowed: want %s", r, allowed)
}

// checkText checks that s is valid UTF-8 made of printable runes other than
// U+FFFD, the mark of text that was lost to a bad encoding somewhere.
func checkText(field, s string) error {
	for i, r := range s {
		switch {
		case r == utf8.RuneError:
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return fieldErr(field, "invalid UTF-8")
			}
			return fieldErr(field, "replacement character U+FFFD not allowed")
		case !unicode.IsPrint(r):
			return fieldErr(field, fmt.Sprintf("character %U not allowed: want printable characters (no control or format characters)", r))
		}
	}
	return nil
}

func checkYear(field string, t time.Time) error {
	if y := t.UTC().Year(); y < 1970 || y > 9999 {
		return fieldErr(field, fmt.Sprintf("year %d (in UTC) outside 1970..9999", y))
	}
	return nil
}
