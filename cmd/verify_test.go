package cmd

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custodylog/custody/verify"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/mod/sumdb/note"
)

// witness is a C2SP tlog-cosignature signer with a fixed key.
type witness struct {
	signer note.Signer
	vkey   string
}

func newWitness(t testing.TB, name string, seed byte) witness {
	t.Helper()
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	return witness{
		signer: verify.NewCosignatureSigner(name, priv, nil),
		vkey:   verify.CosignatureVKey(name, priv.Public().(ed25519.PublicKey)),
	}
}

// cosign returns the signed checkpoint with the witness's cosignature
// line added after the log's signature.
func (w witness) cosign(t testing.TB, k logKey, signed []byte) []byte {
	t.Helper()
	n, err := note.Open(signed, note.VerifierList(k.verifier))
	if err != nil {
		t.Fatal(err)
	}
	b, err := note.Sign(n, w.signer)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, signed) || bytes.Count(b, []byte("\n— ")) != 2 {
		t.Fatalf("cosigned note:\n%s", b)
	}
	return b
}

// flipSignature flips a bit of the Ed25519 signature (not the key ID) of
// the first signature line of a signed note.
func flipSignature(t testing.TB, signed []byte) []byte {
	t.Helper()
	i := bytes.Index(signed, []byte("\n\n— "))
	if i < 0 {
		t.Fatalf("no signature in %q", signed)
	}
	head, sigs := signed[:i+2], string(signed[i+2:])
	line, rest, _ := strings.Cut(sigs, "\n")
	f := strings.Fields(line) // "—", name, base64
	raw, err := base64.StdEncoding.DecodeString(f[2])
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-1] ^= 0x01
	return []byte(string(head) + f[0] + " " + f[1] + " " + base64.StdEncoding.EncodeToString(raw) + "\n" + rest)
}

