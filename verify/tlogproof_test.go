package verify

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// interopProof is a tlog-proof for entry 5 ("40414243") of the interop log
// of 8 RFC 6962 test leaves, using inclusion.json's proof for index 5.
func interopProof(t testing.TB) TLogProof {
	var v inclusionFile
	readVectors(t.(*testing.T), "inclusion.json", &v)
	for _, c := range v.Cases {
		if c.Index == 5 && c.Size == 8 {
			return TLogProof{Index: 5, Proof: hashes(c.Proof), Checkpoint: []byte(interopNote + interopCosig)}
		}
	}
	t.Fatal("inclusion.json has no case for index 5 of 8")
	return TLogProof{}
}

func TestTLogProofRoundTrip(t *testing.T) {
	base := interopProof(t)
	withExtra := base
	withExtra.Extra = []byte("age-v1.2.1-darwin-arm64.tar.gz")
	noProof := TLogProof{Index: 0, Checkpoint: []byte(tesseraCP15)}

	for _, tc := range []struct {
		name  string
		proof TLogProof
		text  string
	}{
		{"without extra", base, "c2sp.org/tlog-proof@v1\nindex 5\n" +
			"vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms=\n" +
			"yoVOoSjtBQtBs1/8G4e46yveRh6eO1WW7Oa51ZdaCuA=\n" +
			"037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc=\n" +
			"\n" + interopNote + interopCosig},
		{"with extra", withExtra, "c2sp.org/tlog-proof@v1\nextra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6\nindex 5\n" +
			"vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms=\n" +
			"yoVOoSjtBQtBs1/8G4e46yveRh6eO1WW7Oa51ZdaCuA=\n" +
			"037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc=\n" +
			"\n" + interopNote + interopCosig},
		{"empty proof", noProof, "c2sp.org/tlog-proof@v1\nindex 0\n\n" + tesseraCP15},
	} {
		got := tc.proof.Marshal()
		if string(got) != tc.text {
			t.Errorf("%s: Marshal() = %q, want %q", tc.name, got, tc.text)
		}
		parsed, err := ParseTLogProof([]byte(tc.text))
		if err != nil {
			t.Errorf("%s: ParseTLogProof = %v", tc.name, err)
			continue
		}
		if diff := cmp.Diff(tc.proof, parsed); diff != "" {
			t.Errorf("%s: ParseTLogProof mismatch (-want +got):\n%s", tc.name, diff)
		}
		if m := parsed.Marshal(); !bytes.Equal(m, []byte(tc.text)) {
			t.Errorf("%s: Marshal(ParseTLogProof(b)) = %q, want %q", tc.name, m, tc.text)
		}
	}

	// The parsed proof verifies end to end.
	p, err := ParseTLogProof(base.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := OpenCheckpoint(p.Checkpoint, interopOrigin, mustVerifiers(t, interopLogVkey))
	if err != nil {
		t.Fatalf("OpenCheckpoint(proof's checkpoint) = %v", err)
	}
	if err := CheckInclusion(p.Index, c.Size, LeafHash([]byte{0x40, 0x41, 0x42, 0x43}), p.Proof, c.Root); err != nil {
		t.Errorf("CheckInclusion(proof for entry 5) = %v", err)
	}
}

func TestParseTLogProofMalformed(t *testing.T) {
	h := base64.StdEncoding.EncodeToString(EmptyRoot[:])
	cp := tesseraCP15
	for _, tc := range []struct{ name, text, wantErr string }{
		{"empty", "", "line 1: missing"},
		{"wrong header", "c2sp.org/tlog-proof@v2\nindex 0\n\n" + cp, `line 1: got "c2sp.org/tlog-proof@v2"`},
		{"header with CR", "c2sp.org/tlog-proof@v1\r\nindex 0\n\n" + cp, "line 1: got"},
		{"no index", "c2sp.org/tlog-proof@v1\n" + h + "\n\n" + cp, `want "index <decimal>"`},
		{"index leading zero", "c2sp.org/tlog-proof@v1\nindex 05\n\n" + cp, "leading zeros"},
		{"index negative", "c2sp.org/tlog-proof@v1\nindex -1\n\n" + cp, "not a decimal number"},
		{"index two spaces", "c2sp.org/tlog-proof@v1\nindex  5\n\n" + cp, "not a decimal number"},
		{"index overflow", "c2sp.org/tlog-proof@v1\nindex 18446744073709551616\n\n" + cp, "does not fit in 64 bits"},
		{"extra after index", "c2sp.org/tlog-proof@v1\nindex 0\nextra AA==\n\n" + cp, "proof hash 0"},
		{"empty extra", "c2sp.org/tlog-proof@v1\nextra \nindex 0\n\n" + cp, "extra line with no data"},
		{"bad extra base64", "c2sp.org/tlog-proof@v1\nextra A\nindex 0\n\n" + cp, "extra data is not canonical"},
		{"non-canonical extra base64", "c2sp.org/tlog-proof@v1\nextra AB==\nindex 0\n\n" + cp, "extra data is not canonical"},
		{"two extra lines", "c2sp.org/tlog-proof@v1\nextra AA==\nextra AA==\nindex 0\n\n" + cp, `want "index <decimal>"`},
		{"short hash", "c2sp.org/tlog-proof@v1\nindex 0\n" + base64.StdEncoding.EncodeToString(make([]byte, 31)) + "\n\n" + cp, "line 3: proof hash 0: hash is 31 bytes"},
		{"bad hash base64", "c2sp.org/tlog-proof@v1\nindex 0\n" + h + "\n!!!\n\n" + cp, "line 4: proof hash 1: hash is not standard base64"},
		{"65 hashes", "c2sp.org/tlog-proof@v1\nindex 0\n" + strings.Repeat(h+"\n", 65) + "\n" + cp, "more than 64 proof hashes"},
		{"no blank line", "c2sp.org/tlog-proof@v1\nindex 0\n" + h + "\n", "line 4: missing"},
		{"no checkpoint", "c2sp.org/tlog-proof@v1\nindex 0\n\n", "checkpoint is missing"},
		{"unsigned checkpoint", "c2sp.org/tlog-proof@v1\nindex 0\n\nexample.com/log\n0\n" + h + "\n", "malformed signed note"},
		{"checkpoint with trailing garbage", "c2sp.org/tlog-proof@v1\nindex 0\n\n" + cp + "garbage", "malformed signed note"},
		{"checkpoint with bad body", "c2sp.org/tlog-proof@v1\nindex 0\n\n" + strings.Replace(cp, "\n15\n", "\n015\n", 1), "malformed checkpoint"},
		{"two blank lines", "c2sp.org/tlog-proof@v1\nindex 0\n\n\n" + cp, "malformed"},
	} {
		_, err := ParseTLogProof([]byte(tc.text))
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: ParseTLogProof(%q) = %v, want error containing %q", tc.name, tc.text, err, tc.wantErr)
		}
	}
}
