package mirror

import (
	"errors"
	"path/filepath"

	"github.com/custodylog/custody/verify"
)

// RefusalHint says what to do when Update refused to update dir because
// the source's checkpoint does not extend dir's (an error wrapping
// ErrRefused and a *verify.VerificationError): for a rollback, mirror from
// an up-to-date source; for a fork, keep both checkpoints as proof. It is
// "" for any other error.
func RefusalHint(err error, dir string) string {
	ve, ok := verify.IsVerificationError(err)
	if !ok || !errors.Is(err, ErrRefused) {
		return ""
	}
	kept := filepath.Join(dir, "checkpoint")
	if ve.Evidence.Kind == verify.EvidenceRollback {
		return "mirror from the log itself or an up-to-date copy; if the log really went back, keep " + kept + " as proof"
	}
	return "the log signed two histories that do not agree: keep " + kept + " and the source's checkpoint as proof and report it; to mirror another log, use a new --dir"
}
