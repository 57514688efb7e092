package record

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

func testAttestation() Attestation {
	a := Attestation{
		Origin: "transparency.example.com/custody",
		Site:   "ch-zrh-1",
		KeyID:  0x0a1b2c3d,
		Time:   time.Date(2026, 12, 7, 7, 0, 0, 0, time.UTC),
		Count:  256,
	}
	for i := range a.Root {
		a.Root[i] = byte(i)
	}
	for i := range a.Signature {
		a.Signature[i] = byte(255 - i)
	}
	return a
}

func TestAttestationRoundTrip(t *testing.T) {
	a := testAttestation()
	entry := a.Entry()
	want := "custody-attestation/v1\n" +
		"origin transparency.example.com/custody\n" +
		"site ch-zrh-1\n" +
		"key 0a1b2c3d\n" +
		"time 2026-12-07T07:00:00Z\n" +
		"count 256\n" +
		"root AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n" +
		"\n" +
		"\u2014 ch-zrh-1 ChssPf/+/fz7+vn49/b19PPy8fDv7u3s6+rp6Ofm5eTj4uHg397d3Nva2djX1tXU09LR0M/OzczLysnIx8bFxMPCwcA=\n"
	if string(entry) != want {
		t.Fatalf("Entry =\n%s\nwant\n%s", entry, want)
	}
	if !bytes.HasPrefix(entry, a.Text()) {
		t.Fatalf("Entry does not start with Text")
	}
	got, err := DecodeAttestation(entry)
	if err != nil {
		t.Fatal(err)
	}
	if got != a {
		t.Fatalf("DecodeAttestation = %+v, want %+v", got, a)
	}
	if KindOf(entry) != EntryAttestation || KindOf([]byte(`{"sample":"x"}`)) != EntryEvent || KindOf([]byte(" {")) != EntryUnknown || KindOf(nil) != EntryUnknown ||
		KindOf([]byte("custody-attestation/v2\n")) != EntryUnknown {
		t.Fatal("KindOf is wrong")
	}
	if a.Identity() != sha256.Sum256(entry) {
		t.Fatal("Identity is not the SHA-256 of the entry")
	}
	// An attestation is never an event, nor an event an attestation.
	if _, err := DecodeEntry(entry); err == nil {
		t.Fatal("DecodeEntry accepted an attestation")
	}
	if _, err := DecodeAttestation([]byte(`{"sample":"s","action":"stored","location":"ch-zrh-1","region":"EU","time":"2024-05-01T12:00:00Z","logged":"2024-05-01T12:00:00Z","actor":"a"}`)); err == nil {
		t.Fatal("DecodeAttestation accepted an event")
	}
}

