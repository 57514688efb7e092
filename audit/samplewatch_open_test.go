package audit

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/custodylog/custody/verify"
)

// TestOpenSampleWatch: the samples of the flags and the file are watched,
// the state directory defaults to the origin's, the policy is loaded; each
// mistake in the options is an error with a fix and exit 3, found before
// the log is opened; the opener's error is returned as it is.
func TestOpenSampleWatch(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	samples := write("samples", "# watched\nsmp-2\n\nsmp-3\n")
	badSamples := write("bad-samples", "smp-2\nsmp 3\n")
	badPolicy := write("policy.yaml", "regions: [\n")
	const url = "http://127.0.0.1:1"
	opened := 0
	open := func(log string) (*verify.Client, error) {
		opened++
		if log != url {
			t.Errorf("opened %q, want %q", log, url)
		}
		return verify.NewClient(nil, "log.example.com/x", nil, nil), nil
	}
	w, err := OpenSampleWatch(WatchOptions{Log: url, Samples: []string{"smp-1"}, SampleFile: samples}, open)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := DefaultStateDir("log.example.com/x")
	if !slices.Equal(w.Samples, []string{"smp-1", "smp-2", "smp-3"}) || w.StateDir != want || w.Policy != nil || w.Client == nil || w.Proofs == nil {
		t.Errorf("watch %+v; want samples smp-1..3, state %s, no policy", w, want)
	}
	w, err = OpenSampleWatch(WatchOptions{Log: url, Samples: []string{"smp-1"}, PolicyFile: "../testdata/policy.yaml", StateDir: dir}, open)
	if err != nil || w.Policy == nil || w.StateDir != dir {
		t.Fatalf("with a policy and --state: %+v, %v", w, err)
	}

	opened = 0
	for _, tc := range []struct {
		name string
		o    WatchOptions
		msg  string // in the error
		fix  string // in the hint
	}{
		{"missing sample file", WatchOptions{Log: url, SampleFile: filepath.Join(dir, "none")}, "none", "pass a file of sample IDs"},
		{"bad sample file", WatchOptions{Log: url, SampleFile: badSamples}, badSamples + ": line 2", "one sample ID per line"},
		{"directory log", WatchOptions{Log: dir, Samples: []string{"smp-1"}}, "missing --log URL or samples", "sample proofs need the log's URL"},
		{"no samples", WatchOptions{Log: url}, "missing --log URL or samples", "the samples to watch"},
		{"bad policy", WatchOptions{Log: url, Samples: []string{"smp-1"}, PolicyFile: badPolicy}, badPolicy, "fix the policy file"},
	} {
		_, err := OpenSampleWatch(tc.o, open)
		var f interface {
			Hint() string
			ExitCode() int
		}
		if !errors.As(err, &f) || !strings.Contains(err.Error(), tc.msg) || !strings.Contains(f.Hint(), tc.fix) || f.ExitCode() != 3 {
			t.Errorf("%s: %v; want an error with %q, a hint with %q and exit 3", tc.name, err, tc.msg, tc.fix)
		}
	}
	if opened != 0 {
		t.Errorf("the log was opened %d times for options with mistakes", opened)
	}
	bad := errors.New("no key")
	if _, err := OpenSampleWatch(WatchOptions{Log: url, Samples: []string{"smp-1"}}, func(string) (*verify.Client, error) { return nil, bad }); err != bad {
		t.Errorf("opener's error came back as %v", err)
	}
}

// TestLoadSampleOptions: the policy and the kept checkpoint are read when
// named; a file that does not load says what to do and exits 3.
func TestLoadSampleOptions(t *testing.T) {
	dir := t.TempDir()
	since := filepath.Join(dir, "since")
	if err := os.WriteFile(since, []byte("log.example.com/x\n1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := LoadSampleOptions("smp-1", "", "")
	if err != nil || o.Sample != "smp-1" || o.Policy != nil || o.SinceNote != nil {
		t.Fatalf("no files: %+v, %v", o, err)
	}
	o, err = LoadSampleOptions("smp-1", "../testdata/policy.yaml", since)
	if err != nil || o.Policy == nil || string(o.SinceNote) != "log.example.com/x\n1\n" {
		t.Fatalf("policy and since: %+v, %v", o, err)
	}
	for _, tc := range []struct{ policy, since, fix string }{
		{filepath.Join(dir, "none.yaml"), "", "fix the policy file"},
		{"", filepath.Join(dir, "none"), "a checkpoint of this log you kept earlier"},
	} {
		_, err := LoadSampleOptions("smp-1", tc.policy, tc.since)
		var f interface {
			Hint() string
			ExitCode() int
		}
		if !errors.As(err, &f) || !strings.Contains(f.Hint(), tc.fix) || f.ExitCode() != 3 {
			t.Errorf("policy %q since %q: %v; want a hint with %q and exit 3", tc.policy, tc.since, err, tc.fix)
		}
	}
}
