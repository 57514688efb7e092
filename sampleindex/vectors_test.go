package sampleindex

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

var updateVectors = flag.Bool("update-vectors", false, "rewrite testdata/vectors.json")

// vectorsFile holds the test vectors another implementer checks against:
// docs/sample-index.md ("Test vectors") describes them.
const vectorsFile = "testdata/vectors.json"

type hashVector struct {
	Function string            `json:"function"`
	Inputs   map[string]string `json:"inputs"`
	Output   string            `json:"output"`
}

type checkpointVector struct {
	Size          uint64 `json:"size"`
	LogRoot       string `json:"log_root"`
	MapRoot       string `json:"map_root"`
	ExtensionLine string `json:"extension_line"`
}

type tileVector struct {
	Depth      uint8  `json:"depth"`
	Prefix     string `json:"prefix"`
	StorageKey string `json:"storage_key"`
	Data       string `json:"data"`
}

type proofVector struct {
	Name   string `json:"name"`
	Sample string `json:"sample"`
	Size   uint64 `json:"size"`
	Since  uint64 `json:"since"`
	Proof  string `json:"proof"`
	Valid  bool   `json:"valid"`
	// Valid proofs: what verifying gives.
	Kind     string   `json:"kind,omitempty"`
	ListSize uint64   `json:"list_size"`
	ListRoot string   `json:"list_root,omitempty"`
	Indexes  []uint64 `json:"indexes,omitempty"`
	// Invalid proofs: the check that fails.
	Error string `json:"error,omitempty"`
}

type vectors struct {
	Comment     string             `json:"comment"`
	Hashes      []hashVector       `json:"hashes"`
	Entries     []string           `json:"entries"`
	Checkpoints []checkpointVector `json:"checkpoints"`
	Tiles       []tileVector       `json:"tiles"`
	Proofs      []proofVector      `json:"proofs"`
}

func hx(b []byte) string { return hex.EncodeToString(b) }

