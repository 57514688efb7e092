package termtext

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"
)

// TestError: the text is escaped, the chain is kept, nil stays nil.
func TestError(t *testing.T) {
	if Error(nil) != nil {
		t.Fatal("Error(nil) is not nil")
	}
	inner := fmt.Errorf("server said \x1b[2Jgone\n: %w", fs.ErrNotExist)
	err := Error(inner)
	if got, want := err.Error(), `server said \x1b[2Jgone\n: file does not exist`; got != want {
		t.Errorf("text %q, want %q", got, want)
	}
	if !errors.Is(err, fs.ErrNotExist) || errors.Unwrap(err) != inner {
		t.Error("the chain is lost")
	}
}
