package record

import (
	"bytes"
	"fmt"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// Decode parses one event and checks every rule in the package
// documentation. logged is optional. On success the Event satisfies
// Validate; on failure the error is a *FieldError and the Event is zero.
func Decode(data []byte) (Event, error) {
	return decode(data, false)
}

// DecodeSubmission decodes an event sent by a client to be logged. On top of
// Decode it rejects any logged key (Field "logged": the log sets it, not the
// client) and a time later than now+MaxFutureSkew (Field "time"). The Event
// it returns has a zero Logged.
func DecodeSubmission(data []byte, now time.Time) (Event, error) {
	e, err := decode(data, true)
	if err != nil {
		return Event{}, err
	}
	if limit := now.Add(MaxFutureSkew); e.Time.After(limit) {
		return Event{}, fieldErr("time", fmt.Sprintf("%s is more than %v after the log's clock (%s)",
			e.Time.Format(timeLayout), MaxFutureSkew, now.UTC().Format(timeLayout)))
	}
	return e, nil
}

// DecodeEntry decodes an entry read back from the log: an event that the log
// accepted, with logged set, in canonical form. On top of Decode it requires
// logged (Field "logged") and requires data to be byte for byte the
// Canonical form of the Event (Field "", "entry is not in canonical form"),
// so one entry has exactly one encoding.
func DecodeEntry(data []byte) (Event, error) {
	e, err := decode(data, false)
	if err != nil {
		return Event{}, err
	}
	if e.Logged.IsZero() {
		return Event{}, fieldErr("logged", "required in a log entry")
	}
	var buf [maxCanonicalSize]byte
	if !bytes.Equal(data, e.appendCanonical(buf[:0], true)) {
		return Event{}, fieldErr("", "entry is not in canonical form")
	}
	return e, nil
}

// Field indexes, in canonical order.
const (
	fSample = iota
	fAction
	fLocation
	fTo
	fRegion
	fCustomer
	fTime
	fLogged
	fActor
	fNote
	numFields
)

var fieldNames = [numFields]string{"sample", "action", "location", "to", "region", "customer", "time", "logged", "actor", "note"}

func fieldIndex(key []byte) int {
	switch string(key) {
	case "sample":
		return fSample
	case "action":
		return fAction
	case "location":
		return fLocation
	case "to":
		return fTo
	case "region":
		return fRegion
	case "customer":
		return fCustomer
	case "time":
		return fTime
	case "logged":
		return fLogged
	case "actor":
		return fActor
	case "note":
		return fNote
	}
	return -1
}

// decoder is a small, strict JSON parser for exactly one flat object of
// string values. It never recurses, so no input can exhaust the stack.
//
// Unescaped strings are appended to a buffer that is passed in and returned
// rather than kept in the decoder, so that the buffer can live on the stack.
type decoder struct {
	data []byte
	pos  int
}

// decode parses and validates one event. With submission set, a logged key
// is an error as soon as it is seen.
func decode(data []byte, submission bool) (Event, error) {
	if len(data) > MaxEventSize {
		return Event{}, fieldErr("", fmt.Sprintf("event is %d bytes, more than the maximum of %d", len(data), MaxEventSize))
	}
	// Unescaping never lengthens a string, so the values fit in len(data).
	var scratch [MaxEventSize]byte
	buf := scratch[:0] // unescaped string values, back to back
	d := decoder{data: data}
	var start, end [numFields]int
	var seen uint16

	d.skipSpace()
	if d.pos == len(d.data) {
		return Event{}, fieldErr("", "empty input: want a JSON object")
	}
	if c := d.data[d.pos]; c != '{' {
		if kind := valueKind(c); kind != "" {
			return Event{}, fieldErr("", "not a JSON object but "+kind)
		}
		return Event{}, d.syntax("", "want '{'")
	}
	d.pos++
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
	} else {
		for {
			if d.pos == len(d.data) {
				return Event{}, d.syntax("", "unexpected end of input, want a field name")
			}
			if d.data[d.pos] != '"' {
				return Event{}, d.syntax("", "want a field name in double quotes")
			}
			mark := len(buf)
			var err error
			if buf, err = d.readString(buf, ""); err != nil {
				return Event{}, err
			}
			key := buf[mark:]
			f := fieldIndex(key)
			if f < 0 {
				return Event{}, fieldErr(string(key), "unknown field")
			}
			buf = buf[:mark]
			name := fieldNames[f]
			if seen&(1<<f) != 0 {
				return Event{}, fieldErr(name, "duplicate field")
			}
			if f == fLogged && submission {
				return Event{}, fieldErr(name, "set by the log, not by clients")
			}
			seen |= 1 << f

			d.skipSpace()
			if d.pos == len(d.data) || d.data[d.pos] != ':' {
				return Event{}, d.syntax(name, "want ':' after the field name")
			}
			d.pos++
			d.skipSpace()
			if d.pos == len(d.data) {
				return Event{}, d.syntax(name, "unexpected end of input, want a value")
			}
			if c := d.data[d.pos]; c != '"' {
				if valueKind(c) != "" {
					return Event{}, fieldErr(name, "wrong type: want string")
				}
				return Event{}, d.syntax(name, "want a string value")
			}
			start[f] = len(buf)
			if buf, err = d.readString(buf, name); err != nil {
				return Event{}, err
			}
			end[f] = len(buf)

			d.skipSpace()
			if d.pos == len(d.data) {
				return Event{}, d.syntax("", "unexpected end of input, want ',' or '}'")
			}
			if c := d.data[d.pos]; c == '}' {
				d.pos++
				break
			} else if c != ',' {
				return Event{}, d.syntax("", "want ',' or '}' after a value")
			}
			d.pos++
			d.skipSpace()
		}
	}
	d.skipSpace()
	if d.pos != len(d.data) {
		return Event{}, d.syntax("", "data after the JSON object")
	}

	// One allocation holds every string of the event.
	all := string(buf)
	e := Event{
		Sample:   all[start[fSample]:end[fSample]],
		Action:   Action(all[start[fAction]:end[fAction]]),
		Location: all[start[fLocation]:end[fLocation]],
		To:       all[start[fTo]:end[fTo]],
		Region:   all[start[fRegion]:end[fRegion]],
		Customer: all[start[fCustomer]:end[fCustomer]],
		Actor:    all[start[fActor]:end[fActor]],
		Note:     all[start[fNote]:end[fNote]],
	}
	var timeErr, loggedErr error
	if seen&(1<<fTime) != 0 {
		e.Time, timeErr = parseTime("time", all[start[fTime]:end[fTime]])
	}
	if seen&(1<<fLogged) != 0 {
		e.Logged, loggedErr = parseTime("logged", all[start[fLogged]:end[fLogged]])
	}
	if err := e.validate(timeErr, loggedErr); err != nil {
		return Event{}, err
	}
	return e, nil
}

