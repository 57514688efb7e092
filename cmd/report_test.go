package cmd

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/demo"
	"github.com/custodylog/custody/report"
	"github.com/google/go-cmp/cmp"
)

// reportRows returns the findings a report lists, as audit.Findings.
func reportRows(t *testing.T, path string) []audit.Finding {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := report.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	out := []audit.Finding{}
	for _, r := range p.Rows {
		out = append(out, audit.Finding{Index: r.Index, Sample: r.Sample, Kind: audit.Kind(r.Kind), Detail: r.Detail})
	}
	return out
}

// TestAuditReport audits the dirty data set with --report: the report lists
// exactly the findings of audit --json (also when the audit continues from
// its state); verify report passes (golden
// output, and --json); and after any one edit of a proof hash, an entry
// byte, the checkpoint's root line, a signature byte, or with a finding's
// proof removed, it exits 2 naming what does not verify.
func TestAuditReport(t *testing.T) {
	key := fixedKey(t, auditOrigin, 1)
	dirty, _ := loadAuditLog(t, key, "dirty.jsonl")
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.html")
	code, out, stderr := runAuditCLI(t, dirty.url, dirty.pub, "--no-state", "--json", "--report", path)
	if code != exitFailure || !strings.Contains(stderr, "custody: report written to "+path) {
		t.Fatalf("audit --report: exit %d, want 1; stderr:\n%s", code, stderr)
	}
	var rep struct {
		Size     uint64
		Root     string
		Findings []audit.Finding
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Findings) == 0 {
		t.Fatalf("audit --json: %v\n%s", err, out)
	}
	if diff := cmp.Diff(rep.Findings, reportRows(t, path)); diff != "" {
		t.Errorf("report rows (-audit --json +report):\n%s", diff)
	}

	// An audit that continues from its state reports the findings of the
	// earlier run too, each proved in the new tree.
	state := t.TempDir()
	if code, _, stderr := runAuditCLI(t, dirty.url, dirty.pub, "--state", state); code != exitFailure {
		t.Fatalf("audit --state: exit %d; stderr:\n%s", code, stderr)
	}
	again := filepath.Join(dir, "again.html")
	if code, _, stderr := runAuditCLI(t, dirty.url, dirty.pub, "--state", state, "--report", again); code != exitFailure {
		t.Fatalf("audit --state --report: exit %d; stderr:\n%s", code, stderr)
	}
	if diff := cmp.Diff(rep.Findings, reportRows(t, again)); diff != "" {
		t.Errorf("report rows of the continued audit (-audit --json +report):\n%s", diff)
	}
	if code, _, stderr := run(t, "", "verify", "report", again, "--key", dirty.pub); code != exitOK {
		t.Errorf("verify report of the continued audit: exit %d; stderr:\n%s", code, stderr)
	}

	code, out, stderr = run(t, "", "verify", "report", path, "--key", dirty.pub)
	if code != exitOK {
		t.Fatalf("verify report: exit %d; stderr:\n%s", code, stderr)
	}
	golden(t, "verify-report.txt", out)
	code, out, _ = run(t, "", "verify", "report", path, "--key", dirty.pub, "--json")
	var res report.Result
	if err := json.Unmarshal([]byte(out), &res); code != exitOK || err != nil || res.Rows != len(rep.Findings) || res.Size != rep.Size || res.Root != rep.Root {
		t.Errorf("verify report --json: exit %d, %v: %s", code, err, out)
	}

	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(orig)
	block := between(t, s, `<pre data-custody="proof" id="entry-2">`, "</pre>")
	hash := strings.Split(block, "\n")[2]
	cp := between(t, s, `<pre data-custody="checkpoint">`, "</pre>")
	cpLines := strings.Split(cp, "\n")
	var sig string
	for _, l := range cpLines {
		if strings.HasPrefix(l, "— ") && sig == "" {
			sig = l
		}
	}
	flip := func(line string, at int) string {
		c := "A"
		if line[at] == 'A' {
			c = "B"
		}
		return line[:at] + c + line[at+1:]
	}
	for _, tc := range []struct{ name, old, new, want string }{
		{"proof hash", hash, flip(hash, 7), "the inclusion proof of entry 2 does not lead to the root"},
		{"entry byte", block, strings.Replace(block, "ru-mow-1", "ru-mow-2", 1), "the inclusion proof of entry 2 does not lead to the root"},
		{"checkpoint root line", cp, strings.Replace(cp, cpLines[2], flip(cpLines[2], 3), 1), "the report's checkpoint does not verify with the log's key"},
		{"signature byte", sig, flip(sig, len(sig)-12), "the report's checkpoint does not verify with the log's key"},
		{"a finding's proof removed", block, "", "has no proof of its entry in the report"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			edited := filepath.Join(t.TempDir(), "edited.html")
			writeFile(t, edited, []byte(strings.Replace(s, tc.old, tc.new, 1)))
			code, out, stderr := run(t, "", "verify", "report", edited, "--key", dirty.pub)
			if code != exitInvalid || !strings.Contains(stderr, tc.want) || out != "" {
				t.Errorf("exit %d, want 2 with %q; stdout %q, stderr:\n%s", code, tc.want, out, stderr)
			}
		})
	}
	// Not a report, no file, no key: exit 3.
	notReport := filepath.Join(dir, "x.html")
	writeFile(t, notReport, []byte("<html></html>"))
	for _, args := range [][]string{{notReport, "--key", dirty.pub}, {filepath.Join(dir, "missing.html"), "--key", dirty.pub}, {path}} {
		if code, _, stderr := run(t, "", append([]string{"verify", "report"}, args...)...); code != exitUsageIO {
			t.Errorf("verify report %v: exit %d, want 3; stderr:\n%s", args, code, stderr)
		}
	}
}

