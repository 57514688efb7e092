package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

var updateExample = flag.Bool("update-example", false, "rewrite ../testdata/example from ../testdata/audit/dirty.jsonl")

// The example log of the packages' Example functions: the first
// exampleEntries events of testdata/audit/dirty.jsonl, logged as custody
// logs them, in the tlog-tiles layout under testdata/example/log, signed
// by a key derived from exampleOrigin (testdata/example/log.pub), with the
// receipt of entry exampleReceipt in testdata/example/receipt.json.
const (
	exampleDir     = "../testdata/example"
	exampleOrigin  = "example.com/custody-example"
	exampleEntries = 6
	exampleReceipt = 2
)

// exampleFiles builds every file of testdata/example, by path under it.
func exampleFiles(t *testing.T) map[string][]byte {
	t.Helper()
	f, err := os.Open("../testdata/audit/dirty.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var entries [][]byte
	sc := bufio.NewScanner(f)
	for len(entries) < exampleEntries && sc.Scan() {
		ev, err := record.Decode(sc.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, ev.Canonical())
	}
	if len(entries) != exampleEntries {
		t.Fatalf("dirty.jsonl has %d events", len(entries))
	}
	files := map[string][]byte{}
	var bundle, tile []byte
	var leaves [][32]byte
	for _, e := range entries {
		if bundle, err = verify.AppendBundleEntry(bundle, e); err != nil {
			t.Fatal(err)
		}
		h := refLeafHash(e)
		leaves = append(leaves, h)
		tile = append(tile, h[:]...)
	}
	w := "000.p/" + string(rune('0'+exampleEntries))
	files["log/tile/0/"+w] = tile
	files["log/tile/entries/"+w] = bundle
	signer, vkey := testLogKey(t, exampleOrigin)
	cp := verify.Checkpoint{Origin: exampleOrigin, Size: exampleEntries, Root: refTreeHash(leaves)}
	signed, err := note.Sign(&note.Note{Text: string(cp.Marshal())}, signer)
	if err != nil {
		t.Fatal(err)
	}
	files["log/checkpoint"] = signed
	files["log.pub"] = []byte(vkey + "\n")

	// The receipt, as the log hands it out, with the proof from the tiles.
	c := verify.NewClient(memFiles(files), exampleOrigin, mustVerifiers(t, vkey), nil)
	proof, err := c.InclusionProof(context.Background(), exampleReceipt, cp)
	if err != nil {
		t.Fatal(err)
	}
	e := entries[exampleReceipt]
	leaf := leaves[exampleReceipt]
	r := verify.Receipt{Index: exampleReceipt, LeafHash: leaf[:], Entry: e, Event: e, Checkpoint: string(signed),
		TLogProof: string(verify.TLogProof{Index: exampleReceipt, Proof: proof, Checkpoint: signed}.Marshal())}
	for _, h := range proof {
		r.Proof = append(r.Proof, bytes.Clone(h[:]))
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	files["receipt.json"] = append(b, '\n')
	return files
}

// memFiles is a verify.Source over files, by path under testdata/example.
type memFiles map[string][]byte

func (m memFiles) ReadCheckpoint(context.Context) ([]byte, error) {
	return m["log/checkpoint"], nil
}

func (m memFiles) ReadTile(_ context.Context, a verify.TileAddr) ([]byte, error) {
	if b, ok := m["log/"+a.Path()]; ok {
		return b, nil
	}
	return nil, verify.ErrTileNotFound
}

// TestExampleData keeps testdata/example what its generator makes of
// testdata/audit/dirty.jsonl (go test ./audit -run TestExampleData
// -update-example rewrites it), and checks that it is a log every reader
// accepts: the examples' output depends on it.
func TestExampleData(t *testing.T) {
	files := exampleFiles(t)
	for p, want := range files {
		name := filepath.Join(exampleDir, filepath.FromSlash(p))
		if *updateExample {
			if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(name, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(name)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s differs from what the generator makes (%v); run go test ./audit -run TestExampleData -update-example", name, err)
		}
	}
	// The receipt checks with the published key, and the log's entries
	// read back through a Client on the directory.
	vkey, err := verify.LoadVerifierKey(filepath.Join(exampleDir, "log.pub"))
	if err != nil {
		t.Fatal(err)
	}
	var r verify.Receipt
	if err := json.Unmarshal(files["receipt.json"], &r); err != nil {
		t.Fatal(err)
	}
	if _, _, err := verify.CheckReceipt(r, exampleOrigin, mustVerifiers(t, vkey), nil); err != nil {
		t.Fatalf("example receipt: %v", err)
	}
	c := verify.NewClient(verify.NewDirSource(filepath.Join(exampleDir, "log")), exampleOrigin, mustVerifiers(t, vkey), nil)
	cp, _, err := c.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := c.Entries(context.Background(), 0, cp.Size, cp, func(uint64, []byte) error { n++; return nil }); err != nil || n != exampleEntries {
		t.Fatalf("reading the example log: %d entries, %v", n, err)
	}
}
