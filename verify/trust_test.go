package verify

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/mod/sumdb/note"
)

// testWitness is a deterministic cosigner for tests.
type testWitness struct {
	keyName string
	priv    ed25519.PrivateKey
	vkey    string
}

func newTestWitness(keyName string) testWitness {
	seed := sha256.Sum256([]byte("custody test witness " + keyName))
	priv := ed25519.NewKeyFromSeed(seed[:])
	return testWitness{keyName: keyName, priv: priv, vkey: CosignatureVKey(keyName, priv.Public().(ed25519.PublicKey))}
}

func (w testWitness) signer(ts int64) note.Signer {
	return NewCosignatureSigner(w.keyName, w.priv, fixedClock(ts))
}

// testLogKey is a deterministic log key for tests: signer and vkey.
func testLogKey(t testing.TB, name string) (note.Signer, string) {
	t.Helper()
	seed := sha256.Sum256([]byte("custody test log " + name))
	priv := ed25519.NewKeyFromSeed(seed[:])
	vkey, err := note.NewEd25519VerifierKey(name, priv.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(ed25519SignerKey(t, name, priv))
	if err != nil {
		t.Fatal(err)
	}
	return s, vkey
}

// ed25519SignerKey formats an x/mod signer key for priv.
func ed25519SignerKey(t testing.TB, name string, priv ed25519.PrivateKey) string {
	t.Helper()
	vkey, err := note.NewEd25519VerifierKey(name, priv.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.SplitN(vkey, "+", 3)
	return "PRIVATE+KEY+" + name + "+" + parts[1] + "+" + base64.StdEncoding.EncodeToString(append([]byte{0x01}, priv.Seed()...))
}

func TestParseTrustPolicyValid(t *testing.T) {
	w := map[string]testWitness{}
	for _, n := range []string{"x1", "x2", "x3", "y1", "y2", "y3"} {
		w[n] = newTestWitness("example.com/" + n)
	}
	spec := fmt.Sprintf(`log %s

witness X1 %s
witness X2 %s
witness X3 %s
group X-witnesses 2 X1 X2 X3

witness Y1 %s
witness Y2 %s
witness Y3 %s
group Y-witnesses any Y1 Y2 Y3

group X-and-Y all X-witnesses Y-witnesses
quorum X-and-Y
`, interopLogVkey, w["x1"].vkey, w["x2"].vkey, w["x3"].vkey, w["y1"].vkey, w["y2"].vkey, w["y3"].vkey)

	cases := []struct {
		name, policy string
		canonical    string // Marshal output, if checked
		logs         int
		witnesses    []string
		quorum       string
	}{
		{name: "quorum none", policy: "quorum none\n", canonical: "quorum none\n", quorum: "none"},
		{name: "no final newline", policy: "log " + interopLogVkey + "\nquorum none",
			canonical: "log " + interopLogVkey + "\nquorum none\n", logs: 1, quorum: "none"},
		{name: "spec example", policy: spec, logs: 1,
			witnesses: []string{"X1", "X2", "X3", "Y1", "Y2", "Y3"}, quorum: "X-and-Y"},
		{name: "comments tabs and spaces",
			policy: "# a policy\n\n  \t\n\t# indented comment\n  log\t" + interopLogVkey + "   https://log.example/prefix  \n" +
				"witness\tw1 " + w["x1"].vkey + "\t\n quorum   w1\t\n# trailing comment",
			canonical: "log " + interopLogVkey + " https://log.example/prefix\nwitness w1 " + w["x1"].vkey + "\nquorum w1\n",
			logs:      1, witnesses: []string{"w1"}, quorum: "w1"},
		{name: "witness URL and numeric threshold",
			policy:    "witness a " + w["x1"].vkey + " https://w.example/a\nwitness b " + w["x2"].vkey + "\ngroup g 2 a b\nquorum g\n",
			canonical: "witness a " + w["x1"].vkey + " https://w.example/a\nwitness b " + w["x2"].vkey + "\ngroup g 2 a b\nquorum g\n",
			witnesses: []string{"a", "b"}, quorum: "g"},
		{name: "non-ASCII and non-UTF-8 names",
			policy:    "witness \xc3\x84 " + w["x1"].vkey + "\nwitness \xff\xfe " + w["x2"].vkey + "\ngroup K any \xc3\x84 \xff\xfe\nquorum K\n",
			witnesses: []string{"\xc3\x84", "\xff\xfe"}, quorum: "K"},
		{name: "lines after quorum",
			policy:    "witness a " + w["x1"].vkey + "\nquorum a\nlog " + interopLogVkey + "\n",
			canonical: "witness a " + w["x1"].vkey + "\nquorum a\nlog " + interopLogVkey + "\n",
			logs:      1, witnesses: []string{"a"}, quorum: "a"},
		{name: "same key name, different keys",
			policy: "witness a " + CosignatureVKey("same", w["x1"].priv.Public().(ed25519.PublicKey)) +
				"\nwitness b " + CosignatureVKey("same", w["x2"].priv.Public().(ed25519.PublicKey)) + "\ngroup g all a b\nquorum g\n",
			witnesses: []string{"a", "b"}, quorum: "g"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := ParseTrustPolicy([]byte(c.policy))
			if err != nil {
				t.Fatal(err)
			}
			if got := len(p.Logs()); got != c.logs {
				t.Errorf("%d logs, want %d", got, c.logs)
			}
			if len(p.logKeys()) != c.logs {
				t.Errorf("logKeys: %v", p.logKeys())
			}
			var names []string
			for _, w := range p.Witnesses() {
				names = append(names, w.Name)
			}
			if diff := cmp.Diff(c.witnesses, names); diff != "" {
				t.Errorf("witnesses (-want +got):\n%s", diff)
			}
			if p.Quorum() != c.quorum {
				t.Errorf("quorum %q, want %q", p.Quorum(), c.quorum)
			}
			m := p.Marshal()
			if c.canonical != "" && string(m) != c.canonical {
				t.Errorf("Marshal =\n%s\nwant\n%s", m, c.canonical)
			}
			p2, err := ParseTrustPolicy(m)
			if err != nil {
				t.Fatalf("reparsing Marshal output: %v\n%s", err, m)
			}
			if m2 := p2.Marshal(); string(m2) != string(m) {
				t.Errorf("Marshal not stable:\n%s\n%s", m, m2)
			}
		})
	}
}

func TestParseTrustPolicyInvalid(t *testing.T) {
	a, b, c := newTestWitness("example.com/a"), newTestWitness("example.com/b"), newTestWitness("example.com/c")
	ab := "witness a " + a.vkey + "\nwitness b " + b.vkey + "\n"
	_, logVkey2 := testLogKey(t, "example.com/other-log")
	logPub := func(name string) string {
		_, _, key, err := splitVKey(interopLogVkey)
		if err != nil {
			t.Fatal(err)
		}
		vk, err := note.NewEd25519VerifierKey(name, ed25519.PublicKey(key[1:]))
		if err != nil {
			t.Fatal(err)
		}
		return vk
	}
	cases := []struct {
		name, policy, want string
	}{
		{"empty", "", "no quorum line"},
		{"only comments", "# nothing\n\n", "no quorum line"},
		{"second quorum", "quorum none\nquorum none\n", "line 2: second quorum"},
		{"unknown directive", "quorum none\nlogs " + interopLogVkey + "\n", "line 2: unknown directive \"logs\""},
		{"directive case", "Log " + interopLogVkey + "\nquorum none\n", "line 1: unknown directive"},
		{"log without key", "log\nquorum none\n", "line 1: want \"log"},
		{"log extra field", "log " + interopLogVkey + " https://a.example/ x\nquorum none\n", "line 1: want \"log"},
		{"log bad key", "log " + interopLogVkey + "x\nquorum none\n", "line 1: log key"},
		{"log cosignature key", "log " + a.vkey + "\nquorum none\n", "line 1: log key"},
		{"log URL not http", "log " + interopLogVkey + " ftp://a.example/\nquorum none\n", "line 1: log URL"},
		{"log trailing comment", "log " + interopLogVkey + " #the-log\nquorum none\n", "line 1: log URL"},
		{"duplicate log", "log " + interopLogVkey + "\nlog " + interopLogVkey + "\nquorum none\n", "line 2: log key has the same public key as the log on line 1"},
		{"duplicate log public key", "log " + interopLogVkey + "\nlog " + logPub("example.com/alias") + "\nquorum none\n", "line 2: log key has the same public key"},
		{"witness without key", "witness a\nquorum none\n", "line 1: want \"witness"},
		{"witness extra field", "witness a " + a.vkey + " https://w.example/ x\nquorum none\n", "line 1: want \"witness"},
		{"witness log key", "witness a " + interopLogVkey + "\nquorum none\n", "line 1: witness a: cosignature verifier key"},
		{"witness URL not URL", "witness a " + a.vkey + " w.example\nquorum none\n", "line 1: witness a URL"},
		{"witness named none", "witness none " + a.vkey + "\nquorum none\n", "line 1: witness name \"none\" is reserved"},
		{"duplicate witness name", "witness a " + a.vkey + "\nwitness a " + b.vkey + "\nquorum a\n", "line 2: witness name \"a\" is already defined"},
		{"duplicate witness key", "witness a " + a.vkey + "\nwitness b " + a.vkey + "\nquorum a\n", "line 2: witness b has the same public key"},
		{"duplicate witness key other name", "witness a " + a.vkey + "\nwitness b " + CosignatureVKey("alias", a.priv.Public().(ed25519.PublicKey)) + "\nquorum a\n", "line 2: witness b has the same public key"},
		{"group named like witness", ab + "group a any a b\nquorum a\n", "line 3: group name \"a\" is already defined"},
		{"group named none", ab + "group none any a b\nquorum none\n", "line 3: group name \"none\" is reserved"},
		{"group without members", ab + "group g any\nquorum g\n", "line 3: want \"group"},
		{"group undefined member", ab + "group g any a c\nquorum g\n", "line 3: group g: member \"c\" is not"},
		{"group forward reference", ab + "group g any a h\ngroup h any b\nquorum g\n", "line 3: group g: member \"h\" is not"},
		{"group contains itself", ab + "group g any a g\nquorum g\n", "line 3: group g lists itself"},
		{"group member none", ab + "group g any a none\nquorum g\n", "line 3: group g: \"none\" cannot be a group member"},
		{"group duplicate member", ab + "group g 2 a b a\nquorum g\n", "line 3: group g lists member \"a\" more than once"},
		{"group k zero", ab + "group g 0 a b\nquorum g\n", "line 3: group g: threshold 0 is outside 1 to 2"},
		{"group k too big", ab + "group g 3 a b\nquorum g\n", "line 3: group g: threshold 3 is outside 1 to 2"},
		{"group k leading zero", ab + "group g 01 a b\nquorum g\n", "line 3: group g: threshold \"01\""},
		{"group k negative", ab + "group g -1 a b\nquorum g\n", "line 3: group g: threshold \"-1\""},
		{"group k word", ab + "group g two a b\nquorum g\n", "line 3: group g: threshold \"two\""},
		{"group k huge", ab + "group g 18446744073709551617 a b\nquorum g\n", "line 3: group g: threshold"},
		{"cycle through later definition", ab + "group g any a h\ngroup h any g b\nquorum h\n", "line 3: group g: member \"h\" is not"},
		{"quorum undefined", ab + "quorum c\n", "line 3: quorum \"c\" is not"},
		{"quorum before definition", "quorum a\n" + ab, "line 1: quorum \"a\" is not"},
		{"quorum extra field", ab + "quorum a b\n", "line 3: want \"quorum <name>\""},
		{"quorum missing name", "quorum\n", "line 1: want \"quorum <name>\""},
		{"carriage return", "quorum none\r\n", "line 1: byte 12 is the control character 0x0d"},
		{"NUL byte", "# \x00\nquorum none\n", "line 1: byte 3 is the control character"},
		{"DEL byte", "quorum none\n\x7f\n", "line 2: byte 1 is the control character 0x7f"},
		{"vertical tab as space", "quorum\vnone\n", "line 1: byte 7 is the control character"},
		{"second quorum after definitions", "log " + interopLogVkey + "\nlog " + logVkey2 + "\nwitness c " + c.vkey + "\nquorum c\nquorum c\n", "line 5: second quorum"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := ParseTrustPolicy([]byte(c.policy))
			if err == nil {
				t.Fatalf("accepted:\n%s\nas\n%s", c.policy, p.Marshal())
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not contain %q", err, c.want)
			}
			if !strings.HasPrefix(err.Error(), "trust policy: ") {
				t.Errorf("error %q does not start with \"trust policy: \"", err)
			}
		})
	}
}