func TestDecodeAttestationMalformed(t *testing.T) {
	good := string(testAttestation().Entry())
	replace := func(old, new string) string {
		if !strings.Contains(good, old) {
			panic(old)
		}
		return strings.Replace(good, old, new, 1)
	}
	long := testAttestation()
	long.Origin = strings.Repeat("o", MaxOriginLen)
	for _, tc := range []struct{ name, in, field, want string }{
		{"empty", "", "", "not an attestation"},
		{"other version", replace("/v1\n", "/v2\n"), "", "not an attestation"},
		{"CRLF", strings.ReplaceAll(good, "\n", "\r\n"), "", "not an attestation"},
		{"too big", good + strings.Repeat("x", MaxAttestationSize), "", "more than the maximum of 1024"},
		{"missing origin", replace("origin transparency.example.com/custody\n", ""), "origin", `want "origin" followed by a space`},
		{"origin with space", replace("example.com/custody", "example.com/ custody"), "origin", "byte 0x20"},
		{"origin empty", replace("origin transparency.example.com/custody", "origin "), "origin", "required"},
		{"origin too long", strings.Replace(string(long.Entry()), "origin o", "origin oo", 1), "origin", "more than the maximum of 255"},
		{"lines swapped", replace("site ch-zrh-1\nkey 0a1b2c3d\n", "key 0a1b2c3d\nsite ch-zrh-1\n"), "site", `want "site"`},
		{"site upper case", strings.ReplaceAll(good, "ch-zrh-1", "CH-ZRH-1"), "site", "not allowed"},
		{"two spaces", replace("site ch-zrh-1", "site  ch-zrh-1"), "site", "not allowed"},
		{"key upper hex", replace("key 0a1b2c3d", "key 0A1B2C3D"), "key", "lowercase hex"},
		{"key short", replace("key 0a1b2c3d", "key a1b2c3d"), "key", "8 lowercase hex"},
		{"time with offset", replace("07:00:00Z", "08:00:00+01:00"), "time", "not in canonical form"},
		{"time fraction", replace("07:00:00Z", "07:00:00.5Z"), "time", "not in canonical form"},
		{"time bad", replace("2026-12-07T", "2026-13-07T"), "time", "no such date"},
		{"count zero", replace("count 256", "count 0"), "count", "1..1024"},
		{"count leading zero", replace("count 256", "count 0256"), "count", "without leading zeros"},
		{"count plus", replace("count 256", "count +256"), "count", "without leading zeros"},
		{"count too big", replace("count 256", "count 1025"), "count", "1..1024"},
		{"root short", replace("Hh8=", "Hh=="), "root", "32 bytes"},
		{"root unpadded, 33 bytes", replace("Hh8=", "Hh8A"), "root", "33 bytes"},
		{"root not canonical", replace("Hh8=", "Hh9="), "root", "illegal"},
		{"root url base64", replace("root AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "root AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8_"), "root", ""},
		{"no empty line", replace("\n\n\u2014", "\n\u2014"), "signature", "empty line"},
		{"no signature", strings.SplitAfter(good, "\n\n")[0], "signature", "empty line"},
		{"two signatures", good + "\u2014 ch-zrh-1 ChssPf/+/fz7+vn49/b19PPy8fDv7u3s6+rp6Ofm5eTj4uHg397d3Nva2djX1tXU09LR0M/OzczLysnIx8bFxMPCwcA=\n", "signature", "exactly one"},
		{"no final newline", strings.TrimSuffix(good, "\n"), "signature", "exactly one"},
		{"signature by another name", replace("\u2014 ch-zrh-1", "\u2014 ru-mow-1"), "signature", `want the site "ch-zrh-1"`},
		{"signature hash differs", replace("\u2014 ch-zrh-1 Chss", "\u2014 ch-zrh-1 Chts"), "signature", "signature by key 0a1b6c3d, but the key line says 0a1b2c3d"},
		{"signature short", replace("wcA=\n", "\n"), "signature", "92 characters"},
		{"extra line", replace("count 256\n", "count 256\nnote hi\n"), "root", `want "root"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := DecodeAttestation([]byte(tc.in))
			if err == nil {
				t.Fatalf("DecodeAttestation accepted %q as %+v", tc.in, a)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is %T, not *FieldError", err, err)
			}
			if fe.Field != tc.field || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v (field %q), want field %q and %q", err, fe.Field, tc.field, tc.want)
			}
			if a != (Attestation{}) {
				t.Errorf("non-zero Attestation with error")
			}
		})
	}
}

func TestAttestationValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*Attestation)
		field string
	}{
		{"ok", func(*Attestation) {}, ""},
		{"no origin", func(a *Attestation) { a.Origin = "" }, "origin"},
		{"bad site", func(a *Attestation) { a.Site = "x" }, "site"},
		{"zero time", func(a *Attestation) { a.Time = time.Time{} }, "time"},
		{"fraction", func(a *Attestation) { a.Time = a.Time.Add(time.Millisecond) }, "time"},
		{"year 10000", func(a *Attestation) { a.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "time"},
		{"count 0", func(a *Attestation) { a.Count = 0 }, "count"},
		{"count 1025", func(a *Attestation) { a.Count = 1025 }, "count"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := testAttestation()
			tc.edit(&a)
			err := a.Validate()
			var fe *FieldError
			switch {
			case tc.field == "" && err != nil:
				t.Fatalf("Validate = %v", err)
			case tc.field != "" && (!errors.As(err, &fe) || fe.Field != tc.field):
				t.Fatalf("Validate = %v, want a field error for %q", err, tc.field)
			}
			// Entry drops a fraction of a second, as Canonical does.
			if _, derr := DecodeAttestation(a.Entry()); (derr == nil) != (err == nil) && tc.name != "fraction" {
				t.Fatalf("Validate = %v but DecodeAttestation(Entry) = %v", err, derr)
			}
		})
	}
}

// TestAttestationRootTlog checks AttestationRoot, AttestationPath and
// CheckAttestationPath against golang.org/x/mod/sumdb/tlog, an independent
// RFC 6962 implementation, for every size up to 70 and some larger ones.
func TestAttestationRootTlog(t *testing.T) {
	sizes := []int{}
	for n := 1; n <= 70; n++ {
		sizes = append(sizes, n)
	}
	sizes = append(sizes, 255, 256, 257, 1023, MaxAttestedEvents)
	all := make([][32]byte, MaxAttestedEvents)
	for i := range all {
		all[i] = sha256.Sum256([]byte(fmt.Sprint(i)))
	}
	for _, n := range sizes {
		ids := all[:n]
		var stored []tlog.Hash
		for i := range ids {
			hs, err := tlog.StoredHashes(int64(i), ids[i][:], tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
				out := make([]tlog.Hash, len(idx))
				for j, x := range idx {
					out[j] = stored[x]
				}
				return out, nil
			}))
			if err != nil {
				t.Fatal(err)
			}
			stored = append(stored, hs...)
		}
		hr := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(idx))
			for j, x := range idx {
				out[j] = stored[x]
			}
			return out, nil
		})
		th, err := tlog.TreeHash(int64(n), hr)
		if err != nil {
			t.Fatal(err)
		}
		root := AttestationRoot(ids)
		if root != [32]byte(th) {
			t.Fatalf("n=%d: AttestationRoot %x, tlog.TreeHash %x", n, root, th)
		}
		for _, m := range []int{0, n / 2, n - 1} {
			path := AttestationPath(ids, m)
			proof, err := tlog.ProveRecord(int64(n), int64(m), hr)
			if err != nil {
				t.Fatal(err)
			}
			if len(proof) != len(path) {
				t.Fatalf("n=%d m=%d: path of %d hashes, tlog %d", n, m, len(path), len(proof))
			}
			for i := range path {
				if path[i] != [32]byte(proof[i]) {
					t.Fatalf("n=%d m=%d: path[%d] differs from tlog", n, m, i)
				}
			}
			if !CheckAttestationPath(root, n, m, ids[m], path) {
				t.Fatalf("n=%d m=%d: CheckAttestationPath rejects a good path", n, m)
			}
			if err := tlog.CheckRecord(proof, int64(n), th, int64(m), tlog.RecordHash(ids[m][:])); err != nil {
				t.Fatalf("tlog.CheckRecord: %v", err)
			}
			// Any change fails.
			if CheckAttestationPath(root, n, m, all[n%len(all)], path) && n < MaxAttestedEvents {
				t.Fatalf("n=%d m=%d: path accepted another identity", n, m)
			}
			if n > 1 && CheckAttestationPath(root, n, (m+1)%n, ids[m], path) && ids[m] != ids[(m+1)%n] {
				t.Fatalf("n=%d m=%d: path accepted at another position", n, m)
			}
			if CheckAttestationPath(root, n+1, m, ids[m], path) && split(n+1) != split(n) && n > 1 {
				// Different shapes must not verify (same shape may).
				t.Fatalf("n=%d m=%d: path accepted for another count", n, m)
			}
		}
	}
	if CheckAttestationPath([32]byte{}, 0, 0, [32]byte{}, nil) || CheckAttestationPath([32]byte{}, 2, 2, [32]byte{}, nil) {
		t.Fatal("CheckAttestationPath accepted an impossible position")
	}
}

func TestRootBuilderLimit(t *testing.T) {
	var rb RootBuilder
	var id [32]byte
	for i := 0; i < MaxAttestedEvents; i++ {
		rb.Add(&id)
	}
	if rb.Len() != MaxAttestedEvents {
		t.Fatal(rb.Len())
	}
	defer func() {
		if recover() == nil {
			t.Fatal("no panic past MaxAttestedEvents")
		}
	}()
	rb.Add(&id)
}
