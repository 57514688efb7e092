package mirror

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/custodylog/custody/verify"
)

// TestRefusalHint: a refused rollback and a refused fork get their own
// fix naming the directory's checkpoint; a verification failure that is
// not a refusal, and a refusal without evidence, get none.
func TestRefusalHint(t *testing.T) {
	failure := func(kind string) error {
		return &verify.VerificationError{Evidence: verify.Evidence{Kind: kind, Origin: "log.example"}}
	}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"rollback", fmt.Errorf("%w: older tree: %w", ErrRefused, failure(verify.EvidenceRollback)), "mirror from the log itself or an up-to-date copy; if the log really went back, keep pub/checkpoint"},
		{"fork", fmt.Errorf("%w: another tree: %w", ErrRefused, failure(verify.EvidenceBadSignature)), "two histories that do not agree: keep pub/checkpoint"},
		{"bad tile, not refused", fmt.Errorf("tile: %w", failure(verify.EvidenceBadSignature)), ""},
		{"refused without evidence", fmt.Errorf("%w: %w", ErrRefused, errors.New("disk")), ""},
	} {
		got := RefusalHint(tc.err, "pub")
		if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
