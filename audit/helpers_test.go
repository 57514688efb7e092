package audit

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

// Reference hashing and paths for the tests, written independently of the
// verify and tiles packages.

func refLeafHash(e []byte) [32]byte {
	return sha256.Sum256(append([]byte{0}, e...))
}

func refNodeHash(l, r [32]byte) [32]byte {
	return sha256.Sum256(append(append([]byte{1}, l[:]...), r[:]...))
}

// refTreeHash is RFC 6962 MTH over hashes, recursively.
func refTreeHash(hs [][32]byte) [32]byte {
	switch len(hs) {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return hs[0]
	}
	k := 1
	for k*2 < len(hs) {
		k *= 2
	}
	return refNodeHash(refTreeHash(hs[:k]), refTreeHash(hs[k:]))
}

// indexPathRef writes n the tlog-tiles way (x001/234), independently of
// verify.TileAddr.
func indexPathRef(n uint64) string {
	s := fmt.Sprintf("%03d", n%1000)
	for n >= 1000 {
		n /= 1000
		s = fmt.Sprintf("x%03d/%s", n%1000, s)
	}
	return s
}

func mustVerifiers(t testing.TB, vkeys ...string) note.Verifiers {
	t.Helper()
	var vs []note.Verifier
	for _, k := range vkeys {
		v, err := verify.NewVerifier(k)
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	return note.VerifierList(vs...)
}

// testLogKey is a deterministic log key for tests: signer and vkey. It is
// the key verify's tests derive for the same name.
func testLogKey(t testing.TB, name string) (note.Signer, string) {
	t.Helper()
	seed := sha256.Sum256([]byte("custody test log " + name))
	priv := ed25519.NewKeyFromSeed(seed[:])
	vkey, err := note.NewEd25519VerifierKey(name, priv.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.SplitN(vkey, "+", 3)
	skey := "PRIVATE+KEY+" + name + "+" + parts[1] + "+" + base64.StdEncoding.EncodeToString(append([]byte{0x01}, priv.Seed()...))
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s, vkey
}
