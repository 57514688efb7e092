// Package bindec reads the compact binary forms custody saves of derived
// state (the stats snapshot, the activity aggregate, the witness
// history): unsigned and signed varints that must be in their shortest
// form (so that one value has one encoding), bytes and bounded strings.
//
// A Decoder remembers the first error and then reads nothing more, so a
// parser reads a whole form and checks Err once; every error starts with
// the Decoder's Prefix, which names the form.
package bindec

import (
	"encoding/binary"
	"fmt"
)

// Decoder reads B from the front. Its zero value (with B set) is ready;
// Prefix, if set, starts every error ("stats: malformed snapshot").
type Decoder struct {
	B      []byte
	Err    error
	Prefix string
}

// Fail records the error format, args (after Prefix) unless one is
// recorded already.
func (d *Decoder) Fail(format string, args ...any) {
	if d.Err == nil {
		d.Err = fmt.Errorf(d.Prefix+": "+format, args...)
	}
}

// Uvarint reads an unsigned varint in its shortest form; 0 after an
// error.
func (d *Decoder) Uvarint() uint64 {
	if d.Err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.B)
	if n <= 0 {
		d.Fail("bad number: truncated, or more than 64 bits")
		return 0
	}
	if n != len(binary.AppendUvarint(nil, v)) {
		d.Fail("number %d not in its shortest form", v)
		return 0
	}
	d.B = d.B[n:]
	return v
}

// Varint reads a signed (zig-zag) varint in its shortest form; 0 after an
// error.
func (d *Decoder) Varint() int64 {
	if d.Err != nil {
		return 0
	}
	v, n := binary.Varint(d.B)
	if n <= 0 {
		d.Fail("bad number: truncated, or more than 64 bits")
		return 0
	}
	if n != len(binary.AppendVarint(nil, v)) {
		d.Fail("number %d not in its shortest form", v)
		return 0
	}
	d.B = d.B[n:]
	return v
}

// Bytes reads the next n bytes (a slice of B, not a copy); nil after an
// error or if fewer are left ("truncated").
func (d *Decoder) Bytes(n int) []byte {
	if d.Err != nil {
		return nil
	}
	if n < 0 || len(d.B) < n {
		d.Fail("truncated")
		return nil
	}
	v := d.B[:n]
	d.B = d.B[n:]
	return v
}

// String reads a length (Uvarint) of at most max bytes and that many
// bytes; "" after an error.
func (d *Decoder) String(max int) string {
	n := d.Uvarint()
	if d.Err == nil && n > uint64(max) {
		d.Fail("name of %d bytes, more than %d", n, max)
		return ""
	}
	return string(d.Bytes(int(n)))
}
