package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/custodylog/custody/fsck"
	"github.com/custodylog/custody/internal/keyfile"
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

// FsckOptions name the log `custody fsck` checks and how.
type FsckOptions struct {
	// Dir is the log's directory: it holds PubFile (and, with DSN empty,
	// the SQLite database).
	Dir string
	// DSN is the log's store as OpenStore takes it ("": Dir's SQLite file).
	DSN string
	// Checkpoints are files holding signed checkpoints of the log seen
	// elsewhere; they are added to Options.Known.
	Checkpoints []string
	// Options are fsck.Check's.
	fsck.Options
}

// Fsck opens the existing log of o (OpenLogStore: it never creates a
// store or schema, and takes no lock, so it may run next to the log's
// servers), loads Dir/PubFile and the checkpoints of o.Checkpoints
// (verified with it), and runs fsck.Check. A SQLite database that is
// damaged so badly it does not open is a problem of kind fsck.KindStore
// in the report, not an error.
//
// The error, if any, has a Hint and an ExitCode, as custody prints them:
// OpenLogStore's *Error (kind KindHold) as it is, a --checkpoint that is
// not signed by the log's key a usage mistake (exit 3), and every other
// failure (no database, PubFile, reading, the store's errors) exit 3.
func Fsck(ctx context.Context, o FsckOptions) (*fsck.Report, error) {
	st, openErr := OpenLogStore(ctx, o.DSN, o.Dir)
	se := &Error{Kind: KindOpenStore, Err: openErr}
	if openErr == nil {
		defer st.Close()
	} else if errors.As(openErr, &se); se.Kind == KindNoStore {
		return nil, &fixError{err: se.Err, exit: 3}
	}
	pub := filepath.Join(o.Dir, PubFile)
	verifier, err := keyfile.LoadVerifier(pub)
	if err != nil {
		return nil, &fixError{err: fmt.Errorf("%s: %w", pub, err), exit: 3}
	}
	opts := o.Options
	for _, kf := range o.Checkpoints {
		b, err := os.ReadFile(kf)
		if err != nil {
			return nil, &fixError{err: err, exit: 3}
		}
		c, _, err := verify.OpenCheckpoint(b, verifier.Name(), note.VerifierList(verifier))
		if err != nil {
			return nil, &fixError{fmt.Errorf("--checkpoint %s: %w", kf, err), "pass a checkpoint signed by this log's key (from /checkpoint, a receipt or an audit state)", 3}
		}
		opts.Known = append(opts.Known, c)
	}
	switch {
	case openErr == nil:
		rep, err := fsck.Check(ctx, st, verifier, opts)
		if err != nil {
			return nil, &fixError{err: err, exit: 3}
		}
		return rep, nil
	case se.Kind == KindHold:
		return nil, openErr
	case se.Kind == KindOpenStore && strings.Contains(se.Err.Error(), "damaged"):
		rep := &fsck.Report{}
		rep.Add(fsck.KindStore, "database", "%v", se.Err)
		return rep, nil
	}
	return nil, &fixError{err: se.Err, exit: 3}
}
