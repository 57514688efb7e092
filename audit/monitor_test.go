package audit

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custodylog/custody/verify"
)

// exampleAuditor is an Auditor of the example log (exampleFiles).
func exampleAuditor(t *testing.T, stateDir string) *Auditor {
	t.Helper()
	files := exampleFiles(t)
	pol, err := LoadPolicy("../testdata/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cl := verify.NewClient(memFiles(files), exampleOrigin, mustVerifiers(t, strings.TrimSpace(string(files["log.pub"]))), nil)
	return &Auditor{Client: cl, Policy: pol, StateDir: stateDir}
}

func TestAuditorState(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	a := exampleAuditor(t, dir)
	rep, err := a.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Size != exampleEntries || rep.From != 0 || len(rep.New) != len(rep.Findings) {
		t.Fatalf("first run: size %d from %d, %d new of %d findings", rep.Size, rep.From, len(rep.New), len(rep.Findings))
	}
	st, err := ReadState(dir)
	if err != nil || st == nil {
		t.Fatalf("state after the first run: %v, %v", st, err)
	}
	rep, err = a.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.From != exampleEntries || len(rep.New) != 0 {
		t.Errorf("second run: from %d, %d new findings; want %d and none", rep.From, len(rep.New), exampleEntries)
	}

	// Without a state directory nothing is read or written.
	a.StateDir = ""
	if rep, err = a.Run(context.Background()); err != nil || rep.From != 0 {
		t.Errorf("run without state: from %d, %v", rep.From, err)
	}

	// A state that does not read is a StateError, not a verdict.
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, StateFile), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	a.StateDir = bad
	_, err = a.Run(context.Background())
	var se *StateError
	if !errors.As(err, &se) || se.Write || se.Dir != bad {
		t.Errorf("unreadable state: %v, want a read StateError", err)
	} else if !strings.HasPrefix(se.Hint(), "move the state directory away") || se.ExitCode() != 3 {
		t.Errorf("unreadable state: hint %q, exit code %d", se.Hint(), se.ExitCode())
	}
	if _, ok := verify.IsVerificationError(err); ok {
		t.Errorf("unreadable state reported as a verification failure: %v", err)
	}

	// A state that cannot be written is a write StateError: a dangling
	// link reads as no state, and MkdirAll refuses it.
	link := filepath.Join(t.TempDir(), "state")
	if err := os.Symlink(filepath.Join(t.TempDir(), "gone", "state"), link); err != nil {
		t.Fatal(err)
	}
	a.StateDir = link
	_, err = a.Run(context.Background())
	if !errors.As(err, &se) || !se.Write || !strings.HasPrefix(err.Error(), "writing audit state: ") {
		t.Errorf("unwritable state: %v, want a write StateError", err)
	} else if se.Hint() != "check that --state is writable" {
		t.Errorf("unwritable state: hint %q", se.Hint())
	}
}

func TestMonitorReportsWhatIsNew(t *testing.T) {
	f1 := Finding{Index: 1, Sample: "s-1", Kind: KindReroute, Detail: "one"}
	f2 := Finding{Index: 2, Sample: "s-2", Kind: KindContinuity, Detail: "two \x1b[31m"}
	down := errors.New("log unreachable")
	ve := &verify.VerificationError{Evidence: verify.Evidence{Kind: verify.EvidenceRollback, What: "went back", Origin: "o", NewSize: 7}}
	rounds := []func() (*AuditReport, error){
		func() (*AuditReport, error) { return &AuditReport{Origin: "o", Size: 3, New: []Finding{f1, f2}}, nil },
		func() (*AuditReport, error) { return nil, down },
		func() (*AuditReport, error) { return nil, down }, // the same failure again: not reported
		func() (*AuditReport, error) { return nil, ve },
		func() (*AuditReport, error) { return &AuditReport{Origin: "o", Size: 4}, nil },
		func() (*AuditReport, error) { return nil, ve }, // after a success: reported again
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got []string
	ends, n := 0, 0
	Monitor(ctx, MonitorConfig{
		Every: time.Nanosecond,
		Round: func(context.Context) (*AuditReport, error) {
			if n == len(rounds) {
				cancel()
				return nil, errors.New("interrupted: not reported")
			}
			n++
			return rounds[n-1]()
		},
		Report: func(ev MonitorEvent) {
			b, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			ts := ev.Time.UTC().Format(time.RFC3339)
			if !strings.HasPrefix(ev.String(), ts+" ") || !strings.Contains(string(b), `"time":"`+ts+`"`) {
				t.Errorf("event %s / %s does not start with its time %s", ev, b, ts)
			}
			got = append(got, strings.TrimPrefix(ev.String(), ts+" ")+" | "+strings.Replace(string(b), ts, "T", 1))
		},
		EndRound: func() { ends++ },
	})
	js := func(m map[string]any) string {
		m["time"] = "T"
		b, _ := json.Marshal(m)
		return string(b)
	}
	evidence := js(map[string]any{"kind": "failure", "error": ve.Error(), "origin": "o", "size": 7, "evidence": ve.Evidence})
	want := []string{
		"finding: " + f1.String() + " | " + js(map[string]any{"kind": "finding", "origin": "o", "size": 3, "finding": f1}),
		"finding: " + strings.ReplaceAll(f2.String(), "\x1b", `\x1b`) + " | " + js(map[string]any{"kind": "finding", "origin": "o", "size": 3, "finding": f2}),
		"failure: log unreachable | " + js(map[string]any{"kind": "failure", "error": "log unreachable"}),
		"failure: " + ve.Error() + " | " + evidence,
		"failure: " + ve.Error() + " | " + evidence,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("reported:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if ends != len(rounds) {
		t.Errorf("EndRound called %d times, want %d (not after the interrupted round)", ends, len(rounds))
	}
}
