package report

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/verify"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/mod/sumdb/note"
)

// TestWriteVerify writes the report of the dirty audit data set and checks
// it: every finding is a row (index, kind, sample and detail exactly), every
// finding's entry has its proof, the checkpoint is the one audited, and
// Verify passes with and without the witness's trust policy.
func TestWriteVerify(t *testing.T) {
	entries, fs := auditData(t)
	m := newMemLog(t, entries)
	in := m.input(t, fs)
	file := write(t, in)

	p, err := Parse(file)
	if err != nil {
		t.Fatal(err)
	}
	var rows []audit.Finding
	for _, r := range p.Rows {
		rows = append(rows, audit.Finding{Index: r.Index, Sample: r.Sample, Kind: audit.Kind(r.Kind), Detail: r.Detail})
	}
	if diff := cmp.Diff(fs, rows); diff != "" {
		t.Errorf("finding rows (-audit +report):\n%s", diff)
	}
	if !bytes.Equal(p.Checkpoint, in.Checkpoint) || p.Status != StatusFindings || p.Findings != fmt.Sprint(len(fs)) || p.Key != m.vkey {
		t.Errorf("parsed status %q, findings %q, key %q, checkpoint\n%s", p.Status, p.Findings, p.Key, p.Checkpoint)
	}
	want := map[uint64]bool{}
	for _, f := range fs {
		want[f.Index] = true
	}
	for _, pr := range p.Proofs {
		if !want[pr.Index] || !bytes.Equal(pr.Entry, entries[pr.Index]) {
			t.Errorf("proof of entry %d: entry %q", pr.Index, pr.Entry)
		}
		delete(want, pr.Index)
	}
	if len(want) != 0 {
		t.Errorf("no proofs of entries %v", want)
	}

	res, err := Verify(file, testOrigin, note.VerifierList(m.logV), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != len(fs) || res.Findings != uint64(len(fs)) || len(res.Entries) != len(p.Proofs) || res.Size != uint64(len(entries)) {
		t.Errorf("result: %+v", res)
	}
	tp := trustPolicy(t, m, "w1")
	res, err = Verify(file, testOrigin, note.VerifierList(m.logV), tp)
	if err != nil {
		t.Fatal(err)
	}
	if !slicesEqual(res.Witnesses, []string{"w1"}) {
		t.Errorf("witnesses %v, want [w1]", res.Witnesses)
	}
	// The cosignature is listed, named and verified, with its time.
	if s := string(file); !strings.Contains(s, `<td>witness cosignature (w1)</td><td class="mono">2026-11-02T09:00:00Z</td><td>verified</td>`) {
		t.Errorf("the witness's cosignature is not listed as verified with its time:\n%s", between(t, s, "Signatures on the checkpoint", "</table>"))
	}
	// Another key of the same name does not verify it.
	_, other, _ := note.GenerateKey(fixedReader(8), testOrigin)
	ov, _ := note.NewVerifier(other)
	if _, err := Verify(file, testOrigin, note.VerifierList(ov), nil); !isInvalid(err, "checkpoint does not verify") {
		t.Errorf("verified with another key: %v", err)
	}
}

func slicesEqual(a, b []string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") }

// trustPolicy is a C2SP tlog-policy with m's log and witness, quorum q.
func trustPolicy(t testing.TB, m *memLog, q string) *verify.TrustPolicy {
	t.Helper()
	tp, err := verify.ParseTrustPolicy([]byte(trustPolicyText(m, q)))
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

func trustPolicyText(m *memLog, q string) string {
	return "log " + m.vkey + "\nwitness w1 " + witnessVKey(m) + "\nquorum " + q + "\n"
}

func witnessVKey(m *memLog) string { return m.wvkey }

func isInvalid(err error, substr string) bool {
	var e *Error
	return errors.As(err, &e) && e.Problem == Invalid && e.ExitCode() == 2 && strings.Contains(err.Error(), substr)
}

// TestTamper edits one thing in a report at a time: Verify fails, naming
// what does not verify.
func TestTamper(t *testing.T) {
	entries, fs := auditData(t)
	m := newMemLog(t, entries)
	s := string(write(t, m.input(t, fs)))
	block := between(t, s, `<pre data-custody="proof" id="entry-2">`, `</pre>`)
	cpBlock := between(t, s, `<pre data-custody="checkpoint">`, `</pre>`)
	row := between(t, s, `<tr data-custody="finding"><td>5</td>`, `</tr>`)
	hashLine := strings.Split(block, "\n")[2]
	cpLines := strings.Split(cpBlock, "\n")
	sigLine := cpLines[4]
	flip := func(line string, at int) string {
		c := byte('A')
		if line[at] == 'A' {
			c = 'B'
		}
		return line[:at] + string(c) + line[at+1:]
	}
	tests := []struct {
		name, old, new, want string
	}{
		{"proof hash", hashLine, flip(hashLine, 10), "inclusion proof of entry 2 does not lead"},
		{"entry byte", block, strings.Replace(block, "ru-mow-1", "ru-mow-2", 1), "inclusion proof of entry 2 does not lead"},
		{"checkpoint root line", cpBlock, strings.Replace(cpBlock, cpLines[2], flip(cpLines[2], 5), 1), "checkpoint does not verify"},
		{"checkpoint size line", cpBlock, strings.Replace(cpBlock, "\n27\n", "\n28\n", 1), "checkpoint does not verify"},
		{"signature byte", sigLine, flip(sigLine, len(sigLine)-10), "checkpoint does not verify"},
		{"a finding's proof removed", block, "", "has no proof of its entry"},
		{"a finding row's sample", row, strings.Replace(row, "smp-us-2222", "smp-us-2223", 1), `names sample "smp-us-2223" at entry 5`},
		{"a finding row removed", row, "", "finding rows"},
		{"the root shown", `<span data-custody="root">`, `<span data-custody="root">X`, "shows origin"},
		{"the size shown", `<span data-custody="size">27`, `<span data-custody="size">26`, "shows origin"},
		{"the key shown", `<span data-custody="key">` + testOrigin, `<span data-custody="key">example.com/other`, "not the key it was verified with"},
		{"the number of findings", fmt.Sprintf(`<span data-custody="findings">%d<`, len(fs)), fmt.Sprintf(`<span data-custody="findings">%d<`, len(fs)-1), "finding rows"},
		{"a proof's id", `id="entry-2"`, `id="entry-3"`, "is not entry-2"},
		{"a proof hash's base64", hashLine, hashLine[:43] + "!", "proof hash 0"},
		{"a second checkpoint", cpBlock, cpBlock + cpBlock, "a second checkpoint"},
		{"markup in a proof", block, strings.Replace(block, "ru-mow-1", "<b>ru-mow-1</b>", 1), "markup"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(s, tc.old) || tc.old == tc.new {
				t.Fatalf("edit %q not possible", tc.old)
			}
			edited := strings.Replace(s, tc.old, tc.new, 1)
			_, err := Verify([]byte(edited), testOrigin, note.VerifierList(m.logV), nil)
			if !isInvalid(err, tc.want) {
				t.Fatalf("Verify: %v; want an Invalid error containing %q", err, tc.want)
			}
		})
	}
	// A witness cosignature changed: ignored without a trust policy (an
	// unknown key), caught with one.
	cosig := cpLines[5]
	edited := strings.Replace(s, cosig, flip(cosig, len(cosig)-10), 1)
	if _, err := Verify([]byte(edited), testOrigin, note.VerifierList(m.logV), nil); err != nil {
		t.Errorf("without trust, a changed cosignature: %v", err)
	}
	if _, err := Verify([]byte(edited), testOrigin, note.VerifierList(m.logV), trustPolicy(t, m, "w1")); !isInvalid(err, "checkpoint") {
		t.Errorf("with trust, a changed cosignature: %v", err)
	}
}

// TestNotReport: input that is not a report is NotReport (exit 3), whatever
// it holds.
func TestNotReport(t *testing.T) {
	for _, in := range []string{"", "<html><body>hello</body></html>", `<pre data-custody="checkpoint">x</pre>`, `<span data-custody="format">custody-report/v2</span>`} {
		_, err := Verify([]byte(in), testOrigin, nil, nil)
		var e *Error
		if !errors.As(err, &e) || e.Problem != NotReport || e.ExitCode() != 3 || !errors.Is(err, ErrNotReport) {
			t.Errorf("Verify(%q): %v, want NotReport", in, err)
		}
	}
}

// TestMaxProofs: a report lists at most MaxProofs findings, says how many
// more there are, and verifies.
func TestMaxProofs(t *testing.T) {
	entries, fs := auditData(t)
	m := newMemLog(t, entries)
	in := m.input(t, fs)
	in.MaxProofs = 5
	file := write(t, in)
	res, err := Verify(file, testOrigin, note.VerifierList(m.logV), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != 5 || res.Findings != uint64(len(fs)) {
		t.Errorf("rows %d of %d, want 5 of %d", res.Rows, res.Findings, len(fs))
	}
	if want := fmt.Sprintf("%d more are not listed", len(fs)-5); !strings.Contains(string(file), want) {
		t.Errorf("the report does not say %q", want)
	}
	var out bytes.Buffer
	WriteResult(&out, res)
	if !strings.Contains(out.String(), fmt.Sprintf("5 of %d findings listed", len(fs))) {
		t.Errorf("WriteResult:\n%s", out.String())
	}
}

// TestTotalFindings: a report of some of an audit's findings (a live
// log's newest) says how many there are in all, and verifies.
func TestTotalFindings(t *testing.T) {
	entries, fs := auditData(t)
	m := newMemLog(t, entries)
	in := m.input(t, fs[len(fs)-3:])
	in.TotalFindings = 100
	file := write(t, in)
	res, err := Verify(file, testOrigin, note.VerifierList(m.logV), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != 3 || res.Findings != 100 {
		t.Errorf("rows %d of %d, want 3 of 100", res.Rows, res.Findings)
	}
	if !strings.Contains(string(file), "3 are listed, in entry order, with their entries' inclusion proofs; 97 more are not listed") {
		t.Errorf("the report does not say 3 of 100 are listed")
	}
}

// TestClean: a report of an audit without findings verifies and says so.
func TestClean(t *testing.T) {
	entries, _ := auditData(t)
	m := newMemLog(t, entries)
	in := m.input(t, nil)
	in.Audit.Findings = []audit.Finding{}
	res, err := Verify(write(t, in), testOrigin, note.VerifierList(m.logV), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != StatusClean || res.Rows != 0 || len(res.Entries) != 0 {
		t.Errorf("result %+v", res)
	}
}

// lyingSource serves the wrong entry for one index.
type lyingSource struct {
	*memLog
	lie uint64
}

func (l lyingSource) Prove(ctx context.Context, indices []uint64, fn func(uint64, []byte, []verify.Hash) error) error {
	return l.memLog.Prove(ctx, indices, func(i uint64, e []byte, p []verify.Hash) error {
		if i == l.lie {
			e = l.entries[i+1]
		}
		return fn(i, e, p)
	})
}

// TestWriteChecksProofs: Write refuses a source whose proof does not
// verify, and findings whose sample is not their entry's.
func TestWriteChecksProofs(t *testing.T) {
	entries, fs := auditData(t)
	m := newMemLog(t, entries)
	in := m.input(t, fs)
	in.Proofs = lyingSource{m, fs[0].Index}
	if err := Write(context.Background(), &bytes.Buffer{}, in); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Errorf("Write with a lying source: %v", err)
	}
	in = m.input(t, append([]audit.Finding{{Index: fs[0].Index, Sample: "smp-other", Kind: audit.KindReroute, Detail: "x"}}, fs[1:]...))
	if err := Write(context.Background(), &bytes.Buffer{}, in); err == nil || !strings.Contains(err.Error(), `its finding names "smp-other"`) {
		t.Errorf("Write with a finding of another sample: %v", err)
	}
}

// TestFailureReport: the report of a failed audit holds the evidence and
// the failure's text, and Verify reports it as failed.
func TestFailureReport(t *testing.T) {
	entries, _ := auditData(t)
	m := newMemLog(t, entries)
	cpNote := m.checkpoint(t)
	idx := uint64(3)
	ve := &verify.VerificationError{Evidence: verify.Evidence{Kind: verify.EvidenceRootMismatch, What: "the entries do not hash to the signed root",
		Origin: testOrigin, NewCheckpoint: string(cpNote), NewSize: uint64(len(entries)), Index: &idx}}
	in := Input{LogKey: m.vkey, Checkpoint: cpNote, Failure: fmt.Errorf("audit: %w", ve), Version: "test"}
	file := write(t, in)
	if !strings.Contains(string(file), "The log FAILED verification: audit: log example.com/custody-report-test failed verification (root-mismatch)") {
		t.Errorf("the failure is not stated")
	}
	res, err := Verify(file, testOrigin, note.VerifierList(m.logV), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != StatusFailed || res.Failure == nil || res.Failure.Kind != verify.EvidenceRootMismatch || res.Size != uint64(len(entries)) {
		t.Errorf("result %+v", res)
	}
	var out bytes.Buffer
	WriteResult(&out, res)
	if !strings.Contains(out.String(), "FAILED audit") {
		t.Errorf("WriteResult:\n%s", out.String())
	}
}

// TestMarshalProof: a proof block parses back to itself, printable
// entries verbatim, others as base64.
func TestMarshalProof(t *testing.T) {
	for _, p := range []Proof{
		{Index: 0, Entry: []byte(`{"a":"b"}`)},
		{Index: 12345, Entry: []byte("é\n\x00"), Hashes: []verify.Hash{{1}, {2}}},
	} {
		b := MarshalProof(p)
		got, err := parseProof(string(b))
		if err != nil {
			t.Fatalf("%q: %v", b, err)
		}
		if !bytes.Equal(MarshalProof(got), b) {
			t.Errorf("%q parses to %q", b, MarshalProof(got))
		}
	}
	if b := MarshalProof(Proof{Entry: []byte("é")}); !bytes.Contains(b, []byte("entry-base64 ")) {
		t.Errorf("a non-ASCII entry is not base64: %q", b)
	}
}

// TestWriteFile writes a report file.
func TestWriteFile(t *testing.T) {
	entries, fs := auditData(t)
	m := newMemLog(t, entries)
	path := t.TempDir() + "/r.html"
	if err := WriteFile(context.Background(), path, m.input(t, fs)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(b, testOrigin, note.VerifierList(m.logV), nil); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkWrite times Write of a report of DefaultMaxProofs findings from
// a source in memory: the rendering and checking, without the network.
func BenchmarkWrite(b *testing.B) {
	entries, fs := synthetic(b, 4*DefaultMaxProofs)
	m := newMemLog(b, entries)
	in := m.input(b, fs)
	var size int
	for b.Loop() {
		var buf bytes.Buffer
		if err := Write(context.Background(), &buf, in); err != nil {
			b.Fatal(err)
		}
		size = buf.Len()
	}
	b.ReportMetric(float64(size), "bytes")
}