// editReceipt changes one receipt (a line of append's output) as a map.
func editReceipt(t testing.TB, line string, edit func(m map[string]any)) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func b64decode(t testing.TB, v any) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(v.(string))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestVerifyCommands appends to a `custody serve` child process and checks
// receipts, checkpoints, inclusion and consistency with `custody verify`:
// what the log handed out verifies (exit 0), anything changed fails with
// exit 2 and evidence of the right kind, a missing key is exit 3.
func TestVerifyCommands(t *testing.T) {
	dir := t.TempDir()
	logDir := filepath.Join(dir, "log")
	if code, _, stderr := run(t, "", "init", "--dir", logDir, "--origin", "example.com/verify"); code != 0 {
		t.Fatal(stderr)
	}
	tokens := writeTokens(t, dir)
	srv := startServer(t, "--dir", logDir, "--token-file", tokens, "--max-wait", "1ms")
	pub := filepath.Join(logDir, "log.pub")
	in, err := os.ReadFile(filepath.Join("..", "testdata", "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	events := lines(string(in))
	const first = 20
	firstFile, restFile := filepath.Join(dir, "first.jsonl"), filepath.Join(dir, "rest.jsonl")
	writeFile(t, firstFile, []byte(strings.Join(events[:first], "\n")+"\n"))
	writeFile(t, restFile, []byte(strings.Join(events[first:], "\n")+"\n"))

	code, out, stderr := run(t, "", "append", "--log", srv.url, "--token-file", tokens, firstFile)
	if code != 0 {
		t.Fatalf("append: %s", stderr)
	}
	receiptLines := lines(out)
	rs := receiptsOf(t, out)
	if len(rs) != first {
		t.Fatalf("%d receipts for %d events", len(rs), first)
	}
	receipts := filepath.Join(dir, "receipts.jsonl")
	writeFile(t, receipts, []byte(out))
	// The checkpoint as of now, kept for the consistency check below.
	saved := filepath.Join(dir, "checkpoint-20.txt")
	writeFile(t, saved, httpGet(t, srv.url+"/checkpoint"))

	// verify receipt: all of append's receipts are valid.
	evDir := t.TempDir()
	code, out, stderr = run(t, "", "verify", "receipt", receipts, "--key", pub, "--evidence-dir", evDir, "--json")
	if code != 0 {
		t.Fatalf("verify receipt: exit %d: %s", code, stderr)
	}
	var vr struct {
		Valid    bool
		Origin   string
		Receipts []struct {
			Index          uint64
			Size           uint64
			Sample, Action string
		}
	}
	if err := json.Unmarshal([]byte(out), &vr); err != nil {
		t.Fatal(err)
	}
	if !vr.Valid || vr.Origin != "example.com/verify" || len(vr.Receipts) != first {
		t.Fatalf("verify receipt --json: %s", out)
	}
	for i, r := range vr.Receipts {
		var ev struct{ Sample, Action string }
		json.Unmarshal([]byte(events[i]), &ev)
		if r.Index != uint64(i) || r.Size != first || r.Sample != ev.Sample || r.Action != ev.Action {
			t.Errorf("receipt %d: %+v, want index %d size %d %s %s", i, r, i, first, ev.Sample, ev.Action)
		}
	}

	// Receipts that were changed fail, naming the receipt, with evidence.
	const k = 3 // index 3 of 20: a proof of 5 hashes
	if len(rs[k].Proof) == 0 {
		t.Fatalf("receipt %d has no proof", k)
	}
	newEntry := func(m map[string]any) []byte {
		e := bytes.Replace(b64decode(t, m["entry"]), []byte(`"actor":"`), []byte(`"actor":"x`), 1)
		if bytes.Equal(e, b64decode(t, m["entry"])) {
			t.Fatalf("entry %s has no actor", e)
		}
		return e
	}
	for _, tc := range []struct {
		name string
		edit func(m map[string]any)
		what string
	}{
		{"proof byte flipped", func(m map[string]any) {
			p := m["proof"].([]any)
			b := b64decode(t, p[2])
			b[17] ^= 0x80
			p[2] = base64.StdEncoding.EncodeToString(b)
		}, "inclusion proof"},
		{"entry changed", func(m map[string]any) {
			m["entry"] = base64.StdEncoding.EncodeToString(newEntry(m))
		}, "leaf_hash is not the hash of the entry"},
		{"entry and leaf hash changed", func(m map[string]any) {
			e := newEntry(m)
			h := sha256.Sum256(append([]byte{0}, e...))
			m["entry"], m["leaf_hash"] = base64.StdEncoding.EncodeToString(e), base64.StdEncoding.EncodeToString(h[:])
			m["event"] = json.RawMessage(e)
		}, "inclusion proof"},
		{"checkpoint signature flipped", func(m map[string]any) {
			m["checkpoint"] = string(flipSignature(t, []byte(m["checkpoint"].(string))))
		}, "checkpoint does not verify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ls := append([]string(nil), receiptLines...)
			ls[k] = editReceipt(t, ls[k], tc.edit)
			bad := filepath.Join(t.TempDir(), "receipts.jsonl")
			writeFile(t, bad, []byte(strings.Join(ls, "\n")+"\n"))
			evDir := t.TempDir()
			code, _, stderr := run(t, "", "verify", "receipt", bad, "--key", pub, "--evidence-dir", evDir)
			ev := wantFailure(t, code, stderr, evDir, verify.EvidenceBadReceipt)
			if ev.Index == nil || *ev.Index != k || !strings.Contains(stderr, fmt.Sprintf("receipt %d (index %d)", k+1, k)) || !strings.Contains(ev.What, tc.what) {
				t.Errorf("evidence index %v, what %q; stderr:\n%s", ev.Index, ev.What, stderr)
			}
		})
	}

	// A bare tlog-proof with the entry in another file.
	proofFile, entryFile := filepath.Join(dir, "r.tlog-proof"), filepath.Join(dir, "entry.json")
	writeFile(t, proofFile, []byte(rs[k].TLogProof))
	writeFile(t, entryFile, rs[k].Entry)
	code, out, stderr = run(t, "", "verify", "receipt", proofFile, "--entry", entryFile, "--key", pub, "--evidence-dir", evDir)
	if code != 0 || !strings.HasPrefix(out, fmt.Sprintf("valid: entry %d (", k)) {
		t.Fatalf("verify receipt of a tlog-proof: exit %d, stdout %q, stderr:\n%s", code, out, stderr)
	}
	writeFile(t, entryFile, rs[k+1].Entry)
	tpEv := t.TempDir()
	code, _, stderr = run(t, "", "verify", "receipt", proofFile, "--entry", entryFile, "--key", pub, "--evidence-dir", tpEv)
	wantFailure(t, code, stderr, tpEv, verify.EvidenceBadReceipt)
	code, _, stderr = run(t, "", "verify", "receipt", proofFile, "--key", pub, "--evidence-dir", tpEv)
	if code != exitUsageIO || !strings.Contains(stderr, "missing --entry") {
		t.Errorf("tlog-proof without --entry: exit %d: %s", code, stderr)
	}

	// verify checkpoint: the saved one, the live one, a flipped signature.
	code, out, stderr = run(t, "", "verify", "checkpoint", saved, "--key", pub, "--evidence-dir", evDir)
	if code != 0 || !strings.HasPrefix(out, "valid checkpoint: origin example.com/verify, size 20, root ") {
		t.Fatalf("verify checkpoint: exit %d, %q: %s", code, out, stderr)
	}
	if code, _, stderr = run(t, "", "verify", "checkpoint", srv.url, "--key", pub, "--evidence-dir", evDir); code != 0 {
		t.Fatalf("verify checkpoint URL: exit %d: %s", code, stderr)
	}
	savedNote, _ := os.ReadFile(saved)
	flipped := filepath.Join(dir, "flipped.txt")
	writeFile(t, flipped, flipSignature(t, savedNote))
	cpEv := t.TempDir()
	code, _, stderr = run(t, "", "verify", "checkpoint", flipped, "--key", pub, "--evidence-dir", cpEv)
	if ev := wantFailure(t, code, stderr, cpEv, verify.EvidenceBadSignature); ev.NewCheckpoint != string(flipSignature(t, savedNote)) {
		t.Errorf("evidence holds %q", ev.NewCheckpoint)
	}
	if len(evidenceIn(t, evDir)) != 0 {
		t.Errorf("passing checks wrote evidence to %s", evDir)
	}

	// verify inclusion from the log's tiles.
	const idx = 7
	code, out, stderr = run(t, "", "verify", "inclusion", "--log", srv.url, "--key", pub, "--index", fmt.Sprint(idx), "--json", "--evidence-dir", evDir)
	if code != 0 {
		t.Fatalf("verify inclusion: exit %d: %s", code, stderr)
	}
	var inc struct {
		Valid       bool
		Index, Size uint64
		Entry       json.RawMessage
	}
	if err := json.Unmarshal([]byte(out), &inc); err != nil {
		t.Fatal(err)
	}
	var entry bytes.Buffer
	json.Compact(&entry, inc.Entry)
	if !inc.Valid || inc.Index != idx || inc.Size != first || !bytes.Equal(entry.Bytes(), rs[idx].Entry) {
		t.Errorf("verify inclusion --json: %s\nwant entry %s", out, rs[idx].Entry)
	}
	writeFile(t, entryFile, append(rs[idx].Entry, '\n'))
	if code, _, stderr = run(t, "", "verify", "inclusion", "--log", srv.url, "--key", pub, "--index", fmt.Sprint(idx), "--entry", entryFile, "--evidence-dir", evDir); code != 0 {
		t.Errorf("verify inclusion --entry: exit %d: %s", code, stderr)
	}
	writeFile(t, entryFile, rs[idx+1].Entry)
	if code, _, stderr = run(t, "", "verify", "inclusion", "--log", srv.url, "--key", pub, "--index", fmt.Sprint(idx), "--entry", entryFile, "--evidence-dir", evDir); code != exitInvalid {
		t.Errorf("verify inclusion with another entry: exit %d: %s", code, stderr)
	}

	// verify consistency after more appends.
	if code, _, stderr = run(t, "", "append", "--log", srv.url, "--token-file", tokens, restFile); code != 0 {
		t.Fatalf("append: %s", stderr)
	}
	code, out, stderr = run(t, "", "verify", "consistency", "--log", srv.url, "--key", pub, "--old", saved, "--json", "--evidence-dir", evDir)
	if code != 0 {
		t.Fatalf("verify consistency: exit %d: %s", code, stderr)
	}
	var cons struct {
		Valid       bool
		OldSize     uint64 `json:"old_size"`
		Size        uint64 `json:"size"`
		ProofHashes int    `json:"proof_hashes"`
	}
	json.Unmarshal([]byte(out), &cons)
	if !cons.Valid || cons.OldSize != first || cons.Size != uint64(len(events)) || cons.ProofHashes == 0 {
		t.Errorf("verify consistency --json: %s, want old size %d, size %d", out, first, len(events))
	}
	// A checkpoint of size 20 the log signed for another tree: the log's
	// tree does not extend it.
	skey, _ := os.ReadFile(filepath.Join(logDir, "log.key"))
	signer, err := note.NewSigner(strings.TrimSpace(string(skey)))
	if err != nil {
		t.Fatal(err)
	}
	var root [32]byte
	root[0] = 1
	forged, _ := note.Sign(&note.Note{Text: string(verify.Checkpoint{Origin: "example.com/verify", Size: first, Root: root}.Marshal())}, signer)
	forgedFile := filepath.Join(dir, "forged.txt")
	writeFile(t, forgedFile, forged)
	consEv := t.TempDir()
	code, _, stderr = run(t, "", "verify", "consistency", "--log", srv.url, "--key", pub, "--old", forgedFile, "--evidence-dir", consEv)
	if ev := wantFailure(t, code, stderr, consEv, verify.EvidenceInconsistent); ev.OldCheckpoint != string(forged) || ev.OldSize != first || ev.NewSize != uint64(len(events)) {
		t.Errorf("inconsistent evidence: %+v", ev)
	}
	if len(evidenceIn(t, evDir)) != 0 {
		t.Errorf("passing checks wrote evidence to %s", evDir)
	}

	// Usage errors: no key.
	for _, args := range [][]string{
		{"verify", "checkpoint", saved},
		{"verify", "receipt", receipts},
		{"verify", "inclusion", "--log", srv.url, "--index", "0"},
		{"verify", "consistency", "--log", srv.url, "--old", saved},
		{"audit", "--log", srv.url, "--policy", auditPolicy(t), "--no-state"},
	} {
		code, out, stderr := run(t, "", args...)
		if code != exitUsageIO || out != "" || !strings.Contains(stderr, "missing --key") || !strings.Contains(stderr, "custody: hint: ") {
			t.Errorf("custody %v: exit %d, stdout %q, stderr %q; want exit 3, missing --key and a hint", args, code, out, stderr)
		}
	}
}

// TestVerifyTrustPolicy checks checkpoints and receipts against a C2SP
// tlog-policy requiring one witness: uncosigned fails with quorum (exit 2),
// cosigned by the witness passes.
func TestVerifyTrustPolicy(t *testing.T) {
	key := fixedKey(t, auditOrigin, 1)
	a, _ := loadAuditLog(t, key, "clean.jsonl")
	w := newWitness(t, "witness.example.org/w1", 9)
	dir := t.TempDir()
	policy := filepath.Join(dir, "trust.policy")
	writeFile(t, policy, []byte("# one witness must cosign\nlog "+key.vkey+"\nwitness w1 "+w.vkey+"\nquorum w1\n"))

	signed := httpGet(t, a.url+"/checkpoint")
	plain, cosigned := filepath.Join(dir, "plain.txt"), filepath.Join(dir, "cosigned.txt")
	writeFile(t, plain, signed)
	writeFile(t, cosigned, w.cosign(t, key, signed))

	evDir := t.TempDir()
	code, _, stderr := run(t, "", "verify", "checkpoint", plain, "--key", a.pub, "--trust", policy, "--evidence-dir", evDir)
	if ev := wantFailure(t, code, stderr, evDir, verify.EvidenceQuorum); ev.NewCheckpoint != string(signed) {
		t.Errorf("quorum evidence holds %q", ev.NewCheckpoint)
	}
	for _, args := range [][]string{
		{"--key", a.pub, "--trust", policy},
		{"--trust", policy}, // the policy's log key
	} {
		okDir := t.TempDir()
		code, out, stderr := run(t, "", append([]string{"verify", "checkpoint", cosigned, "--json", "--evidence-dir", okDir}, args...)...)
		if code != 0 {
			t.Fatalf("verify checkpoint %v of the cosigned checkpoint: exit %d: %s", args, code, stderr)
		}
		var got map[string]any
		json.Unmarshal([]byte(out), &got)
		cp := a.Checkpoint()
		if diff := cmp.Diff(map[string]any{"valid": true, "origin": auditOrigin, "size": float64(cp.Size),
			"root": base64.StdEncoding.EncodeToString(cp.Root[:]), "witnesses": []any{"w1"}}, got); diff != "" {
			t.Errorf("verify checkpoint --json (-want +got):\n%s", diff)
		}
	}
	// Without the policy the cosignature is ignored.
	if code, _, stderr := run(t, "", "verify", "checkpoint", cosigned, "--key", a.pub, "--evidence-dir", evDir); code != 0 {
		t.Errorf("verify checkpoint without --trust: exit %d: %s", code, stderr)
	}
	// A cosignature that does not verify is a bad signature, not a missing one.
	badCosig := filepath.Join(dir, "bad-cosig.txt")
	cs, _ := os.ReadFile(cosigned)
	i := bytes.LastIndex(cs, []byte("\n— "))
	writeFile(t, badCosig, append(append([]byte(nil), cs[:i+1]...), flipSignature(t, append([]byte("x\n\n"), cs[i+1:]...))[3:]...))
	badEv := t.TempDir()
	code, _, stderr = run(t, "", "verify", "checkpoint", badCosig, "--key", a.pub, "--trust", policy, "--evidence-dir", badEv)
	wantFailure(t, code, stderr, badEv, verify.EvidenceBadSignature)

	// A receipt's checkpoint must meet the quorum too. Adding a logged event
	// again returns its receipt against the current checkpoint.
	evs, _ := readAuditEvents(t, "clean.jsonl")
	r, err := a.Add(t.Context(), evs[4])
	if err != nil || r.Index != 4 {
		t.Fatalf("receipt of a logged event: index %d, %v", r.Index, err)
	}
	writeReceipt := func(r verify.Receipt) string {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), "receipt.json")
		writeFile(t, p, append(b, '\n'))
		return p
	}
	rEv := t.TempDir()
	code, _, stderr = run(t, "", "verify", "receipt", writeReceipt(r), "--trust", policy, "--evidence-dir", rEv)
	wantFailure(t, code, stderr, rEv, verify.EvidenceQuorum)
	cs, _ = os.ReadFile(cosigned)
	r.Checkpoint = string(cs)
	tp, err := verify.ParseTLogProof([]byte(r.TLogProof))
	if err != nil {
		t.Fatal(err)
	}
	tp.Checkpoint = cs
	r.TLogProof = string(tp.Marshal())
	code, out, stderr := run(t, "", "verify", "receipt", writeReceipt(r), "--trust", policy, "--evidence-dir", rEv)
	if code != 0 || !strings.HasPrefix(out, "valid: entry 4 (smp-us-19c2 stored) is in "+auditOrigin) {
		t.Errorf("verify receipt of a cosigned receipt: exit %d, %q: %s", code, out, stderr)
	}
}
