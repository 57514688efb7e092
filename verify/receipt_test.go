package verify

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/custodylog/custody/internal/fuzzseeds"
)

// receiptFixture builds a valid receipt for a 3-entry log by hand (x/mod
// signs the checkpoint), so the tests do not depend on the writer.
func receiptFixture(t testing.TB) (Receipt, note.Verifiers, string) {
	t.Helper()
	seed := sha256.Sum256([]byte("receipt-test-seed"))
	s, vkey := fixedKey(t, "example.com/receipt-test", seed[:])
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	var leaves [][32]byte
	var entries [][]byte
	for i, a := range []string{"collected", "stored", "analysed"} {
		e := []byte(`{"sample":"s1","action":"` + a + `","location":"ch-zrh-1","region":"EU","time":"2026-11-01T12:00:0` + string(rune('0'+i)) + `Z","logged":"2026-11-01T12:00:09Z","actor":"t"}`)
		entries = append(entries, e)
		leaves = append(leaves, LeafHash(e))
	}
	root := NodeHash(NodeHash(leaves[0], leaves[1]), leaves[2])
	signed, err := note.Sign(&note.Note{Text: string(Checkpoint{Origin: "example.com/receipt-test", Size: 3, Root: root}.Marshal())}, s)
	if err != nil {
		t.Fatal(err)
	}
	// Entry 1: sibling leaf 0, then leaf 2.
	proof := [][32]byte{leaves[0], leaves[2]}
	r := Receipt{Index: 1, LeafHash: leaves[1][:], Entry: entries[1], Event: entries[1], Checkpoint: string(signed),
		TLogProof: string(TLogProof{Index: 1, Proof: proof, Checkpoint: signed}.Marshal())}
	for _, p := range proof {
		r.Proof = append(r.Proof, append([]byte(nil), p[:]...))
	}
	return r, note.VerifierList(v), "example.com/receipt-test"
}

// fixedKey returns a signer and verifier key string for a fixed seed.
func fixedKey(t testing.TB, name string, seed []byte) (note.Signer, string) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(fixedReader{seed}, name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s, vkey
}

type fixedReader struct{ b []byte }

func (r fixedReader) Read(p []byte) (int, error) { return copy(p, r.b), nil }

func TestCheckReceipt(t *testing.T) {
	good, vs, origin := receiptFixture(t)
	if cp, entry, err := CheckReceipt(good, origin, vs, nil); err != nil || !bytes.Equal(entry, good.Entry) || cp.Size != 3 {
		t.Fatalf("valid receipt: %v, entry %q, checkpoint %+v", err, entry, cp)
	}
	// The event view is the entry shown as JSON: another layout, key order
	// or escaping of the same value is the same view.
	for name, view := range map[string]string{
		"indented":  "{\n  \"sample\": \"s1\",\n  \"action\": \"stored\", \"location\": \"ch-zrh-1\", \"region\": \"EU\", \"time\": \"2026-11-01T12:00:01Z\", \"logged\": \"2026-11-01T12:00:09Z\", \"actor\": \"t\"\n}\n",
		"reordered": `{"actor":"t","logged":"2026-11-01T12:00:09Z","time":"2026-11-01T12:00:01Z","region":"EU","location":"ch-zrh-1","action":"stored","sample":"s1"}`,
		"escaped":   `{"sample":"\u0073\u0031","action":"stored","location":"ch-zrh-1","region":"EU","time":"2026-11-01T12:00:01Z","logged":"2026-11-01T12:00:09Z","actor":"t"}`,
	} {
		r, _, _ := receiptFixture(t)
		r.Event = []byte(view)
		if _, _, err := CheckReceipt(r, origin, vs, nil); err != nil {
			t.Errorf("event view %s: %v", name, err)
		}
	}
	mutate := map[string]func(r *Receipt){
		"proof byte flipped": func(r *Receipt) { r.Proof[0] = flip(r.Proof[0]) },
		"proof truncated":    func(r *Receipt) { r.Proof = r.Proof[:1] },
		"wrong index":        func(r *Receipt) { r.Index = 2 },
		"entry changed":      func(r *Receipt) { r.Entry = []byte(strings.Replace(string(r.Entry), "ch-zrh-1", "ru-mow-1", 1)) },
		"leaf hash wrong":    func(r *Receipt) { r.LeafHash = flip(r.LeafHash) },
		"leaf hash short":    func(r *Receipt) { r.LeafHash = r.LeafHash[:5] },
		"checkpoint signature": func(r *Receipt) {
			r.Checkpoint = strings.Replace(r.Checkpoint, "— example.com/receipt-test ", "— example.com/receipt-test A", 1)
		},
		"checkpoint size":         func(r *Receipt) { r.Checkpoint = strings.Replace(r.Checkpoint, "\n3\n", "\n4\n", 1) },
		"event differs":           func(r *Receipt) { r.Event = []byte(strings.Replace(string(r.Event), "stored", "analysed", 1)) },
		"event has a member more": func(r *Receipt) { r.Event = []byte(strings.Replace(string(r.Event), "{", `{"note":"x",`, 1)) },
		"event has trailing data": func(r *Receipt) { r.Event = append(bytes.Clone(r.Event), "{}"...) },
		"event not JSON":          func(r *Receipt) { r.Event = []byte("{") },
		"tlog_proof index":        func(r *Receipt) { r.TLogProof = strings.Replace(r.TLogProof, "index 1\n", "index 0\n", 1) },
		"tlog_proof malformed":    func(r *Receipt) { r.TLogProof = "nonsense" },
		"proof hash wrong size":   func(r *Receipt) { r.Proof[1] = r.Proof[1][:31] },
	}
	for name, m := range mutate {
		t.Run(name, func(t *testing.T) {
			r, _, _ := receiptFixture(t)
			m(&r)
			_, _, err := CheckReceipt(r, origin, vs, nil)
			ve, ok := IsVerificationError(err)
			if !ok || ve.Evidence.Kind != EvidenceBadReceipt {
				t.Fatalf("CheckReceipt(%s) = %v, want a bad-receipt VerificationError", name, err)
			}
		})
	}
	// The wrong origin (another log's key) never verifies.
	if _, _, err := CheckReceipt(good, "example.com/other", vs, nil); err == nil {
		t.Fatal("receipt verified for another origin")
	}
}

