package termprogress

import "io"

// Phases draws the progress of a job in phases, whose progress callback
// names its phase (logcopy.Options.Progress): one Bar per phase, labelled
// with it, the previous one finished when the phase changes. Like Bar it
// draws only on a terminal.
type Phases struct {
	w   io.Writer
	bar *Bar
}

// NewPhases returns Phases drawing on w.
func NewPhases(w io.Writer) *Phases { return &Phases{w: w} }

// Set shows done of total entries of phase.
func (p *Phases) Set(phase string, done, total uint64) {
	if p.bar == nil || phase != p.bar.What() {
		p.bar.Finish()
		p.bar = New(p.w, phase)
	}
	p.bar.Set(done, total)
}

// Finish clears the current phase's bar.
func (p *Phases) Finish() { p.bar.Finish() }
