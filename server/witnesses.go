package server

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/custodylog/custody/log"
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

// TrustWitnesses turns a c2sp.org/tlog-policy into the log's witness
// settings: the policy's witnesses that have a submission URL (the others
// are logged and skipped: they cannot be asked), and a quorum function
// that evaluates the policy (nil for "quorum none": ask the witnesses
// without waiting for them). name labels the policy in errors.
func TrustWitnesses(name string, p *verify.TrustPolicy, logger *slog.Logger) ([]log.Witness, func(signed []byte, cp verify.Checkpoint) bool, error) {
	var ws []log.Witness
	for _, w := range p.Witnesses() {
		if w.URL == "" {
			logger.Warn("trust policy witness has no URL: not asked to cosign", "witness", w.Name)
			continue
		}
		v, err := verify.NewCosignatureVerifier(w.VKey)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: witness %s: %w", name, w.Name, err)
		}
		ws = append(ws, log.Witness{URL: w.URL, Verifier: v})
	}
	if p.Quorum() == "none" {
		return ws, nil, nil
	}
	return ws, func(signed []byte, cp verify.Checkpoint) bool {
		_, err := p.Evaluate(signed, cp, time.Now())
		return err == nil
	}, nil
}

// LoadCosignatureVerifier reads a cosignature/v1 verifier key, given as
// the key itself or as a file holding it. Its errors never quote key
// material: s is named only when it is an existing file, and a private key
// (given or in the file) wraps verify.ErrPrivateKey.
func LoadCosignatureVerifier(s string) (note.Verifier, error) {
	v, err := verify.NewCosignatureVerifier(s)
	if err == nil {
		return v, nil
	}
	if errors.Is(err, verify.ErrPrivateKey) {
		return nil, fmt.Errorf("the key given: %w", err)
	}
	fi, ferr := os.Stat(s)
	if ferr != nil {
		if strings.Contains(s, "+") {
			return nil, err // looks like a key, not a path: the key error is the useful one
		}
		return nil, errors.New("neither a cosignature verifier key (name+keyid+base64) nor the name of an existing file")
	}
	if !fi.Mode().IsRegular() || fi.Size() > 64<<10 {
		return nil, fmt.Errorf("key file %s is not a regular file of at most 64 KiB", s)
	}
	b, ferr := os.ReadFile(s)
	if ferr != nil {
		return nil, fmt.Errorf("reading key file %s: %w", s, errors.Unwrap(ferr))
	}
	v, err = verify.NewCosignatureVerifier(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", s, err)
	}
	return v, nil
}
