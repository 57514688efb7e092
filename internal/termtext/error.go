package termtext

// Error returns err with its text escaped by Clean, for an error that may
// quote what a server or a file said; errors.Is and errors.As still see
// err and its chain (exit codes, hints). Error(nil) is nil.
func Error(err error) error {
	if err == nil {
		return nil
	}
	return cleanError{err}
}

type cleanError struct{ err error }

func (e cleanError) Error() string { return Clean(e.err.Error()) }
func (e cleanError) Unwrap() error { return e.err }
