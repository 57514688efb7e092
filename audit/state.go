package audit

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
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
	if st.EngineFile != "" {
		if ok, _ := filepath.Match(engineFiles, st.EngineFile); !ok || filepath.Base(st.EngineFile) != st.EngineFile {
			return nil, fmt.Errorf("audit state %s: engine_file %q is not a file name of the form %s", dir, st.EngineFile, engineFiles)
		}
		st.enginePath = filepath.Join(dir, st.EngineFile)
	}
	return &st, nil
}

// engineFiles is the pattern of the names of the engine state files in a
// state directory.
const engineFiles = "engine-*.json"

// readEngineState restores e from st's engine state, streamed from its
// file when it has one.
func readEngineState(e *Engine, st *AuditState) error {
	if st.enginePath == "" {
		return e.UnmarshalState(st.Engine)
	}
	f, err := os.Open(st.enginePath)
	if err != nil {
		return err
	}
	defer f.Close()
	return e.ReadStateFrom(bufio.NewReaderSize(f, 1<<20))
}

// writeEngineState puts e's state into st: into st.Engine if dir is "",
// else into a new file in dir (mode 0600, synced), written as it is made;
// failing to write it there is a *StateError.
func writeEngineState(e *Engine, st *AuditState, dir string) error {
	if dir == "" {
		b, err := e.MarshalState()
		st.Engine = b
		return err
	}
	fail := func(err error) error {
		return &StateError{Dir: dir, Write: true, Err: fmt.Errorf("writing audit state: %w", err)}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fail(err)
	}
	f, err := os.CreateTemp(dir, engineFiles)
	if err != nil {
		return fail(err)
	}
	if err := writeSynced(f, e.WriteStateTo); err != nil {
		os.Remove(f.Name())
		return fail(fmt.Errorf("engine state %s: %w", f.Name(), err))
	}
	st.Engine, st.EngineFile, st.enginePath = nil, filepath.Base(f.Name()), f.Name()
	return nil
}

// writeSynced writes f with write, syncs and closes it.
func writeSynced(f *os.File, write func(io.Writer) error) error {
	bw := bufio.NewWriterSize(f, 1<<20)
	err := write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// WriteState replaces the audit state in dir with st, creating dir (mode
// 0700) if needed. The state is written to a new file (mode 0600), synced,
// and renamed over the old one, so that a crash leaves either the old state
// or the new one, never a mix. A state whose engine state is in a file of
// its own (AuditState.EngineFile: Audit with AuditOptions.StateDir, or
// ReadState of such a state) keeps it so, in dir (copied there if it is
// elsewhere); after the rename the engine file of the replaced state is
// removed, and so are other engine files more than a day old.
func WriteState(dir string, st *AuditState) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if st.enginePath != "" {
		if filepath.Clean(filepath.Dir(st.enginePath)) != filepath.Clean(dir) {
			if err := copyEngineFile(dir, st); err != nil {
				return err
			}
		}
		st.EngineFile = filepath.Base(st.enginePath)
	}
	prev := engineFileOf(dir)
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
	removeOtherEngineFiles(dir, st.EngineFile, prev)
	return nil
}

// copyEngineFile copies st's engine state file into a new file in dir.
func copyEngineFile(dir string, st *AuditState) error {
	src, err := os.Open(st.enginePath)
	if err != nil {
		return err
	}
	defer src.Close()
	f, err := os.CreateTemp(dir, engineFiles)
	if err != nil {
		return err
	}
	if err := writeSynced(f, func(w io.Writer) error { _, err := io.Copy(w, src); return err }); err != nil {
		os.Remove(f.Name())
		return err
	}
	st.enginePath = f.Name()
	return nil
}

// removeOtherEngineFiles removes, once the state naming keep is in place,
// the engine state file that the state it replaced named (prev), and
// engine state files of dir not named by it that are more than a day old
// (left by audits that crashed or whose state was not written). Newer
// ones may belong to an audit still running on the same directory.
func removeOtherEngineFiles(dir, keep, prev string) {
	if prev != "" && prev != keep {
		os.Remove(filepath.Join(dir, prev))
	}
	names, _ := filepath.Glob(filepath.Join(dir, engineFiles))
	for _, name := range names {
		if fi, err := os.Stat(name); err == nil && filepath.Base(name) != keep && time.Since(fi.ModTime()) > 24*time.Hour {
			os.Remove(name)
		}
	}
}

// engineFileOf returns the engine_file of the state file in dir, or "":
// a state file with the engine inline (large, and naming no file) is not
// read.
func engineFileOf(dir string) string {
	name := filepath.Join(dir, StateFile)
	if fi, err := os.Stat(name); err != nil || fi.Size() > 1<<20 {
		return ""
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return ""
	}
	var st struct {
		EngineFile string `json:"engine_file"`
	}
	if json.Unmarshal(b, &st) != nil || filepath.Base(st.EngineFile) != st.EngineFile {
		return ""
	}
	if ok, _ := filepath.Match(engineFiles, st.EngineFile); !ok {
		return ""
	}
	return st.EngineFile
}
