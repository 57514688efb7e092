package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// StateFile is the name of the audit state file in a state directory.
const StateFile = "state.json"

// DefaultStateDir returns the state directory `custody audit` uses for the
// log with the given origin when none is given: custody/audit/<origin>
// under the user's configuration directory (os.UserConfigDir), with every
// character of the origin outside A-Za-z0-9._- replaced by "_".
func DefaultStateDir(origin string) (string, error) {
	base, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, origin)
	return filepath.Join(base, "custody", "audit", safe), nil
}

// ReadState reads the audit state in dir (its StateFile). It returns nil
// and no error if there is none: the next audit is a first run.
func ReadState(dir string) (*AuditState, error) {
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st AuditState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("audit state %s: %w", dir, err)
	}
	return &st, nil
}

// WriteState replaces the audit state in dir with st, creating dir (mode
// 0700) if needed. The state is written to a new file (mode 0600), synced,
// and renamed over the old one, so that a crash leaves either the old state
// or the new one, never a mix.
func WriteState(dir string, st *AuditState) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(st, "", " ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "state-*.json")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	tmp.Close()
	if err := os.Rename(tmp.Name(), filepath.Join(dir, StateFile)); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