// buildVectors builds the vectors from scratch.
func buildVectors(t *testing.T) *vectors {
	ctx := context.Background()
	v := &vectors{Comment: "custody sample index test vectors; see docs/sample-index.md, \"Test vectors\". Hex is lowercase; entries are the exact log entry bytes (UTF-8 JSON)."}

	k := KeyOf("smp-b")
	lh := EntryLeafHash([]byte("entry"))
	ll := ListLeafHash(7, lh)
	ml := MapLeafHash(k, 2, ll)
	v.Hashes = []hashVector{
		{"KeyOf", map[string]string{"sample": "smp-b"}, hx(k[:])},
		{"EntryLeafHash", map[string]string{"entry_utf8": "entry"}, hx(lh[:])},
		{"ListLeafHash", map[string]string{"index": "7", "leaf_hash": hx(lh[:])}, hx(ll[:])},
		{"MapLeafHash", map[string]string{"key": hx(k[:]), "n": "2", "list_root": hx(ll[:])}, hx(ml[:])},
		{"MapNodeHash", map[string]string{"left": hx(ml[:]), "right": hx(EmptyMapRoot[:])}, func() string { h := MapNodeHash(ml, EmptyMapRoot); return hx(h[:]) }()},
		{"ListRoot", map[string]string{"elements": "(3, " + hx(lh[:]) + "), (7, " + hx(lh[:]) + ")"}, func() string {
			h := ListRoot([]ListElement{{3, lh}, {7, lh}})
			return hx(h[:])
		}()},
	}

	// The log: smp-a once, smp-b twice, smp-c three times, among 24
	// samples of one event each.
	l := newTestLog()
	order := []string{"smp-c", "smp-a"}
	for i := 0; i < 24; i++ {
		order = append(order, fmt.Sprintf("smp-x%02d", i))
		switch i {
		case 3, 15:
			order = append(order, "smp-b")
		case 7, 20:
			order = append(order, "smp-c")
		}
	}
	m := Open(NewMemTiles(), 0, nil)
	const mid = 12
	var trusted = map[uint64]Trusted{}
	for i, s := range order {
		l.append(s)
		if i+1 == mid || i+1 == len(order) {
			l.flushChanges(t, m)
			tr := l.trusted(t, m)
			trusted[tr.Size] = tr
			v.Checkpoints = append(v.Checkpoints, checkpointVector{Size: tr.Size, LogRoot: hx(tr.LogRoot[:]), MapRoot: hx(tr.MapRoot[:]), ExtensionLine: FormatExtension(tr.MapRoot)})
			if i+1 == mid {
				for _, p := range []struct {
					name, sample string
					since        uint64
				}{{"smp-c at the first checkpoint", "smp-c", 0}} {
					v.Proofs = append(v.Proofs, proofVec(t, p.name, p.sample, p.since, l.prove(t, m, p.sample, p.since), tr))
				}
			}
		}
	}
	for _, e := range l.entries {
		v.Entries = append(v.Entries, string(e))
	}
	for _, tl := range m.Dirty() {
		v.Tiles = append(v.Tiles, tileVector{Depth: tl.ID.Depth, Prefix: hx(tl.ID.Prefix[:(tl.ID.Depth+7)/8]), StorageKey: hx(tl.ID.Key()), Data: hx(tl.Data)})
	}
	tr := trusted[l.size()]
	absentEmpty, absentOther := "", ""
	for i := 0; absentEmpty == "" || absentOther == ""; i++ {
		s := fmt.Sprintf("smp-none-%d", i)
		mp, err := m.Prove(ctx, KeyOf(s))
		if err != nil {
			t.Fatal(err)
		}
		if mp.Kind == AbsentEmpty && absentEmpty == "" {
			absentEmpty = s
		}
		if mp.Kind == AbsentOther && absentOther == "" {
			absentOther = s
		}
	}
	for _, p := range []struct {
		name, sample string
		since        uint64
	}{
		{"smp-a, one event", "smp-a", 0},
		{"smp-b, two events", "smp-b", 0},
		{"smp-c, three events", "smp-c", 0},
		{"smp-c since the first checkpoint", "smp-c", mid},
		{"smp-b since the first checkpoint", "smp-b", mid},
		{"absence: the path ends in an empty subtree", absentEmpty, 0},
		{"absence: the path ends at another key's leaf", absentOther, 0},
	} {
		v.Proofs = append(v.Proofs, proofVec(t, p.name, p.sample, p.since, l.prove(t, m, p.sample, p.since), tr))
	}

	// Invalid proofs, each from a valid one, and the error they give.
	good := l.prove(t, m, "smp-c", 0)
	edit := func(name string, f func(p *Proof)) {
		p, err := ParseProof(good)
		if err != nil {
			t.Fatal(err)
		}
		f(p)
		v.Proofs = append(v.Proofs, proofVec(t, name, "smp-c", 0, p.Marshal(), tr))
	}
	edit("invalid: an entry dropped", func(p *Proof) { p.Entries = p.Entries[1:] })
	edit("invalid: an entry added", func(p *Proof) { p.Entries = append(p.Entries, p.Entries[0]) })
	edit("invalid: two entries in the wrong order", func(p *Proof) { p.Entries[0], p.Entries[1] = p.Entries[1], p.Entries[0] })
	edit("invalid: two entries' bytes swapped", func(p *Proof) { p.Entries[0].Data, p.Entries[1].Data = p.Entries[1].Data, p.Entries[0].Data })
	edit("invalid: a map sibling changed", func(p *Proof) { p.Map.Siblings[0][0] ^= 1 })
	edit("invalid: the list root changed", func(p *Proof) { p.List.Root[0] ^= 1 })
	edit("invalid: an inclusion hash changed", func(p *Proof) { p.Inclusion[0][0] ^= 1 })
	v.Proofs = append(v.Proofs, proofVec(t, "invalid: a proof for another size", "smp-c", 0, v.proofBytes(t, "smp-c at the first checkpoint"), tr))
	bad := append(bytes.Clone(good), 0)
	v.Proofs = append(v.Proofs, proofVec(t, "invalid: a trailing byte", "smp-c", 0, bad, tr))
	return v
}

func (v *vectors) proofBytes(t *testing.T, name string) []byte {
	for _, p := range v.Proofs {
		if p.Name == name {
			b, _ := hex.DecodeString(p.Proof)
			return b
		}
	}
	t.Fatalf("no proof %q", name)
	return nil
}

