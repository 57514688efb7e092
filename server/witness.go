package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/custodylog/custody/internal/keyfile"
	"github.com/custodylog/custody/store/witnessdb"
	"github.com/custodylog/custody/witness"
	"golang.org/x/mod/sumdb/note"
)

// WitnessOptions are the files of a witness server (`custody witness
// serve`).
type WitnessOptions struct {
	// Dir is the state directory, created (mode 0700) if missing: it holds
	// the witness's database (witnessdb.FileName) and its lock file.
	Dir string
	// Listen is the TCP address to serve on.
	Listen string
	// KeyFile is the witness's PRIVATE+KEY file (keyfile.LoadCosigner).
	KeyFile string
	// Logs are the trusted logs' verifier keys, each a key or a file
	// holding one (keyfile.LoadVerifier).
	Logs []string
	// Logger, if set, receives the witness's logs.
	Logger *slog.Logger
	// Ready, if set, is called with the bound address once serving.
	Ready func(addr string)
}

// ServeWitness loads the witness's key and the logs' keys, takes the lock
// of o.Dir (one process serves a state directory: a second gets an error
// wrapping ErrLocked), opens its database and serves the witness
// (witness.Serve) until ctx is done; the lock and the database are
// released before it returns. A log key that does not load is an error
// naming --log with a Hint and ExitCode, as custody prints them.
func ServeWitness(ctx context.Context, o WitnessOptions) error {
	signer, vkey, err := keyfile.LoadCosigner(o.KeyFile)
	if err != nil {
		return err
	}
	var logs []note.Verifier
	for _, l := range o.Logs {
		v, err := keyfile.LoadVerifier(l)
		if err != nil {
			return &logKeyError{err}
		}
		logs = append(logs, v)
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return fmt.Errorf("creating state directory: %w", err)
	}
	release, err := LockFile(filepath.Join(o.Dir, witnessdb.FileName+".lock"))
	if err != nil {
		return err
	}
	defer release()
	st, err := witnessdb.Open(filepath.Join(o.Dir, witnessdb.FileName))
	if err != nil {
		return err
	}
	return witness.Serve(ctx, witness.ServeConfig{Config: witness.Config{State: st, Signer: signer, Logs: logs, Logger: o.Logger},
		Listen: o.Listen, VKey: vkey, Ready: o.Ready})
}

// logKeyError is ServeWitness's error for a WitnessOptions.Logs entry
// that does not load.
type logKeyError struct{ err error }

func (e *logKeyError) Error() string { return "--log: " + e.err.Error() }
func (e *logKeyError) Unwrap() error { return e.err }

// Hint says what to give --log instead.
func (e *logKeyError) Hint() string {
	return keyfile.VerifierHint("--log", e.err, "--log takes a log's verifier key (name+id+key) or a file holding one, e.g. DIR/log.pub")
}

// ExitCode is custody's exit code for the error: 1.
func (e *logKeyError) ExitCode() int { return 1 }
