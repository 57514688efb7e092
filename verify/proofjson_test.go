package verify

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/custodylog/custody/internal/fuzzseeds"
)

func TestParseProofJSON(t *testing.T) {
	h := base64.StdEncoding.EncodeToString(make([]byte, 32))
	good := `{"index":1,"size":3,"leaf_hash":"` + h + `","proof":["` + h + `","` + h + `"]}`
	p, err := ParseInclusionProofJSON([]byte(good))
	if err != nil || p.Index != 1 || p.Size != 3 || len(p.Proof) != 2 {
		t.Fatalf("valid inclusion proof: %+v, %v", p, err)
	}
	bad := map[string]string{
		"unknown field":    strings.Replace(good, `"size"`, `"extra":1,"size"`, 1),
		"index >= size":    strings.Replace(good, `"index":1`, `"index":3`, 1),
		"short hash":       strings.Replace(good, `"leaf_hash":"`+h, `"leaf_hash":"AAAA`, 1),
		"url-safe":         strings.Replace(good, h, strings.Repeat("_", 43)+"=", 1),
		"missing proof":    `{"index":1,"size":3,"leaf_hash":"` + h + `"}`,
		"trailing":         good + `{}`,
		"negative":         strings.Replace(good, `"index":1`, `"index":-1`, 1),
		"too many hashes":  `{"index":1,"size":3,"leaf_hash":"` + h + `","proof":[` + strings.TrimSuffix(strings.Repeat(`"`+h+`",`, 66), ",") + `]}`,
		"proof not a list": strings.Replace(good, `"proof":[`, `"proof":{"a":[`, 1),
	}
	for name, in := range bad {
		if _, err := ParseInclusionProofJSON([]byte(in)); err == nil {
			t.Errorf("%s: accepted %s", name, in)
		}
	}
	c, err := ParseConsistencyProofJSON([]byte(`{"from":3,"to":300,"proof":["` + h + `"]}`))
	if err != nil || c.From != 3 || c.To != 300 || len(c.Proof) != 1 {
		t.Fatalf("valid consistency proof: %+v, %v", c, err)
	}
	if _, err := ParseConsistencyProofJSON([]byte(`{"from":301,"to":300,"proof":[]}`)); err == nil {
		t.Error("from > to accepted")
	}
}

// FuzzParseProofJSON: no panic; an accepted proof re-encodes (as the server
// writes it) to JSON that parses to the same proof.
func FuzzParseProofJSON(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, err := ParseInclusionProofJSON(b); err == nil {
			out, _ := json.Marshal(map[string]any{"index": p.Index, "size": p.Size, "leaf_hash": p.LeafHash[:], "proof": proofBytes(p.Proof)})
			q, err := ParseInclusionProofJSON(out)
			if err != nil || q.Index != p.Index || q.Size != p.Size || q.LeafHash != p.LeafHash || len(q.Proof) != len(p.Proof) {
				t.Fatalf("round trip of %s: %v", b, err)
			}
		}
		if p, err := ParseConsistencyProofJSON(b); err == nil {
			out, _ := json.Marshal(map[string]any{"from": p.From, "to": p.To, "proof": proofBytes(p.Proof)})
			if q, err := ParseConsistencyProofJSON(out); err != nil || q.From != p.From || q.To != p.To || len(q.Proof) != len(p.Proof) {
				t.Fatalf("round trip of %s: %v", b, err)
			}
		}
	})
}

func proofBytes(p [][32]byte) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = p[i][:]
	}
	return out
}

func TestProofJSONFuzzSeeds(t *testing.T) {
	fuzzseeds.Check(t, map[string]func(args []any) error{
		"FuzzParseProofJSON": func(a []any) error {
			_, err1 := ParseInclusionProofJSON(a[0].([]byte))
			_, err2 := ParseConsistencyProofJSON(a[0].([]byte))
			if err1 != nil && err2 != nil {
				return err1
			}
			return nil
		},
	})
}
