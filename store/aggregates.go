package store

import "context"

// Aggregator is implemented by stores that can keep small aggregates
// derived from the log (such as the per-region counts of package stats),
// each saved with the tree size it covers, so that a process restarting
// reads only the entries after that size instead of the whole log. Both
// custody backends implement it.
//
// An aggregate is derived data, not part of the log: it is never
// verified by anybody else, and whoever loads one must check that it
// still describes the log (the log may have been restored from an older
// backup, or replaced) and recount when it does not.
type Aggregator interface {
	// SaveAggregate durably replaces the aggregate called name with data,
	// which covers the log's entries [0, size). It does not take part in
	// Append's transactions: it may run at any time, concurrently with
	// appends.
	SaveAggregate(ctx context.Context, name string, size uint64, data []byte) error

	// LoadAggregate returns the size and data last saved under name, or an
	// error wrapping ErrNotFound if none was.
	LoadAggregate(ctx context.Context, name string) (size uint64, data []byte, err error)
}
