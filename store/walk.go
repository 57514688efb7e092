package store

import (
	"context"
	"fmt"
)

// EachCheckpoint calls fn with every stored checkpoint of st of size up to
// max, in increasing size order, reading them a page at a time. It stops
// at the first error of fn and returns it as it is; errors of the store
// are wrapped. It fails if the store lists the checkpoints out of order.
func EachCheckpoint(ctx context.Context, st Store, max uint64, fn func(Checkpoint) error) error {
	var from uint64
	var last *uint64
	for {
		cps, err := st.Checkpoints(ctx, from, 256)
		if err != nil {
			return fmt.Errorf("listing checkpoints from size %d: %w", from, err)
		}
		if len(cps) == 0 {
			return nil
		}
		for _, c := range cps {
			if c.Size > max {
				return nil
			}
			if last != nil && c.Size <= *last {
				return fmt.Errorf("the store listed checkpoint %d after checkpoint %d", c.Size, *last)
			}
			s := c.Size
			last = &s
			if err := fn(c); err != nil {
				return err
			}
		}
		if *last == ^uint64(0) {
			return nil
		}
		from = *last + 1
	}
}
