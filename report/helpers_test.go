package report

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custodylog/custody/activity"
	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// memLog is a log in memory: its entries and their stored hashes (x/mod's
// tlog, independent of custody's tree code), signed by a fixed key and
// cosigned by a fixed witness.
type memLog struct {
	entries [][]byte
	hashes  []tlog.Hash
	signer  note.Signer
	vkey    string
	logV    note.Verifier
	witness Witness
	wsigner note.Signer
	wvkey   string
}

const testOrigin = "example.com/custody-report-test"

// fixedReader is an endless stream of one byte, for deterministic keys.
type fixedReader byte

func (r fixedReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

func newMemLog(t testing.TB, entries [][]byte) *memLog {
	t.Helper()
	skey, vkey, err := note.GenerateKey(fixedReader(7), testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	m := &memLog{entries: entries, vkey: vkey}
	if m.signer, err = note.NewSigner(skey); err != nil {
		t.Fatal(err)
	}
	if m.logV, err = note.NewVerifier(vkey); err != nil {
		t.Fatal(err)
	}
	wkey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, ed25519.SeedSize))
	m.wsigner = verify.NewCosignatureSigner("witness.example/w1", wkey, func() time.Time { return time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC) })
	m.wvkey = verify.CosignatureVKey("witness.example/w1", wkey.Public().(ed25519.PublicKey))
	wv, err := verify.NewCosignatureVerifier(m.wvkey)
	if err != nil {
		t.Fatal(err)
	}
	m.witness = Witness{Name: "w1", Verifier: wv}
	for i, e := range entries {
		hs, err := tlog.StoredHashes(int64(i), e, m)
		if err != nil {
			t.Fatal(err)
		}
		m.hashes = append(m.hashes, hs...)
	}
	return m
}

// ReadHashes implements tlog.HashReader.
func (m *memLog) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = m.hashes[x]
	}
	return out, nil
}

func (m *memLog) root(t testing.TB) tlog.Hash {
	t.Helper()
	r, err := tlog.TreeHash(int64(len(m.entries)), m)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// checkpoint is the log's signed checkpoint, cosigned by the witness.
func (m *memLog) checkpoint(t testing.TB) []byte {
	t.Helper()
	text := verify.Checkpoint{Origin: testOrigin, Size: uint64(len(m.entries)), Root: m.root(t)}.Marshal()
	b, err := note.Sign(&note.Note{Text: string(text)}, m.signer, m.wsigner)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Prove implements ProofSource from the hashes in memory.
func (m *memLog) Prove(_ context.Context, indices []uint64, fn func(uint64, []byte, []verify.Hash) error) error {
	for _, i := range indices {
		p, err := tlog.ProveRecord(int64(len(m.entries)), int64(i), m)
		if err != nil {
			return err
		}
		proof := make([]verify.Hash, len(p))
		for k, h := range p {
			proof[k] = verify.Hash(h)
		}
		if err := fn(i, m.entries[i], proof); err != nil {
			return err
		}
	}
	return nil
}

// auditData reads the audit data set shared with cmd's tests: the dirty
// log's entries (canonical, logged) and the findings an audit reports.
func auditData(t testing.TB) ([][]byte, []audit.Finding) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "audit", "dirty.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	entries := bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
	fb, err := os.ReadFile(filepath.Join("..", "testdata", "audit", "dirty.findings.json"))
	if err != nil {
		t.Fatal(err)
	}
	var fs []audit.Finding
	if err := json.Unmarshal(fb, &fs); err != nil {
		t.Fatal(err)
	}
	return entries, fs
}

// synthetic returns n events of n/4 samples, and a reroute finding for
// every fourth one: a long report.
func synthetic(t testing.TB, n int) ([][]byte, []audit.Finding) {
	t.Helper()
	var entries [][]byte
	var fs []audit.Finding
	base := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	locs := []string{"de-fra-1", "ch-zrh-1", "ru-mow-1", "us-ash-1"}
	for i := range n {
		ev := record.Event{Sample: fmt.Sprintf("smp-eu-%06d", i/4), Action: record.Transferred, Location: locs[i%2], To: locs[2+i%2],
			Region: "EU", Actor: "mover", Time: base.Add(time.Duration(i) * 37 * time.Minute), Logged: base.Add(time.Duration(i)*37*time.Minute + time.Minute)}
		e := ev.Canonical()
		if _, err := record.DecodeEntry(e); err != nil {
			t.Fatal(err)
		}
		entries = append(entries, e)
		if i%4 == 1 {
			fs = append(fs, audit.Finding{Index: uint64(i), Sample: ev.Sample, Kind: audit.KindReroute,
				Detail: fmt.Sprintf("transferred to %s (RU), not allowed for region EU (allowed: de-fra-1, ch-zrh-1)", ev.To)})
		}
	}
	return entries, fs
}

// input is the report Input of an audit of m with findings fs, as of a
// fixed time.
func (m *memLog) input(t testing.TB, fs []audit.Finding) Input {
	t.Helper()
	cpNote := m.checkpoint(t)
	root := m.root(t)
	counts := map[string]map[string]uint64{}
	act := activity.New()
	for i, e := range m.entries {
		ev, err := record.DecodeEntry(e)
		if err != nil {
			t.Fatal(err)
		}
		if counts[ev.Region] == nil {
			counts[ev.Region] = map[string]uint64{}
		}
		counts[ev.Region][ev.Location]++
		act.Add(uint64(i), &ev)
	}
	rep := &audit.AuditReport{Origin: testOrigin, Size: uint64(len(m.entries)), Root: base64.StdEncoding.EncodeToString(root[:]),
		Findings: fs, Counts: counts, Checkpoint: string(cpNote), SampleIndex: audit.SampleIndexNotCommitted}
	return Input{
		LogKey: m.vkey, Checkpoint: cpNote, Audit: rep, Witnesses: []Witness{m.witness},
		PolicyName: "policy.yaml", PolicySHA256: [32]byte{1, 2, 3}, Version: "v0.0.0-test", Time: time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC),
		Activity: act, Proofs: m,
	}
}

// write returns the report of in.
func write(t testing.TB, in Input) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Write(context.Background(), &b, in); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// between returns the text of s from the first occurrence of start to the
// next occurrence of end after it (both included).
func between(t testing.TB, s, start, end string) string {
	t.Helper()
	i := strings.Index(s, start)
	if i < 0 {
		t.Fatalf("%q not in the report", start)
	}
	j := strings.Index(s[i:], end)
	if j < 0 {
		t.Fatalf("%q not after %q in the report", end, start)
	}
	return s[i : i+j+len(end)]
}
