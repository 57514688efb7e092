package audit

import "github.com/custodylog/custody/site"

// LoadSiteSetFile is LoadSiteSet of the policy file path, or nil for ""
// (no site check asked for). Its error says what to do (Hint) and custody
// exits 3 for it (ExitCode).
func LoadSiteSetFile(path string) (*site.Set, error) {
	if path == "" {
		return nil, nil
	}
	set, err := LoadSiteSet(path)
	if err != nil {
		return nil, &inputError{err, "fix the policy's sites section; see docs/site-signing.md"}
	}
	return set, nil
}

// loadPolicyFile is LoadPolicy of path, or nil for "", its error an
// inputError that says what to do.
func loadPolicyFile(path string) (*Policy, error) {
	if path == "" {
		return nil, nil
	}
	p, err := LoadPolicy(path)
	if err != nil {
		return nil, &inputError{err, "fix the policy file; see testdata/policy.yaml for an example"}
	}
	return p, nil
}

// inputError is a mistake in a file or flag given to a command built on
// the package, with what to do about it.
type inputError struct {
	err error
	fix string
}

func (e *inputError) Error() string { return e.err.Error() }
func (e *inputError) Unwrap() error { return e.err }

// Hint says what to do about the error.
func (e *inputError) Hint() string { return e.fix }

// ExitCode is custody's exit code for the error: 3, a usage mistake.
func (e *inputError) ExitCode() int { return 3 }
