package report

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/internal/fuzzseeds"
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

// FuzzParse runs Parse, and Verify, on arbitrary files: they never panic;
// every proof block Parse accepts marshals back to a block it parses to the
// same proof; a report Verify accepts is one Parse accepts.
func FuzzParse(f *testing.F) {
	entries, fs := auditData(f)
	m := newMemLog(f, entries)
	in := m.input(f, fs)
	in.MaxProofs, in.Activity = 2, nil
	f.Add(write(f, in)) // testdata/fuzz/FuzzParse has smaller ones
	vs := note.VerifierList(m.logV)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, perr := Parse(b)
		if perr == nil {
			for _, pr := range p.Proofs {
				again, err := parseProof(string(MarshalProof(pr)))
				if err != nil || !bytes.Equal(MarshalProof(again), MarshalProof(pr)) {
					t.Fatalf("proof of entry %d does not round-trip: %v", pr.Index, err)
				}
			}
		}
		if _, err := Verify(b, testOrigin, vs, nil); err == nil && perr != nil {
			t.Fatalf("Verify accepts what Parse rejects: %v", perr)
		}
	})
}

// TestFuzzParseSeeds checks the seeds in testdata/fuzz/FuzzParse: those
// named valid-* parse, the others do not.
func TestFuzzParseSeeds(t *testing.T) {
	fuzzseeds.Check(t, map[string]func(args []any) error{
		"FuzzParse": func(a []any) error { _, err := Parse(a[0].([]byte)); return err },
	})
}

// TestWriteFuzzSeeds rewrites testdata/fuzz/FuzzParse when
// CUSTODY_WRITE_SEEDS=1.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("CUSTODY_WRITE_SEEDS") != "1" {
		t.Skip("set CUSTODY_WRITE_SEEDS=1 to rewrite the seeds")
	}
	entries, fs := auditData(t)
	m := newMemLog(t, entries)
	in := m.input(t, fs)
	in.MaxProofs, in.Activity = 2, nil // small seeds fuzz faster
	page := string(write(t, in))
	valid := minimal(t, page) // the data elements only: small seeds fuzz faster
	clean := m.input(t, nil)
	clean.Audit.Findings, clean.Activity = []audit.Finding{}, nil
	idx := uint64(1)
	failed := Input{LogKey: m.vkey, Version: "test", Failure: &verify.VerificationError{Evidence: verify.Evidence{Kind: verify.EvidenceBadSignature, What: "bad", Origin: testOrigin, Index: &idx}}}
	block := between(t, valid, `<pre data-custody="proof" id="entry-2">`, `</pre>`)
	seeds := map[string]string{
		"valid-report":       valid,
		"valid-report-page":  page,
		"valid-clean":        minimal(t, string(write(t, clean))),
		"valid-failed":       minimal(t, string(write(t, failed))),
		"empty":              "",
		"not-a-report":       "<!DOCTYPE html><html><body><pre>custody-report/v1</pre></body></html>",
		"format-not-first":   strings.Replace(valid, `<span data-custody="format">custody-report/v1</span>`, "", 1) + `<span data-custody="format">custody-report/v1</span>`,
		"unknown-element":    strings.Replace(valid, `data-custody="status"`, `data-custody="statuz"`, 1),
		"markup-in-proof":    strings.Replace(valid, block, strings.Replace(block, "index 2", "index <i>2</i>", 1), 1),
		"bad-proof-hash":     strings.Replace(valid, block, strings.Replace(block, "=\n", "!\n", 1), 1),
		"second-status":      strings.Replace(valid, `<span data-custody="status">`, `<span data-custody="status">findings</span><span data-custody="status">`, 1),
		"unclosed-pre":       valid[:strings.Index(valid, block)+len(block)-len("</pre>")],
		"other-attribute":    strings.Replace(valid, `<pre data-custody="checkpoint">`, `<pre data-custody="checkpoint" class="x">`, 1),
		"bad-row-index":      strings.Replace(valid, `<tr data-custody="finding"><td>2</td>`, `<tr data-custody="finding"><td>02</td>`, 1),
		"entity":             strings.Replace(valid, block, strings.Replace(block, "&#34;", "&#x22;", 1), 1),
		"no-checkpoint":      strings.Replace(valid, `data-custody="checkpoint"`, `class="checkpoint"`, 1),
		"failed-with-proofs": strings.Replace(valid, `<span data-custody="status">findings`, `<span data-custody="status">failed`, 1),
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzParse")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, s := range seeds {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// minimal returns the data elements of a report, one a line, without the
// rest of the page: what Parse reads.
func minimal(t *testing.T, page string) string {
	t.Helper()
	els, err := elements([]byte(page))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range els {
		b.WriteString("<" + e.tag + ` data-custody="` + e.name + `"`)
		if e.id != "" {
			b.WriteString(` id="` + e.id + `"`)
		}
		b.WriteString(">" + e.content + "</" + e.tag + ">\n")
	}
	return b.String()
}
