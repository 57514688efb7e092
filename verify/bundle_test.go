package verify

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestBundleTessera(t *testing.T) {
	// tessera testdata/log/tile/entries/000.p/3.
	want := []byte("\x00\x03one\x00\x03two\x00\x05three")
	var b []byte
	for _, e := range []string{"one", "two", "three"} {
		var err error
		if b, err = AppendBundleEntry(b, []byte(e)); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(b, want) {
		t.Errorf("AppendBundleEntry(one, two, three) = %q, want %q", b, want)
	}
	entries, err := ParseBundle(want, 3)
	if err != nil {
		t.Fatalf("ParseBundle(tessera 000.p/3, 3) = %v", err)
	}
	if diff := cmp.Diff([][]byte{[]byte("one"), []byte("two"), []byte("three")}, entries); diff != "" {
		t.Errorf("ParseBundle(tessera 000.p/3, 3) mismatch (-want +got):\n%s", diff)
	}
	// interop.md 9: the leaf hash of "one" starts tile/0/000.p/3.
	if got, want := LeafHash(entries[0]), "d0d7360ab79f58ab1e1e3fe64ad77e2ea0bc07e36b5f46ed2223edd9298df9e9"; hex.EncodeToString(got[:]) != want {
		t.Errorf("LeafHash(one) = %x, want %s", got, want)
	}
}

func TestBundleFull(t *testing.T) {
	var b []byte
	var want [][]byte
	for i := range TileWidth {
		e := bytes.Repeat([]byte{byte(i)}, i+1)
		want = append(want, e)
		var err error
		if b, err = AppendBundleEntry(b, e); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ParseBundle(b, TileWidth)
	if err != nil {
		t.Fatalf("ParseBundle(full bundle, 256) = %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseBundle(full bundle) mismatch (-want +got):\n%s", diff)
	}
	// Entries alias the bundle but cannot grow into the next entry.
	got[0] = append(got[0], 0xff)
	if b[3] != 0 || b[4] != 2 {
		t.Errorf("appending to a parsed entry overwrote the bundle")
	}
}

func TestAppendBundleEntryLimits(t *testing.T) {
	max := bytes.Repeat([]byte{'a'}, MaxEntrySize)
	b, err := AppendBundleEntry([]byte("prefix"), max)
	if err != nil {
		t.Fatalf("AppendBundleEntry(65535 bytes) = %v", err)
	}
	if !bytes.Equal(b[:8], []byte("prefix\xff\xff")) || len(b) != 6+2+MaxEntrySize {
		t.Errorf("AppendBundleEntry(65535 bytes) wrote a wrong prefix or length")
	}
	for _, tc := range []struct {
		name    string
		entry   []byte
		wantErr string
	}{
		{"65536 bytes", make([]byte, MaxEntrySize+1), "entry is 65536 bytes, more than the maximum 65535"},
		{"empty", nil, "entry is empty"},
	} {
		got, err := AppendBundleEntry([]byte("keep"), tc.entry)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("AppendBundleEntry(%s) = %v, want error containing %q", tc.name, err, tc.wantErr)
		}
		if string(got) != "keep" {
			t.Errorf("AppendBundleEntry(%s) changed the bundle to %q on error", tc.name, got)
		}
	}
}

func TestParseBundleMalformed(t *testing.T) {
	const good = "\x00\x03one\x00\x03two\x00\x05three"
	for _, tc := range []struct {
		name    string
		data    string
		want    int
		wantErr string
	}{
		{"empty bundle", "", 1, "has 0 entries, want 1"},
		{"too few entries", good, 4, "has 3 entries, want 4"},
		{"too many entries", good, 2, "7 trailing bytes at offset 10 after 2 entries"},
		{"truncated length", good + "\x00", 4, "entry 3 at offset 17: length prefix truncated"},
		{"truncated length as trailing byte", good + "\x00", 3, "1 trailing bytes at offset 17"},
		{"truncated body", "\x00\x03one\x00\x03tw", 2, "entry 1 at offset 5: length 3 but only 2 bytes left"},
		{"length beyond data", "\xff\xffabc", 1, "entry 0 at offset 0: length 65535 but only 3 bytes left"},
		{"trailing bytes", good + "x", 3, "1 trailing bytes at offset 17"},
		{"zero-length entry", "\x00\x03one\x00\x00\x00\x03two", 3, "entry 1 at offset 5: zero-length entry"},
		{"want 0", "", 0, "want 0 entries, must be 1 to 256"},
		{"want 257", good, 257, "want 257 entries, must be 1 to 256"},
		{"want negative", good, -1, "want -1 entries"},
	} {
		_, err := ParseBundle([]byte(tc.data), tc.want)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: ParseBundle(%q, %d) = %v, want error containing %q", tc.name, tc.data, tc.want, err, tc.wantErr)
		}
	}
}
