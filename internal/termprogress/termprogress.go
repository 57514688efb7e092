// Package termprogress draws a progress bar over a count of entries on a
// terminal, and nothing anywhere else: the long-running commands (copy,
// prefill, audit, mirror, demo) report through it without checking where
// their stderr goes.
package termprogress

import (
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Bar is a progress bar on a writer. It is made at the first Set with a
// total, once the total is known, and only if the writer is a terminal:
// on a file or a pipe every method does nothing, so logs stay clean.
// The zero value and a nil *Bar draw nothing.
type Bar struct {
	w    io.Writer
	what string
	on   bool
	bar  *progressbar.ProgressBar
}

// New returns a bar labelled what on w, drawn only if w is a terminal
// (IsTerminal).
func New(w io.Writer, what string) *Bar {
	return &Bar{w: w, what: what, on: IsTerminal(w)}
}

// What is the bar's label.
func (b *Bar) What() string {
	if b == nil {
		return ""
	}
	return b.what
}

// Set shows done of total entries (the libraries' Progress callbacks
// have this shape). A total of 0 shows nothing yet.
func (b *Bar) Set(done, total uint64) {
	if b == nil {
		return
	}
	if b.bar == nil && b.on && total > 0 {
		b.bar = progressbar.NewOptions64(int64(total), progressbar.OptionSetWriter(b.w),
			progressbar.OptionSetDescription(b.what), progressbar.OptionShowCount(),
			progressbar.OptionShowIts(), progressbar.OptionSetItsString("entries"),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
	}
	if b.bar != nil {
		b.bar.Set64(int64(done))
	}
}

// Drawn reports whether the bar has been drawn (it is on a terminal and
// Set was given a total).
func (b *Bar) Drawn() bool { return b != nil && b.bar != nil }

// Finish clears the bar from the terminal, if it was drawn.
func (b *Bar) Finish() {
	if b != nil && b.bar != nil {
		b.bar.Finish()
	}
}

// IsTerminal reports whether w is an *os.File open on a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
