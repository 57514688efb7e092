package site

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/custodylog/custody/record"
)

var update = flag.Bool("update", false, "rewrite the test vectors in testdata/vectors from testdata/vectors/events.jsonl and the fixed key")

// Vector files, in testdata/vectors:
//
//	site.key         the site's private key (seed 32 bytes of 0x42; a test key, never use it)
//	site.pub         its verifier key
//	events.jsonl     the batch as submitted, one event per line (input, hand-written)
//	identities.txt   each event's identity, hex, one per line
//	attestation.txt  the attestation entry for the batch, origin
//	                 transparency.example.com/custody, time 2026-12-07T07:00:00Z
//	path-2.txt       the audit path of event 2 (record.AttestationPath), hex, one per line
const vectorsDir = "testdata/vectors"

var vectorTime = time.Date(2026, 12, 7, 7, 0, 0, 0, time.UTC)

// TestVectors recomputes every vector from events.jsonl and the fixed key
// and compares it byte for byte (-update rewrites them), then checks the
// checked-in files with independent code: x/mod/sumdb/note opens the
// attestation with site.pub, crypto/ed25519 verifies the signature over
// the text, and x/mod/sumdb/tlog recomputes the root and checks the path.
func TestVectors(t *testing.T) {
	skey, vkey, err := GenerateKey(bytes.NewReader(bytes.Repeat([]byte{0x42}, 32)), "ch-zrh-1")
	if err != nil {
		t.Fatal(err)
	}
	lines, err := os.ReadFile(filepath.Join(vectorsDir, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var evs []record.Event
	for i, l := range strings.Split(strings.TrimSuffix(string(lines), "\n"), "\n") {
		ev, err := record.DecodeSubmission([]byte(l), vectorTime)
		if err != nil {
			t.Fatalf("events.jsonl line %d: %v", i+1, err)
		}
		evs = append(evs, ev)
	}
	s, err := NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	_, pub, _ := ParseVerifierKey(vkey)
	a, entry, err := Attest(s, pub, testOrigin, vectorTime, evs)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([][32]byte, len(evs))
	var idText, pathText strings.Builder
	for i := range evs {
		ids[i] = evs[i].Identity()
		fmt.Fprintf(&idText, "%x\n", ids[i])
	}
	for _, h := range record.AttestationPath(ids, 2) {
		fmt.Fprintf(&pathText, "%x\n", h)
	}
	files := map[string][]byte{
		"site.key":        []byte(skey + "\n"),
		"site.pub":        []byte(vkey + "\n"),
		"identities.txt":  []byte(idText.String()),
		"attestation.txt": entry,
		"path-2.txt":      []byte(pathText.String()),
	}
	for name, got := range files {
		path := filepath.Join(vectorsDir, name)
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what the code computes now:\n%s\nwant\n%s", path, got, want)
		}
	}

	// Independent checks of the checked-in files.
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(vectorsDir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(read("site.pub"))))
	if err != nil {
		t.Fatal(err)
	}
	att := read("attestation.txt")
	n, err := note.Open(att, note.VerifierList(v))
	if err != nil {
		t.Fatalf("x/mod note.Open(attestation.txt, site.pub): %v", err)
	}
	sig := n.Sigs[0]
	raw, _ := decodeB64Sig(string(att[strings.LastIndex(string(att), " ")+1 : len(att)-1]))
	if !ed25519.Verify(pub, []byte(n.Text), raw[4:]) || sig.Hash != a.KeyID {
		t.Fatal("crypto/ed25519 does not verify attestation.txt over its text")
	}
	var leaves []tlog.Hash
	for _, l := range strings.Fields(string(read("identities.txt"))) {
		id, err := hex.DecodeString(l)
		if err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, tlog.RecordHash(id))
	}
	hr := treeOf(leaves)
	th, err := tlog.TreeHash(int64(len(leaves)), hr)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(n.Text, "\nroot "+b64(th[:])+"\n") || !strings.Contains(n.Text, fmt.Sprintf("\ncount %d\n", len(leaves))) {
		t.Fatalf("attestation.txt does not sign the tlog tree hash %x of identities.txt", th)
	}
	var proof tlog.RecordProof
	for _, l := range strings.Fields(string(read("path-2.txt"))) {
		h, err := hex.DecodeString(l)
		if err != nil || len(h) != 32 {
			t.Fatal("path-2.txt: bad hash")
		}
		proof = append(proof, tlog.Hash(h))
	}
	if err := tlog.CheckRecord(proof, int64(len(leaves)), th, 2, leaves[2]); err != nil {
		t.Fatalf("x/mod tlog.CheckRecord(path-2.txt): %v", err)
	}
}

// treeOf returns a tlog.HashReader over the stored hashes of a tree with
// the given leaf hashes.
func treeOf(leaves []tlog.Hash) tlog.HashReader {
	var stored []tlog.Hash
	hr := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = stored[x]
		}
		return out, nil
	})
	for i := range leaves {
		// StoredHashesForRecordHash computes the hashes a new leaf adds.
		hs, err := tlog.StoredHashesForRecordHash(int64(i), leaves[i], hr)
		if err != nil {
			panic(err)
		}
		stored = append(stored, hs...)
	}
	return hr
}
