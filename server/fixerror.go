package server

// fixError is an error of the command helpers of this package (Fsck,
// CopyLog) that says what to do about it and custody's exit code for it.
type fixError struct {
	err  error
	hint string // "": the message says it all
	exit int
}

func (e *fixError) Error() string { return e.err.Error() }
func (e *fixError) Unwrap() error { return e.err }

// Hint says what to do, if anything more than the message says.
func (e *fixError) Hint() string { return e.hint }

// ExitCode is custody's exit code for the error.
func (e *fixError) ExitCode() int { return e.exit }

// fixer is an error that says what to do itself.
type fixer interface {
	Hint() string
	ExitCode() int
}