// errNames names the errors Verify wraps.
var errNames = []struct {
	name string
	err  error
}{
	{"ErrMalformedProof", ErrMalformedProof}, {"ErrBadMapProof", ErrBadMapProof}, {"ErrMapRootMismatch", ErrMapRootMismatch},
	{"ErrWrongSample", ErrWrongSample}, {"ErrWrongSize", ErrWrongSize}, {"ErrDroppedEntry", ErrDroppedEntry},
	{"ErrAddedEntry", ErrAddedEntry}, {"ErrReorderedEntries", ErrReorderedEntries}, {"ErrListRootMismatch", ErrListRootMismatch},
	{"ErrBadInclusion", ErrBadInclusion}, {"ErrBadConsistency", ErrBadConsistency}, {"ErrWrongEntry", ErrWrongEntry},
}

// proofVec verifies proof against tr and records the outcome.
func proofVec(t *testing.T, name, sample string, since uint64, proof []byte, tr Trusted) proofVector {
	t.Helper()
	pv := proofVector{Name: name, Sample: sample, Size: tr.Size, Since: since, Proof: hx(proof)}
	ch, err := Verify(proof, req(sample, since), tr)
	if err != nil {
		for _, e := range errNames {
			if errors.Is(err, e.err) {
				pv.Error = e.name
				break
			}
		}
		if pv.Error == "" {
			t.Fatalf("%s: unnamed error %v", name, err)
		}
		return pv
	}
	pv.Valid = true
	pv.ListSize = ch.List.Size
	pv.Kind = "membership"
	if ch.Absent() {
		p, _ := ParseProof(proof)
		pv.Kind = map[ProofKind]string{AbsentEmpty: "absent-empty", AbsentOther: "absent-other"}[p.Map.Kind]
	} else {
		pv.ListRoot = hx(ch.List.Root[:])
	}
	for _, e := range ch.Entries {
		pv.Indexes = append(pv.Indexes, e.Index)
	}
	return pv
}

// TestVectors: the checked-in vectors are exactly what this package
// computes (rewrite them with -update-vectors after a deliberate format
// change, and update docs/sample-index.md); and every vector holds when
// read back: hashes, tiles (CheckTile), proofs (Verify) and checkpoint
// lines (ParseExtension).
func TestVectors(t *testing.T) {
	v := buildVectors(t)
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	if *updateVectors {
		if err := os.MkdirAll(filepath.Dir(vectorsFile), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(vectorsFile, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(vectorsFile)
	if err != nil {
		t.Fatalf("%v (run go test ./sampleindex -run TestVectors -update-vectors to create it)", err)
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("%s differs from what the code computes: the format changed (if deliberately, rewrite with -update-vectors and update docs/sample-index.md)", vectorsFile)
	}

	// Read back, as another implementer would.
	var got vectors
	if err := json.Unmarshal(want, &got); err != nil {
		t.Fatal(err)
	}
	for _, c := range got.Checkpoints {
		r, err := ParseExtension(c.ExtensionLine)
		if err != nil || hx(r[:]) != c.MapRoot {
			t.Errorf("checkpoint %d: line %q: %x %v", c.Size, c.ExtensionLine, r, err)
		}
	}
	for _, tl := range got.Tiles {
		key, _ := hex.DecodeString(tl.StorageKey)
		id, err := ParseTileKey(key)
		data, _ := hex.DecodeString(tl.Data)
		if err != nil || id.Depth != tl.Depth || CheckTile(id, data) != nil {
			t.Errorf("tile %s: %v %v", tl.StorageKey, err, CheckTile(id, data))
		}
	}
	trusted := map[uint64]Trusted{}
	for _, c := range got.Checkpoints {
		var tr Trusted
		tr.Size = c.Size
		lr, _ := hex.DecodeString(c.LogRoot)
		mr, _ := hex.DecodeString(c.MapRoot)
		tr.LogRoot, tr.MapRoot = Hash(lr), Hash(mr)
		trusted[c.Size] = tr
	}
	valid, invalid := 0, 0
	for _, p := range got.Proofs {
		proof, _ := hex.DecodeString(p.Proof)
		_, err := Verify(proof, req(p.Sample, p.Since), trusted[p.Size])
		if p.Valid != (err == nil) {
			t.Errorf("%s: valid %v, Verify %v", p.Name, p.Valid, err)
		}
		if p.Valid {
			valid++
		} else {
			invalid++
		}
	}
	if valid < 8 || invalid < 9 {
		t.Errorf("%d valid and %d invalid proofs", valid, invalid)
	}
}