// valueKind names the JSON type of a value starting with c, other than
// string; it returns "" if no value of another type starts with c.
func valueKind(c byte) string {
	switch c {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return "a number"
	}
	return ""
}

func (d *decoder) syntax(field, msg string) error {
	return fieldErr(field, fmt.Sprintf("invalid JSON at byte %d: %s", d.pos, msg))
}

func (d *decoder) skipSpace() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// readString parses the JSON string at d.pos, which starts with '"', and
// appends its unescaped value to buf. field names the value in errors; it is
// "" for a key.
func (d *decoder) readString(buf []byte, field string) ([]byte, error) {
	d.pos++
	for {
		i := d.pos
		for i < len(d.data) {
			c := d.data[i]
			if c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
				break
			}
			i++
		}
		buf = append(buf, d.data[d.pos:i]...)
		d.pos = i
		if i == len(d.data) {
			return buf, d.syntax(field, "unterminated string")
		}
		switch c := d.data[i]; {
		case c == '"':
			d.pos++
			return buf, nil
		case c == '\\':
			var err error
			if buf, err = d.readEscape(buf, field); err != nil {
				return buf, err
			}
		case c < 0x20:
			return buf, d.syntax(field, "unescaped control character in string")
		default:
			r, size := utf8.DecodeRune(d.data[i:])
			if r == utf8.RuneError && size == 1 {
				return buf, fieldErr(field, fmt.Sprintf("invalid UTF-8 at byte %d", i))
			}
			buf = append(buf, d.data[i:i+size]...)
			d.pos += size
		}
	}
}

