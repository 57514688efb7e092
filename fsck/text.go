package fsck

import (
	"fmt"
	"io"
)

// WriteText writes r for people: a summary line counting the entries, the
// stored hash tiles and checkpoints and the problems, then each problem as
// 'KIND LOCATION: detail', one a line.
func (r *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "checked %d entries, %d tiles, %d checkpoints: %d problems\n", r.Entries, r.Tiles, r.Checkpoints, len(r.Problems))
	for _, p := range r.Problems {
		fmt.Fprintf(w, "%s %s: %s\n", p.Kind, p.Where, p.Detail)
	}
}
