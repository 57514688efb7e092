package verify

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/custodylog/custody/internal/fuzzseeds"
)

// interop.md 3.1: the witness's signer key, in x/mod's 0x01 form, and the
// exact cosignature/v1 message it signs for interopText at 1700000000.
const (
	interopWitnessSkey    = "PRIVATE+KEY+example.com/interop-witness+12c4f093+AT8AfZktJJ/IIO/Y0RHLMtzs960AVDLFMZNn8FLGYkIB"
	interopWitnessName    = "example.com/interop-witness"
	interopCosigTime      = 1700000000
	interopCosigMessageHx = "636f7369676e61747572652f76310a74696d6520313730303030303030300a6578616d706c652e636f6d2f696e7465726f702d6c6f670a380a58636e616561634757616d74565a79334164375a6f717564676a71744c306c677a2b4e77372f52675179673d0a"
)

func fixedClock(sec int64) func() time.Time {
	return func() time.Time { return time.Unix(sec, 0) }
}

// interopCosigBlob returns the decoded base64 of the interop cosignature
// line: key ID, timestamp, signature.
func interopCosigBlob(t testing.TB) []byte {
	t.Helper()
	line := strings.TrimSuffix(strings.TrimPrefix(interopCosig, "— "+interopWitnessName+" "), "\n")
	b, err := base64.StdEncoding.DecodeString(line)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCosignatureInteropVector(t *testing.T) {
	// The seed is SHA-256("interop-witness-seed").
	seed := sha256.Sum256([]byte("interop-witness-seed"))
	if want := base64.StdEncoding.EncodeToString(append([]byte{0x01}, seed[:]...)); !strings.HasSuffix(interopWitnessSkey, "+"+want) {
		t.Fatalf("interop witness skey does not hold SHA-256(interop-witness-seed)")
	}
	priv := ed25519.NewKeyFromSeed(seed[:])

	signer, vkey, err := NewCosignatureSignerFromKey(interopWitnessSkey, fixedClock(interopCosigTime))
	if err != nil {
		t.Fatal(err)
	}
	if vkey != interopWitnessKey {
		t.Errorf("vkey = %s, want %s", vkey, interopWitnessKey)
	}
	if got := CosignatureVKey(interopWitnessName, priv.Public().(ed25519.PublicKey)); got != interopWitnessKey {
		t.Errorf("CosignatureVKey = %s, want %s", got, interopWitnessKey)
	}
	if signer.Name() != interopWitnessName || signer.KeyHash() != 0x1e542855 {
		t.Errorf("signer is %s+%08x, want %s+1e542855", signer.Name(), signer.KeyHash(), interopWitnessName)
	}

	// The signed message, byte for byte.
	if got := hex.EncodeToString(cosignatureMessage(interopCosigTime, []byte(interopText))); got != interopCosigMessageHx {
		t.Errorf("cosignature message = %s\nwant %s", got, interopCosigMessageHx)
	}

	// Cosigning alone and together with the log reproduce the vectors.
	got, err := note.Sign(&note.Note{Text: interopText}, signer)
	if err != nil {
		t.Fatal(err)
	}
	if want := interopText + "\n" + interopCosig; string(got) != want {
		t.Errorf("cosigned note =\n%s\nwant\n%s", got, want)
	}
	got, err = note.Sign(&note.Note{Text: interopText}, mustSigner(t, interopLogSkey), signer)
	if err != nil {
		t.Fatal(err)
	}
	if want := interopNote + interopCosig; string(got) != want {
		t.Errorf("log-signed and cosigned note =\n%s\nwant\n%s", got, want)
	}

	// NewCosignatureSigner from the raw key is the same signer.
	direct := NewCosignatureSigner(interopWitnessName, priv, fixedClock(interopCosigTime))
	got2, err := note.Sign(&note.Note{Text: interopText}, direct)
	if err != nil {
		t.Fatal(err)
	}
	if want := interopText + "\n" + interopCosig; string(got2) != want {
		t.Errorf("NewCosignatureSigner note =\n%s\nwant\n%s", got2, want)
	}

	// The verifier accepts it; x/mod sees the log signature as unknown.
	v, err := NewCosignatureVerifier(interopWitnessKey)
	if err != nil {
		t.Fatal(err)
	}
	if v.Name() != interopWitnessName || v.KeyHash() != 0x1e542855 {
		t.Errorf("verifier is %s+%08x", v.Name(), v.KeyHash())
	}
	n, err := note.Open([]byte(interopNote+interopCosig), note.VerifierList(v))
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Sigs) != 1 || n.Sigs[0].Name != interopWitnessName || len(n.UnverifiedSigs) != 1 {
		t.Errorf("note.Open: sigs %+v, unverified %+v", n.Sigs, n.UnverifiedSigs)
	}

	// A plain Ed25519 verifier for the same public key does not know the
	// cosignature's key ID.
	plain, err := note.NewEd25519VerifierKey(interopWitnessName, priv.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	pv, err := note.NewVerifier(plain)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open([]byte(interopText+"\n"+interopCosig), note.VerifierList(pv)); err == nil {
		t.Error("a plain 0x01 verifier accepted a cosignature")
	}

	// Timestamps.
	blob := interopCosigBlob(t)
	if hex.EncodeToString(blob[:12]) != "1e542855000000006553f100" {
		t.Errorf("cosignature starts %x", blob[:12])
	}
	for _, sig := range [][]byte{blob, blob[4:]} {
		ts, err := CosignatureTime(sig)
		if err != nil || !ts.Equal(time.Unix(interopCosigTime, 0)) || ts.Location() != time.UTC {
			t.Errorf("CosignatureTime(%d bytes) = %v, %v", len(sig), ts, err)
		}
	}
}

func TestCosignatureVerifierRejects(t *testing.T) {
	v, err := NewCosignatureVerifier(interopWitnessKey)
	if err != nil {
		t.Fatal(err)
	}
	sig := interopCosigBlob(t)[4:]
	if !v.Verify([]byte(interopText), sig) {
		t.Fatal("valid cosignature rejected")
	}
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(sig)) }
	seed := sha256.Sum256([]byte("interop-witness-seed"))
	priv := ed25519.NewKeyFromSeed(seed[:])
	// A genuine Ed25519 signature over a message with timestamp 2^63,
	// which the format forbids.
	big := make([]byte, 8, 72)
	binary.BigEndian.PutUint64(big, 1<<63)
	big = append(big, ed25519.Sign(priv, cosignatureMessage(1<<63, []byte(interopText)))...)
	// A plain note signature (type 0x01 message) by the same key.
	plainSig := ed25519.Sign(priv, []byte(interopText))
	cases := map[string]struct {
		msg, sig []byte
	}{
		"other text":           {[]byte(strings.Replace(interopText, "8\n", "9\n", 1)), sig},
		"timestamp changed":    {[]byte(interopText), mutate(func(b []byte) []byte { b[7]++; return b })},
		"signature flipped":    {[]byte(interopText), mutate(func(b []byte) []byte { b[40] ^= 1; return b })},
		"with key ID":          {[]byte(interopText), interopCosigBlob(t)},
		"truncated":            {[]byte(interopText), sig[:71]},
		"extra byte":           {[]byte(interopText), append(bytes.Clone(sig), 0)},
		"empty":                {[]byte(interopText), nil},
		"timestamp 2^63":       {[]byte(interopText), big},
		"plain note signature": {[]byte(interopText), plainSig},
	}
	for name, c := range cases {
		if v.Verify(c.msg, c.sig) {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := CosignatureTime(big); err == nil {
		t.Error("CosignatureTime accepted timestamp 2^63")
	}
	for _, n := range []int{0, 4, 71, 73, 75, 77} {
		if _, err := CosignatureTime(make([]byte, n)); err == nil {
			t.Errorf("CosignatureTime accepted %d bytes", n)
		}
	}
	if ts, err := CosignatureTime(make([]byte, 72)); err != nil || ts.Unix() != 0 {
		t.Errorf("CosignatureTime(zero) = %v, %v", ts, err)
	}
	if ts, err := CosignatureTime(append(make([]byte, 4), mutate(func(b []byte) []byte {
		binary.BigEndian.PutUint64(b, math.MaxInt64)
		return b
	})...)); err != nil || ts.Unix() != math.MaxInt64 {
		t.Errorf("CosignatureTime(max) = %v, %v", ts, err)
	}
}

func TestNewCosignatureVerifierErrors(t *testing.T) {
	name, id, key, err := splitVKey(interopWitnessKey)
	if err != nil {
		t.Fatal(err)
	}
	enc := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	mldsa := append([]byte{0x06}, key[1:]...)
	cases := map[string]string{
		"empty":              "",
		"log key (0x01)":     interopLogVkey,
		"private key":        interopWitnessSkey,
		"two fields":         name + "+" + id,
		"uppercase key ID":   name + "+" + strings.ToUpper(id) + "+" + enc(key),
		"short key ID":       name + "+" + id[:7] + "+" + enc(key),
		"wrong key ID":       name + "+00000000+" + enc(key),
		"bad name":           "bad name+" + id + "+" + enc(key),
		"URL-safe base64":    name + "+" + id + "+" + base64.URLEncoding.EncodeToString(key),
		"short public key":   name + "+" + id + "+" + enc(key[:32]),
		"long public key":    name + "+" + id + "+" + enc(append(bytes.Clone(key), 0)),
		"type 0x06":          name + "+" + id + "+" + enc(mldsa),
		"trailing space":     interopWitnessKey + " ",
		"empty key material": name + "+" + id + "+",
	}
	for desc, vkey := range cases {
		if v, err := NewCosignatureVerifier(vkey); err == nil {
			t.Errorf("%s: NewCosignatureVerifier(%q) = %v, want error", desc, vkey, v)
		}
	}
}

func TestCosignatureSignerErrors(t *testing.T) {
	seed := sha256.Sum256([]byte("interop-witness-seed"))
	priv := ed25519.NewKeyFromSeed(seed[:])
	bad := bytes.Clone(priv)
	bad[40] ^= 1 // public half no longer matches the seed
	cases := map[string]note.Signer{
		"bad name":          NewCosignatureSigner("bad name", priv, nil),
		"short key":         NewCosignatureSigner(interopWitnessName, priv[:32], nil),
		"mismatched key":    NewCosignatureSigner(interopWitnessName, bad, nil),
		"clock before 1970": NewCosignatureSigner(interopWitnessName, priv, fixedClock(-1)),
	}
	for name, s := range cases {
		if sig, err := s.Sign([]byte(interopText)); err == nil {
			t.Errorf("%s: Sign = %x, want error", name, sig)
		}
	}
	// A nil clock means time.Now.
	s := NewCosignatureSigner(interopWitnessName, priv, nil)
	sig, err := s.Sign([]byte(interopText))
	if err != nil {
		t.Fatal(err)
	}
	ts, err := CosignatureTime(sig)
	if err != nil || time.Since(ts) > time.Minute || time.Until(ts) > time.Minute {
		t.Errorf("nil clock: timestamp %v, %v", ts, err)
	}

	skeyCases := map[string]string{
		"not private":             interopWitnessKey,
		"wrong key ID":            strings.Replace(interopWitnessSkey, "12c4f093", "12c4f094", 1),
		"0x04 key ID on 0x01 key": strings.Replace(interopWitnessSkey, "12c4f093", "1e542855", 1),
		"bad base64":              interopWitnessSkey + "=",
		"short seed":              "PRIVATE+KEY+example.com/interop-witness+12c4f093+AT8AfZktJJ/IIO/Y0RHLMtzs960AVDLFMZNn8FLGYk==",
		"bad name":                strings.Replace(interopWitnessSkey, "example.com/interop-witness", "a b", 1),
		"missing fields":          "PRIVATE+KEY+example.com/interop-witness",
	}
	for name, skey := range skeyCases {
		if _, _, err := NewCosignatureSignerFromKey(skey, nil); err == nil {
			t.Errorf("%s: NewCosignatureSignerFromKey accepted %q", name, skey)
		} else if strings.Contains(err.Error(), "AT8AfZ") {
			t.Errorf("%s: error reveals the secret key: %v", name, err)
		}
	}
	// The 0x04 form of the same key is accepted and gives the same vkey.
	key04 := "PRIVATE+KEY+" + interopWitnessName + "+1e542855+" + base64.StdEncoding.EncodeToString(append([]byte{0x04}, seed[:]...))
	if _, vkey, err := NewCosignatureSignerFromKey(key04, nil); err != nil || vkey != interopWitnessKey {
		t.Errorf("0x04 signer key: %s, %v", vkey, err)
	}
}

func FuzzCosignature(f *testing.F) {
	v, err := NewCosignatureVerifier(interopWitnessKey)
	if err != nil {
		f.Fatal(err)
	}
	p, err := ParseTrustPolicy([]byte("log " + interopLogVkey + "\nwitness w " + interopWitnessKey + "\nquorum w\n"))
	if err != nil {
		f.Fatal(err)
	}
	cp, err := ParseCheckpoint([]byte(interopText))
	if err != nil {
		f.Fatal(err)
	}
	valid := interopCosigBlob(f)[4:]
	at := time.Unix(interopCosigTime, 0)
	f.Fuzz(func(t *testing.T, sig []byte) {
		ok := v.Verify([]byte(interopText), sig)
		// Ed25519 in Go is deterministic and rejects malleated
		// signatures, so only the real cosignature can verify.
		if ok && !bytes.Equal(sig, valid) {
			t.Fatalf("Verify accepted %x", sig)
		}
		if ts, err := CosignatureTime(sig); err == nil {
			if len(sig) != cosigSize && len(sig) != cosigLineSize {
				t.Fatalf("CosignatureTime accepted %d bytes", len(sig))
			}
			if ts.Unix() < 0 {
				t.Fatalf("CosignatureTime = %v", ts)
			}
		}
		// As a signature line on the checkpoint, under a policy.
		blob := append(binary.BigEndian.AppendUint32(nil, 0x1e542855), sig...)
		msg := []byte(interopNote + "— " + interopWitnessName + " " + base64.StdEncoding.EncodeToString(blob) + "\n")
		res, err := p.Evaluate(msg, cp, at)
		if (err == nil) != ok {
			t.Fatalf("Evaluate = %v with a cosignature that verifies=%v", err, ok)
		}
		if err != nil {
			if _, isVE := IsVerificationError(err); !isVE {
				t.Fatalf("Evaluate failed with a plain error: %v", err)
			}
		} else if len(res.Witnesses) != 1 {
			t.Fatalf("result %+v", res)
		}
	})
}

// TestVerifyFuzzSeeds checks the seeds of FuzzParseTrustPolicy and
// FuzzCosignature: at least 8 each, those named valid-* accepted and the
// others rejected.
func TestVerifyFuzzSeeds(t *testing.T) {
	v, err := NewCosignatureVerifier(interopWitnessKey)
	if err != nil {
		t.Fatal(err)
	}
	try := map[string]func(args []any) error{
		"FuzzParseTrustPolicy": func(a []any) error { _, err := ParseTrustPolicy(a[0].([]byte)); return err },
		"FuzzCosignature": func(a []any) error {
			if !v.Verify([]byte(interopText), a[0].([]byte)) {
				return errors.New("cosignature does not verify")
			}
			return nil
		},
	}
	fuzzseeds.Check(t, try)
}