func TestCheckTLogProof(t *testing.T) {
	r, vs, origin := receiptFixture(t)
	if cp, index, err := CheckTLogProof([]byte(r.TLogProof), r.Entry, origin, vs, nil); err != nil || index != r.Index || cp.Size != 3 {
		t.Fatalf("valid tlog-proof: %v (index %d, size %d)", err, index, cp.Size)
	}
	other := []byte(strings.Replace(string(r.Entry), "stored", "released", 1))
	_, _, err := CheckTLogProof([]byte(r.TLogProof), other, origin, vs, nil)
	var ve *VerificationError
	if !errors.As(err, &ve) {
		t.Fatalf("tlog-proof with another entry: %v, want a VerificationError", err)
	}
}

// TestReceiptError: the error for an application's check of a receipt is
// the bad-receipt error CheckReceipt gives, with the checkpoint verbatim
// only when it is a checkpoint note for the origin.
func TestReceiptError(t *testing.T) {
	r, _, origin := receiptFixture(t)
	cause := errors.New("not an event")
	err := ReceiptError(r, origin, "the entry is not a valid canonical event", cause)
	ve, ok := IsVerificationError(err)
	if !ok || ve.Evidence.Kind != EvidenceBadReceipt || !errors.Is(err, cause) || ve.Evidence.Index == nil || *ve.Evidence.Index != r.Index ||
		ve.Evidence.NewCheckpoint != r.Checkpoint || ve.Evidence.Origin != origin {
		t.Fatalf("ReceiptError = %v, evidence %+v", err, ve)
	}
	ve = ReceiptError(r, "example.com/other", "x", nil)
	if ve.Evidence.NewCheckpoint != "" || ve.Evidence.NewCheckpointBytes != len(r.Checkpoint) {
		t.Errorf("another origin's checkpoint copied into evidence: %+v", ve.Evidence)
	}
}

func flip(b []byte) []byte {
	c := append([]byte(nil), b...)
	c[0] ^= 1
	return c
}

// FuzzCheckReceipt feeds arbitrary receipt JSON to CheckReceipt: it must not
// panic, and must give the same verdict twice.
func FuzzCheckReceipt(f *testing.F) {
	r, vs, origin := receiptFixture(f)
	b, _ := json.Marshal(r)
	f.Add(b)
	files, _ := filepath.Glob(filepath.Join("testdata", "receipts", "*.json"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Receipt
		if json.Unmarshal(b, &r) != nil {
			return
		}
		_, _, err1 := CheckReceipt(r, origin, vs, nil)
		_, _, err2 := CheckReceipt(r, origin, vs, nil)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("verdict changed: %v then %v", err1, err2)
		}
	})
}

func TestReceiptFuzzSeeds(t *testing.T) {
	_, vs, origin := receiptFixture(t)
	fuzzseeds.Check(t, map[string]func(args []any) error{
		"FuzzCheckReceipt": func(a []any) error {
			var r Receipt
			if err := json.Unmarshal(a[0].([]byte), &r); err != nil {
				return err
			}
			_, _, err := CheckReceipt(r, origin, vs, nil)
			return err
		},
	})
}
