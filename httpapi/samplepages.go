package httpapi

import (
	"context"
	"fmt"
)

// ReadSample reads every page of a sample's events with getJSON (a GET of
// a path and query, decoding the JSON answer): the first page at the
// published size, the others at that same size, each after the last index
// of the one before. The cursor is computed here, not taken from the
// server's "next" link, and must advance on every page; a page for another
// sample or size, or with entries out of order or beyond the size, is an
// error.
func ReadSample(ctx context.Context, getJSON func(ctx context.Context, path string, v any) error, sample string) (SamplePage, error) {
	var all SamplePage
	path := SamplePath(sample)
	for page := 1; ; page++ {
		var p SamplePage
		if err := getJSON(ctx, path, &p); err != nil {
			if page > 1 {
				return all, fmt.Errorf("reading page %d of sample %s: %w", page, sample, err)
			}
			return all, err
		}
		if page == 1 {
			all = SamplePage{Sample: p.Sample, Size: p.Size}
		}
		if p.Sample != sample || p.Size != all.Size {
			return all, fmt.Errorf("page %d of sample %s is for sample %q at tree size %d, want %q at %d", page, sample, p.Sample, p.Size, sample, all.Size)
		}
		for _, ev := range p.Events {
			if n := len(all.Events); n > 0 && ev.Index <= all.Events[n-1].Index {
				return all, fmt.Errorf("page %d of sample %s: entry %d does not come after entry %d", page, sample, ev.Index, all.Events[n-1].Index)
			}
			if ev.Index >= all.Size {
				return all, fmt.Errorf("page %d of sample %s: entry %d is beyond the tree size %d", page, sample, ev.Index, all.Size)
			}
			all.Events = append(all.Events, ev)
		}
		if p.Next == "" {
			return all, nil
		}
		if len(p.Events) == 0 {
			return all, fmt.Errorf("page %d of sample %s is empty but says more follow", page, sample)
		}
		path = fmt.Sprintf("%s?after=%d&size=%d", SamplePath(sample), all.Events[len(all.Events)-1].Index, all.Size)
	}
}