// cosign returns text signed by the log signer and then cosigned by the
// given witnesses at ts.
func cosign(t testing.TB, text string, log note.Signer, ts int64, ws ...testWitness) []byte {
	t.Helper()
	signers := []note.Signer{log}
	for _, w := range ws {
		signers = append(signers, w.signer(ts))
	}
	msg, err := note.Sign(&note.Note{Text: text}, signers...)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func TestTrustPolicyQuorum(t *testing.T) {
	const origin = "example.com/quorum-log"
	logSigner, logVkey := testLogKey(t, origin)
	ws := map[string]testWitness{}
	for _, n := range []string{"A", "B", "C", "D", "E", "F"} {
		ws[n] = newTestWitness("witness.example/" + n)
	}
	defs := "log " + logVkey + "\n"
	for _, n := range []string{"A", "B", "C", "D", "E"} {
		defs += "witness " + n + " " + ws[n].vkey + "\n"
	}
	policies := map[string]string{
		"nested": defs + "group abc 2 A B C\ngroup de any D E\ngroup both all abc de\nquorum both\n",
		"any":    defs + "group g any A B C D E\nquorum g\n",
		"all":    defs + "group g all A B C\nquorum g\n",
		"single": defs + "quorum C\n",
		"none":   defs + "quorum none\n",
		"deep":   defs + "group ab all A B\ngroup abc any ab C\ngroup top 2 abc D E\nquorum top\n",
	}
	cp := Checkpoint{Origin: origin, Size: 8, Root: mustB64Hash(t, "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=")}
	const now = 1750000000
	cases := []struct {
		policy  string
		signers string // witness names that cosign; F is not in any policy
		ok      bool
	}{
		{"nested", "ABD", true},
		{"nested", "ACE", true},
		{"nested", "ABCDE", true},
		{"nested", "AD", false},
		{"nested", "AB", false},
		{"nested", "ABF", false},
		{"nested", "DE", false},
		{"nested", "", false},
		{"any", "E", true},
		{"any", "F", false},
		{"any", "", false},
		{"all", "ABC", true},
		{"all", "ABDE", false},
		{"single", "C", true},
		{"single", "ABDEF", false},
		{"none", "", true},
		{"none", "F", true},
		{"deep", "ABD", true},
		{"deep", "CE", true},
		{"deep", "ADE", true},
		{"deep", "AD", false},
		{"deep", "C", false},
	}
	for _, c := range cases {
		t.Run(c.policy+"/"+c.signers, func(t *testing.T) {
			p, err := ParseTrustPolicy([]byte(policies[c.policy]))
			if err != nil {
				t.Fatal(err)
			}
			var signers []testWitness
			for _, r := range c.signers {
				signers = append(signers, ws[string(r)])
			}
			msg := cosign(t, string(cp.Marshal()), logSigner, now-60, signers...)
			res, err := p.Evaluate(msg, cp, time.Unix(now, 0))
			if c.ok != (err == nil) {
				t.Fatalf("Evaluate = %v, want ok=%v", err, c.ok)
			}
			if err != nil {
				ve, ok := IsVerificationError(err)
				if !ok || ve.Evidence.Kind != EvidenceQuorum {
					t.Fatalf("error %v is not a quorum VerificationError", err)
				}
				if ve.Evidence.NewCheckpoint != string(msg) || ve.Evidence.Origin != origin || ve.Evidence.NewSize != 8 {
					t.Errorf("evidence lacks the checkpoint: %+v", ve.Evidence)
				}
			}
			if res == nil {
				t.Fatal("no result")
			}
			var want []string
			for _, r := range c.signers {
				if r != 'F' {
					want = append(want, string(r))
				}
			}
			if diff := cmp.Diff(want, res.Witnesses); diff != "" {
				t.Errorf("witnesses (-want +got):\n%s", diff)
			}
			for _, n := range want {
				if !res.Times[n].Equal(time.Unix(now-60, 0)) {
					t.Errorf("time of %s = %v", n, res.Times[n])
				}
			}
			if res.Log != logVkey || res.Quorum != c.ok {
				t.Errorf("result %+v", res)
			}
			// check uses the real clock, at which now-60 is long past.
			if c.ok != (p.check(msg, cp) == nil) {
				t.Errorf("check disagrees with Evaluate")
			}
		})
	}
}

func TestTrustPolicyEvaluateFailures(t *testing.T) {
	const origin = "example.com/trust-log"
	logSigner, logVkey := testLogKey(t, origin)
	otherSigner, otherVkey := testLogKey(t, "example.com/other-log")
	a, b := newTestWitness("witness.example/a"), newTestWitness("witness.example/b")
	policy := "log " + logVkey + "\nwitness a " + a.vkey + "\nwitness b " + b.vkey + "\ngroup g any a b\nquorum g\n"
	p, err := ParseTrustPolicy([]byte(policy))
	if err != nil {
		t.Fatal(err)
	}
	cp := Checkpoint{Origin: origin, Size: 0, Root: EmptyRoot}
	text := string(cp.Marshal())
	const now = 1750000000
	at := time.Unix(now, 0)

	kind := func(err error) string {
		if ve, ok := IsVerificationError(err); ok {
			return ve.Evidence.Kind
		}
		return fmt.Sprintf("plain error %v", err)
	}

	// A witness cosignature with a broken signature is an error even though
	// another witness's is fine.
	good := cosign(t, text, logSigner, now, a, b)
	lines := strings.Split(string(good), "\n")
	// lines: text (3), "", log sig, a, b, "".
	bad := []byte(strings.Join(lines[:6], "\n") + "\n" + flipSigChar(lines[6]) + "\n")
	if _, err := p.Evaluate(bad, cp, at); kind(err) != EvidenceBadSignature || !strings.Contains(err.Error(), "witness b") {
		t.Errorf("bad witness signature: %v", err)
	}
	// A broken log signature is an error.
	bad = []byte(strings.Join(lines[:4], "\n") + "\n" + flipSigChar(lines[4]) + "\n" + strings.Join(lines[5:], "\n"))
	if _, err := p.Evaluate(bad, cp, at); kind(err) != EvidenceBadSignature || !strings.Contains(err.Error(), "log key") {
		t.Errorf("bad log signature: %v", err)
	}
	// Signed by a log the policy does not list.
	if _, err := p.Evaluate(cosign(t, text, otherSigner, now, a), cp, at); kind(err) != EvidenceBadSignature {
		t.Errorf("unlisted log: %v", err)
	}
	// Signed by a listed log whose key name is not the origin.
	p2, err := ParseTrustPolicy([]byte("log " + otherVkey + "\n" + "witness a " + a.vkey + "\nquorum a\n"))
	if err != nil {
		t.Fatal(err)
	}
	if res, err := p2.Evaluate(cosign(t, text, otherSigner, now, a), cp, at); kind(err) != EvidenceBadSignature || res.Log != "" {
		t.Errorf("log key name is not the origin: %v %+v", err, res)
	}
	// Cosignatures from unknown witnesses are ignored.
	unknown := newTestWitness("witness.example/unknown")
	res, err := p.Evaluate(cosign(t, text, logSigner, now, unknown, a), cp, at)
	if err != nil || len(res.Witnesses) != 1 {
		t.Errorf("unknown witness: %v %+v", err, res)
	}
	// A cosignature more than maxCosignatureSkew in the future does not
	// count; one within it does.
	res, err = p.Evaluate(cosign(t, text, logSigner, now+int64(maxCosignatureSkew/time.Second)+1, a), cp, at)
	if kind(err) != EvidenceQuorum || res.Rejected["a"] == "" || len(res.Witnesses) != 0 || !strings.Contains(err.Error(), "not counted: a") {
		t.Errorf("future cosignature: %v %+v", err, res)
	}
	res, err = p.Evaluate(cosign(t, text, logSigner, now+int64(maxCosignatureSkew/time.Second), a), cp, at)
	if err != nil || len(res.Witnesses) != 1 {
		t.Errorf("cosignature at the skew limit: %v %+v", err, res)
	}
	// The note must be the checkpoint given: a plain error otherwise.
	other := Checkpoint{Origin: origin, Size: 1, Root: LeafHash([]byte("x"))}
	if _, err := p.Evaluate(good, other, at); err == nil || kind(err) == EvidenceQuorum || kind(err) == EvidenceBadSignature {
		t.Errorf("mismatched checkpoint: %v", err)
	}
	// A malformed note is a bad-signature failure.
	if _, err := p.Evaluate([]byte(text), cp, at); kind(err) != EvidenceBadSignature || !errors.Is(err, ErrMalformedNote) {
		t.Errorf("unsigned text: %v", err)
	}
	// No signature from any known key at all.
	if _, err := p.Evaluate(cosign(t, text, otherSigner, now), cp, at); kind(err) != EvidenceBadSignature {
		t.Errorf("no known signature: %v", err)
	}
}

func flipSigChar(line string) string {
	i := len(line) - 10
	c := byte('A')
	if line[i] == 'A' {
		c = 'B'
	}
	return line[:i] + string(c) + line[i+1:]
}

// TestTrustPolicyInterop evaluates the interop.md 3.1 vectors under a
// policy naming the interop log and witness.
func TestTrustPolicyInterop(t *testing.T) {
	p, err := ParseTrustPolicy([]byte("log " + interopLogVkey + "\nwitness w " + interopWitnessKey + "\nquorum w\n"))
	if err != nil {
		t.Fatal(err)
	}
	cp, err := ParseCheckpoint([]byte(interopText))
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte(interopNote + interopCosig)
	res, err := p.Evaluate(msg, cp, time.Unix(interopCosigTime+3600, 0))
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(res.Witnesses, []string{"w"}) || !res.Times["w"].Equal(time.Unix(interopCosigTime, 0)) || res.Log != interopLogVkey {
		t.Errorf("result %+v", res)
	}
	if err := p.check(msg, cp); err != nil {
		t.Errorf("check: %v", err)
	}
	// Seen from before the cosignature was made (by more than the skew).
	if _, err := p.Evaluate(msg, cp, time.Unix(interopCosigTime-3600, 0)); err == nil {
		t.Error("cosignature an hour in the future counted")
	}
	// Without the cosignature.
	if _, err := p.Evaluate([]byte(interopNote), cp, time.Unix(interopCosigTime, 0)); err == nil {
		t.Error("quorum met without the cosignature")
	}
}

// trustFuzzCheckpoint is what FuzzParseTrustPolicy evaluates accepted
// policies on: the interop.md 3.1 checkpoint with its cosignature.
func trustFuzzCheckpoint(t testing.TB) ([]byte, Checkpoint) {
	cp, err := ParseCheckpoint([]byte(interopText))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(interopNote + interopCosig), cp
}

func FuzzParseTrustPolicy(f *testing.F) {
	msg, cp := trustFuzzCheckpoint(f)
	at := time.Unix(interopCosigTime, 0)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseTrustPolicy(b)
		p2, err2 := ParseTrustPolicy(b)
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("ParseTrustPolicy is not deterministic: %v / %v", err, err2)
		}
		if err != nil {
			if !strings.HasPrefix(err.Error(), "trust policy: ") {
				t.Fatalf("error %q lacks the prefix", err)
			}
			return
		}
		m := p.Marshal()
		if !bytes.Equal(m, p2.Marshal()) {
			t.Fatalf("Marshal is not deterministic")
		}
		q, err := ParseTrustPolicy(m)
		if err != nil {
			t.Fatalf("Marshal output %q of accepted %q is rejected: %v", m, b, err)
		}
		if m2 := q.Marshal(); !bytes.Equal(m, m2) {
			t.Fatalf("Marshal not stable: %q then %q", m, m2)
		}
		if !cmp.Equal(p.Witnesses(), q.Witnesses()) || !cmp.Equal(p.logKeys(), q.logKeys()) || p.Quorum() != q.Quorum() {
			t.Fatalf("reparsed policy differs")
		}
		r1, e1 := p.Evaluate(msg, cp, at)
		r2, e2 := q.Evaluate(msg, cp, at)
		if (e1 == nil) != (e2 == nil) || !cmp.Equal(r1, r2) {
			t.Fatalf("reparsed policy evaluates differently: %v / %v", e1, e2)
		}
		if e1 != nil {
			if _, ok := IsVerificationError(e1); !ok {
				t.Fatalf("Evaluate failed with a plain error: %v", e1)
			}
		}
	})
}
