package record

import (
	"crypto/sha256"
	"time"
)

// timeLayout is the canonical time format: UTC, whole seconds.
const timeLayout = "2006-01-02T15:04:05Z"

// maxCanonicalSize bounds the canonical form of a valid event: every field
// at its longest, actor and note made of characters that need escaping or
// four bytes of UTF-8.
const maxCanonicalSize = len(`{"sample":"","action":"","location":"","to":"","region":"","customer":"","time":"","logged":"","actor":"","note":""}`) +
	128 + len(Transferred) + 32 + 32 + 8 + 64 + 2*len(timeLayout) + 64*4 + 2*256

// Canonical returns the canonical encoding of e: the keys in the order
// sample, action, location, to, region, customer, time, logged, actor, note;
// to, customer, logged and note left out when empty; times in UTC as
// "2006-01-02T15:04:05Z" with any fraction of a second dropped; strings raw
// UTF-8 with only `"` and `\` escaped; no white space.
//
// For an Event that satisfies Validate the result is accepted by Decode, which
// returns e with its times normalised, and it is at most about 1.2 KiB. For
// any other Event the result is deterministic but may not decode.
func (e Event) Canonical() []byte {
	n := 160 + len(e.Sample) + len(e.Action) + len(e.Location) + len(e.To) + len(e.Region) +
		len(e.Customer) + len(e.Actor) + len(e.Note)
	return e.appendCanonical(make([]byte, 0, n), true)
}

// Identity returns the SHA-256 of the canonical form of e without logged: two
// submissions of the same event have the same identity whenever they are
// logged, and any change to another field changes it.
func (e Event) Identity() [32]byte {
	var buf [maxCanonicalSize]byte
	return sha256.Sum256(e.appendCanonical(buf[:0], false))
}

func (e *Event) appendCanonical(b []byte, withLogged bool) []byte {
	b = append(b, `{"sample":"`...)
	b = appendString(b, e.Sample)
	b = append(b, `","action":"`...)
	b = appendString(b, string(e.Action))
	b = append(b, `","location":"`...)
	b = appendString(b, e.Location)
	if e.To != "" {
		b = append(b, `","to":"`...)
		b = appendString(b, e.To)
	}
	b = append(b, `","region":"`...)
	b = appendString(b, e.Region)
	if e.Customer != "" {
		b = append(b, `","customer":"`...)
		b = appendString(b, e.Customer)
	}
	b = append(b, `","time":"`...)
	b = appendTime(b, e.Time)
	if withLogged && !e.Logged.IsZero() {
		b = append(b, `","logged":"`...)
		b = appendTime(b, e.Logged)
	}
	b = append(b, `","actor":"`...)
	b = appendString(b, e.Actor)
	if e.Note != "" {
		b = append(b, `","note":"`...)
		b = appendString(b, e.Note)
	}
	return append(b, `"}`...)
}

// appendString appends s with `"` and `\` escaped and nothing else changed.
func appendString(b []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			b = append(b, s[last:i]...)
			b = append(b, '\\', c)
			last = i + 1
		}
	}
	return append(b, s[last:]...)
}

func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, timeLayout)
	}
	hour, minute, sec := t.Clock()
	return append(b,
		byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-',
		byte('0'+int(month)/10), byte('0'+int(month)%10), '-',
		byte('0'+day/10), byte('0'+day%10), 'T',
		byte('0'+hour/10), byte('0'+hour%10), ':',
		byte('0'+minute/10), byte('0'+minute%10), ':',
		byte('0'+sec/10), byte('0'+sec%10), 'Z')
}
