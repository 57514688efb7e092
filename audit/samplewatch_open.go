package audit

import (
	"fmt"
	"os"
	"strings"

	"github.com/custodylog/custody/verify"
)

// WatchOptions are the inputs of a SampleWatch as a command line gives
// them (`custody monitor --sample`).
type WatchOptions struct {
	// Log is the log's base URL: only a log server (http or https) serves
	// sample proofs; a mirror directory holds no sample index.
	Log string
	// Samples are the sample identifiers to watch.
	Samples []string
	// SampleFile, if set, names a file of more sample identifiers, one a
	// line (ReadSampleFile).
	SampleFile string
	// PolicyFile, if set, is the routing policy the chains are checked
	// against (LoadPolicy).
	PolicyFile string
	// StateDir holds the watch's state; "" is DefaultStateDir of the log's
	// origin.
	StateDir string
}

// OpenSampleWatch checks o, reads its files and returns the SampleWatch
// it describes, its proofs fetched from o.Log (HTTPSampleProofs). open
// returns the client of the log at o.Log; it is called once the rest of o
// is known to be usable, and its errors are returned as they are. Every
// other error is a mistake in o: it says what to do (Hint) and custody
// exits 3 for it (ExitCode). Nothing is read from the log.
func OpenSampleWatch(o WatchOptions, open func(log string) (*verify.Client, error)) (*SampleWatch, error) {
	samples := o.Samples
	if o.SampleFile != "" {
		b, err := os.ReadFile(o.SampleFile)
		if err != nil {
			return nil, &inputError{err, "pass a file of sample IDs, one per line"}
		}
		more, err := ReadSampleFile(b)
		if err != nil {
			return nil, &inputError{fmt.Errorf("%s: %w", o.SampleFile, err), "one sample ID per line; # starts a comment"}
		}
		samples = append(samples, more...)
	}
	if !strings.HasPrefix(o.Log, "http://") && !strings.HasPrefix(o.Log, "https://") || len(samples) == 0 {
		return nil, &inputError{fmt.Errorf("missing --log URL or samples"), "pass --log URL (sample proofs need the log's URL) and the samples to watch"}
	}
	w := &SampleWatch{Proofs: HTTPSampleProofs(o.Log, nil), Samples: samples, StateDir: o.StateDir}
	var err error
	if w.Policy, err = loadPolicyFile(o.PolicyFile); err != nil {
		return nil, err
	}
	if w.Client, err = open(o.Log); err != nil {
		return nil, err
	}
	if w.StateDir == "" {
		if w.StateDir, err = DefaultStateDir(w.Client.Origin()); err != nil {
			return nil, &inputError{err, "pass --state DIR"}
		}
	}
	return w, nil
}

// LoadSampleOptions returns the SampleOptions of VerifySample for sample
// as a command line gives them: the routing policy in policyFile and the
// checkpoint kept in sinceFile, each unless "". An error is a mistake in
// a file: it says what to do (Hint) and custody exits 3 (ExitCode).
func LoadSampleOptions(sample, policyFile, sinceFile string) (SampleOptions, error) {
	opts := SampleOptions{Sample: sample}
	var err error
	if opts.Policy, err = loadPolicyFile(policyFile); err != nil {
		return opts, err
	}
	if sinceFile != "" {
		if opts.SinceNote, err = os.ReadFile(sinceFile); err != nil {
			return opts, &inputError{err, "pass a checkpoint of this log you kept earlier"}
		}
	}
	return opts, nil
}
