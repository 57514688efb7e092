package verify

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// MaxEntrySize is the largest entry an entry bundle can hold: its length
// must fit the 2-byte length prefix.
const MaxEntrySize = 1<<16 - 1

// AppendBundleEntry appends entry to bundle as a 2-byte big-endian length
// followed by the entry bytes, and returns the extended bundle. It rejects an
// entry longer than MaxEntrySize rather than let the length wrap, and it
// rejects an empty entry: custody never logs one, and ParseBundle refuses
// them, so what this function writes is exactly what ParseBundle accepts.
func AppendBundleEntry(bundle, entry []byte) ([]byte, error) {
	if len(entry) == 0 {
		return bundle, errors.New("appending to entry bundle: entry is empty")
	}
	if len(entry) > MaxEntrySize {
		return bundle, fmt.Errorf("appending to entry bundle: entry is %d bytes, more than the maximum %d", len(entry), MaxEntrySize)
	}
	bundle = binary.BigEndian.AppendUint16(bundle, uint16(len(entry)))
	return append(bundle, entry...), nil
}

// ParseBundle splits an entry bundle into exactly want entries, where want
// is 1 to TileWidth (TileWidth for a full bundle, W for a ".p/W" one). It
// rejects a truncated length prefix or entry, a zero-length entry, fewer or
// more than want entries, and trailing bytes; errors name the byte offset.
// The returned entries alias data. Re-appending them with AppendBundleEntry
// reproduces data exactly.
func ParseBundle(data []byte, want int) ([][]byte, error) {
	if want < 1 || want > TileWidth {
		return nil, fmt.Errorf("parsing entry bundle: want %d entries, must be 1 to %d", want, TileWidth)
	}
	entries := make([][]byte, 0, want)
	off := 0
	for len(entries) < want {
		if off == len(data) {
			return nil, fmt.Errorf("parsing entry bundle: has %d entries, want %d", len(entries), want)
		}
		if len(data)-off < 2 {
			return nil, fmt.Errorf("parsing entry bundle: entry %d at offset %d: length prefix truncated", len(entries), off)
		}
		n := int(binary.BigEndian.Uint16(data[off:]))
		if n == 0 {
			return nil, fmt.Errorf("parsing entry bundle: entry %d at offset %d: zero-length entry", len(entries), off)
		}
		if len(data)-off-2 < n {
			return nil, fmt.Errorf("parsing entry bundle: entry %d at offset %d: length %d but only %d bytes left", len(entries), off, n, len(data)-off-2)
		}
		entries = append(entries, data[off+2:off+2+n:off+2+n])
		off += 2 + n
	}
	if off != len(data) {
		return nil, fmt.Errorf("parsing entry bundle: %d trailing bytes at offset %d after %d entries", len(data)-off, off, want)
	}
	return entries, nil
}