// between returns s from the first start to the next end (both included).
func between(t *testing.T, s, start, end string) string {
	t.Helper()
	i := strings.Index(s, start)
	j := strings.Index(s[i+1:], end)
	if i < 0 || j < 0 {
		t.Fatalf("no %q … %q in the report", start, end)
	}
	return s[i : i+1+j+len(end)]
}

// TestAuditReportFailure: an audit with the wrong key fails verification
// (exit 2) and still writes the report, which says so and holds the
// evidence; verify report names the failure.
func TestAuditReportFailure(t *testing.T) {
	key := fixedKey(t, auditOrigin, 1)
	clean, _ := loadAuditLog(t, key, "clean.jsonl")
	other := fixedKey(t, auditOrigin, 2)
	pub := filepath.Join(t.TempDir(), "other.pub")
	writeFile(t, pub, []byte(other.vkey+"\n"))
	path := filepath.Join(t.TempDir(), "failed.html")
	code, _, stderr := run(t, "", "audit", "--log", clean.url, "--key", pub, "--policy", auditPolicy(t), "--state", t.TempDir(), "--report", path)
	if code != exitInvalid || !strings.Contains(stderr, "custody: report written to "+path) {
		t.Fatalf("audit with another key: exit %d, want 2 and a report; stderr:\n%s", code, stderr)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "The log FAILED verification") || !strings.Contains(string(b), `&#34;kind&#34;: &#34;bad-signature&#34;`) {
		t.Errorf("the report does not state the failure and its evidence")
	}
	code, out, stderr := run(t, "", "verify", "report", path, "--key", pub)
	if code != exitOK || !strings.Contains(out, "report of a FAILED audit of log "+auditOrigin+": the log failed verification (bad-signature)") {
		t.Errorf("verify report of the failed audit: exit %d\n%s%s", code, out, stderr)
	}
}

// TestAuditReportDemo runs the --violations demo (a witness cosigns every
// checkpoint) and audits it with --report and --trust: the report names
// every finding of audit --json and lists the witness's cosignature as
// verified; verify report passes with the trust policy, and names the
// witness.
func TestAuditReportDemo(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := demo.Run(ctx, demo.Options{Dir: filepath.Join(t.TempDir(), "demo"), Listen: "127.0.0.1:0", Events: 300, Violations: true, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		d.Wait(context.Background())
	}()
	pub, err := os.ReadFile(d.PubFile)
	if err != nil {
		t.Fatal(err)
	}
	trust := filepath.Join(d.Dir, "trust.policy")
	writeFile(t, trust, []byte("log "+strings.TrimSpace(string(pub))+"\nwitness w1 "+d.WitnessKey+"\nquorum w1\n"))
	path := filepath.Join(t.TempDir(), "demo.html")
	code, out, stderr := run(t, "", "audit", "--log", d.Base, "--key", d.PubFile, "--trust", trust, "--policy", d.PolicyFile, "--no-state", "--json", "--report", path)
	if code != exitFailure {
		t.Fatalf("audit of the violations demo: exit %d, want 1; stderr:\n%s", code, stderr)
	}
	var rep struct{ Findings []audit.Finding }
	if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Findings) == 0 {
		t.Fatal("the violations demo has no findings")
	}
	if diff := cmp.Diff(rep.Findings, reportRows(t, path)); diff != "" {
		t.Errorf("report rows (-audit --json +report):\n%s", diff)
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), "<td>witness cosignature (w1)</td>") || !strings.Contains(string(b), "<td>verified</td></tr>") {
		t.Errorf("the witness's cosignature is not listed as verified")
	}
	code, out, stderr = run(t, "", "verify", "report", path, "--key", d.PubFile, "--trust", trust)
	if code != exitOK || !strings.Contains(out, "cosigned by: w1") {
		t.Errorf("verify report --trust: exit %d\n%s%s", code, out, stderr)
	}
}
