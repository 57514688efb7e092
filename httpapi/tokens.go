package httpapi

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// TokenFileModeError is LoadTokens' error for a token file that group or
// others may access.
type TokenFileModeError struct {
	Path string
	Mode fs.FileMode // the permission bits found
}

func (e *TokenFileModeError) Error() string {
	return fmt.Sprintf("token file %s is accessible by group or others (mode %04o): bearer tokens are secrets, only the file's owner may read them", e.Path, e.Mode)
}

// Hint says what to do about the error: chmod 600 the file.
func (e *TokenFileModeError) Hint() string { return "chmod 600 " + e.Path }

// ExitCode is custody's exit code for the error: 1.
func (e *TokenFileModeError) ExitCode() int { return 1 }

// TokenFileError is LoadTokens' error for a token file that does not read,
// or holds no token or a short one. Its text is Err's.
type TokenFileError struct {
	Path string
	Err  error
}

func (e *TokenFileError) Error() string { return e.Err.Error() }
func (e *TokenFileError) Unwrap() error { return e.Err }

// Hint says what to do about the error: how to write a token file.
func (e *TokenFileError) Hint() string {
	return fmt.Sprintf("write one random token per line, readable only by you, e.g. '(umask 077; openssl rand -hex 32 > %s)'", e.Path)
}

// ExitCode is custody's exit code for the error: 1.
func (e *TokenFileError) ExitCode() int { return 1 }

// LoadTokens reads a token file: one token per line, blank lines and lines
// starting with # ignored. It refuses a file that group or others may
// access in any way (mode & 0077 != 0, a *TokenFileModeError: tokens
// are secrets, and whoever may write the file may add one), a file with no
// token, and tokens shorter than 16 characters (a *TokenFileError). The
// mode is checked on the open file, so the file checked is the file read.
func LoadTokens(path string) ([]string, error) {
	ts, err := loadTokens(path)
	if _, ok := err.(*TokenFileModeError); err != nil && !ok {
		return nil, &TokenFileError{Path: path, Err: err}
	}
	return ts, err
}

func loadTokens(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading token file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading token file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("token file %s is not a regular file (%s)", path, fi.Mode().Type())
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, &TokenFileModeError{Path: path, Mode: perm}
	}
	b, err := io.ReadAll(io.LimitReader(f, maxTokenFile+1))
	if err != nil {
		return nil, fmt.Errorf("reading token file %s: %w", path, err)
	}
	if len(b) > maxTokenFile {
		return nil, fmt.Errorf("token file %s is larger than %d bytes", path, maxTokenFile)
	}
	var out []string
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if len(line) < 16 {
			return nil, fmt.Errorf("token file %s line %d: token is %d characters, want at least 16", path, i+1, len(line))
		}
		out = append(out, line)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("token file %s holds no token", path)
	}
	return out, nil
}
