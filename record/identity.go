package record

import (
	"bytes"
	"crypto/sha256"
	"errors"
)

// EntryIdentity returns the identity (Event.Identity) of the event whose
// canonical entry is entry (as DecodeEntry accepts it), without decoding
// it: the SHA-256 of entry with its logged member cut out. It is for
// callers that hash many entries they have already decoded and checked
// (the audit's site check); on anything else it may return an error or an
// identity of nothing in particular.
func EntryIdentity(entry []byte) ([32]byte, error) {
	// In canonical form the time member is the first `","time":"` (no
	// earlier value may hold a quote unescaped, and sample, action,
	// location, to, region and customer cannot hold one at all), its value
	// is 20 bytes, and logged, if present, comes right after it.
	const timeKey, loggedKey = `","time":"`, `","logged":"`
	i := bytes.Index(entry, []byte(timeKey))
	if i < 0 {
		return [32]byte{}, errors.New("record: not a canonical event entry: no time")
	}
	cut := i + len(timeKey) + len("2006-01-02T15:04:05Z")
	if cut > len(entry) {
		return [32]byte{}, errors.New("record: not a canonical event entry: short time")
	}
	if !bytes.HasPrefix(entry[cut:], []byte(loggedKey)) {
		return sha256.Sum256(entry), nil
	}
	end := cut + len(loggedKey) + len("2006-01-02T15:04:05Z")
	if end > len(entry) {
		return [32]byte{}, errors.New("record: not a canonical event entry: short logged")
	}
	if n := cut + len(entry) - end; n <= 1024 {
		// The usual case: one copy on the stack, no hash state on the heap.
		var buf [1024]byte
		copy(buf[copy(buf[:], entry[:cut]):], entry[end:])
		return sha256.Sum256(buf[:n]), nil
	}
	h := sha256.New()
	h.Write(entry[:cut])
	h.Write(entry[end:])
	var id [32]byte
	h.Sum(id[:0])
	return id, nil
}
