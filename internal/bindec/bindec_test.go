package bindec

import (
	"encoding/binary"
	"strings"
	"testing"
)

// TestDecoder: each reader takes its value and advances; a bad, truncated
// or non-shortest number, short bytes and an over-long string are errors
// naming the form, and after the first error nothing more is read.
func TestDecoder(t *testing.T) {
	var b []byte
	b = binary.AppendUvarint(b, 300)
	b = binary.AppendVarint(b, -5)
	b = append(b, 3, 'a', 'b', 'c', 9)
	d := Decoder{B: b, Prefix: "x: malformed"}
	if v := d.Uvarint(); v != 300 {
		t.Fatalf("Uvarint = %d", v)
	}
	if v := d.Varint(); v != -5 {
		t.Fatalf("Varint = %d", v)
	}
	if s := d.String(3); s != "abc" {
		t.Fatalf("String = %q", s)
	}
	if v := d.Bytes(1); len(v) != 1 || v[0] != 9 || d.Err != nil || len(d.B) != 0 {
		t.Fatalf("Bytes = %v, err %v, left %d", v, d.Err, len(d.B))
	}
	for _, tc := range []struct {
		name string
		read func(*Decoder)
		in   []byte
		want string
	}{
		{"empty", func(d *Decoder) { d.Uvarint() }, nil, "bad number"},
		{"long uvarint", func(d *Decoder) { d.Uvarint() }, []byte{0x80, 0}, "shortest form"},
		{"long varint", func(d *Decoder) { d.Varint() }, []byte{0x80, 0}, "shortest form"},
		{"truncated varint", func(d *Decoder) { d.Varint() }, []byte{0x80}, "bad number: truncated"},
		{"short bytes", func(d *Decoder) { d.Bytes(2) }, []byte{1}, "truncated"},
		{"long string", func(d *Decoder) { d.String(2) }, []byte{3, 'a', 'b', 'c'}, "name of 3 bytes"},
		{"short string", func(d *Decoder) { d.String(9) }, []byte{3, 'a'}, "truncated"},
	} {
		d := Decoder{B: tc.in, Prefix: "x: malformed"}
		tc.read(&d)
		if d.Err == nil || !strings.HasPrefix(d.Err.Error(), "x: malformed: ") || !strings.Contains(d.Err.Error(), tc.want) {
			t.Errorf("%s: %v, want x: malformed: …%s…", tc.name, d.Err, tc.want)
			continue
		}
		first := d.Err
		left := len(d.B)
		d.Fail("again")
		if d.Uvarint() != 0 || d.Bytes(0) != nil || d.Err != first || len(d.B) != left {
			t.Errorf("%s: the decoder read on after its error", tc.name)
		}
	}
}