// readEscape decodes the escape sequence at d.pos, which starts with '\',
// and appends it to buf.
func (d *decoder) readEscape(buf []byte, field string) ([]byte, error) {
	if d.pos+1 >= len(d.data) {
		return buf, d.syntax(field, "unterminated string")
	}
	var c byte
	switch d.data[d.pos+1] {
	case '"':
		c = '"'
	case '\\':
		c = '\\'
	case '/':
		c = '/'
	case 'b':
		c = '\b'
	case 'f':
		c = '\f'
	case 'n':
		c = '\n'
	case 'r':
		c = '\r'
	case 't':
		c = '\t'
	case 'u':
		r, ok := d.hex4(d.pos + 2)
		if !ok {
			return buf, d.syntax(field, `invalid \u escape`)
		}
		if utf16.IsSurrogate(r) {
			r2, ok := rune(0), false
			if r < 0xdc00 && d.pos+11 < len(d.data) && d.data[d.pos+6] == '\\' && d.data[d.pos+7] == 'u' {
				r2, ok = d.hex4(d.pos + 8)
			}
			if !ok || r2 < 0xdc00 || r2 > 0xdfff {
				return buf, fieldErr(field, fmt.Sprintf("invalid escape at byte %d: lone UTF-16 surrogate", d.pos))
			}
			r = utf16.DecodeRune(r, r2)
			d.pos += 6
		}
		d.pos += 6
		return utf8.AppendRune(buf, r), nil
	default:
		return buf, d.syntax(field, "invalid escape")
	}
	d.pos += 2
	return append(buf, c), nil
}

// hex4 decodes the four hex digits at data[i:].
func (d *decoder) hex4(i int) (rune, bool) {
	if i+4 > len(d.data) {
		return 0, false
	}
	var r rune
	for _, c := range d.data[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// parseTime parses a strict RFC 3339 date-time:
// YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM), with upper-case T and Z.
// It returns the time in UTC, the fraction dropped.
func parseTime(field string, s string) (time.Time, error) {
	bad := func(why string) (time.Time, error) {
		return time.Time{}, fieldErr(field, fmt.Sprintf("%q is not an RFC 3339 time such as 2024-05-01T12:00:00Z: %s", s, why))
	}
	if len(s) < len("2006-01-02T15:04:05Z") ||
		s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return bad("bad syntax")
	}
	year, ok1 := digits(s[0:4])
	month, ok2 := digits(s[5:7])
	day, ok3 := digits(s[8:10])
	hour, ok4 := digits(s[11:13])
	minute, ok5 := digits(s[14:16])
	sec, ok6 := digits(s[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) {
		return bad("bad syntax")
	}
	rest := s[19:]
	if rest[0] == '.' {
		n := 1
		for n < len(rest) && '0' <= rest[n] && rest[n] <= '9' {
			n++
		}
		if n == 1 {
			return bad("no digits after the decimal point")
		}
		rest = rest[n:]
	}
	var offset int
	switch {
	case len(rest) == 1 && rest[0] == 'Z':
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		oh, ok1 := digits(rest[1:3])
		om, ok2 := digits(rest[4:6])
		if !ok1 || !ok2 {
			return bad("bad offset")
		}
		if oh > 23 || om > 59 {
			return bad("offset out of range")
		}
		offset = (oh*60 + om) * 60
		if rest[0] == '-' {
			offset = -offset
		}
	default:
		return bad("want Z or an offset such as +02:00 after the seconds")
	}
	if month < 1 || month > 12 || day < 1 || day > daysIn(month, year) {
		return bad("no such date")
	}
	if hour > 23 || minute > 59 || sec > 59 {
		return bad("no such time of day")
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC)
	return t.Add(-time.Duration(offset) * time.Second), nil
}

func digits(b string) (int, bool) {
	n := 0
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
