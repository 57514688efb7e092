package store

import "context"

// Lookup names one of the lookups of a Store that an index serves.
type Lookup uint8

// The lookups an IndexCheck checks.
const (
	LookupIdentity Lookup = iota // ByIdentity, by the entry's identity
	LookupLeafHash               // ByLeafHash, by the entry's leaf hash
	LookupSample                 // Sample, by the entry's sample
)

// String returns the name of the lookup's Store method.
func (l Lookup) String() string {
	switch l {
	case LookupIdentity:
		return "ByIdentity"
	case LookupLeafHash:
		return "ByLeafHash"
	case LookupSample:
		return "Sample"
	}
	return "Lookup(?)"
}

// IndexMiss is an entry that the index behind one of the store's lookups
// does not list under the entry's own stored key: the lookup by that key
// may not return the entry.
type IndexMiss struct {
	Index  uint64
	Lookup Lookup
}

// IndexChecker is implemented by stores that can check, in bulk and in
// memory that does not grow with the log, that the indexes behind
// ByIdentity, ByLeafHash and Sample list every entry under its stored
// identity, leaf hash and sample (both custody backends do). It is for
// consistency checks (custody fsck), which would otherwise look every
// entry up one query at a time.
type IndexChecker interface {
	// NewIndexCheck starts a check. It never writes, so it may run next
	// to writers appending to the log.
	NewIndexCheck(ctx context.Context) (IndexCheck, error)
}

// IndexCheck is one check of a store's indexes against entries read from
// the same store (see IndexChecker).
type IndexCheck interface {
	// Add takes entries as Store.Entries returned them; only their Index,
	// Identity, LeafHash and Sample are used, and Data may be nil. It is
	// safe for concurrent use; entries may come in any order, each at
	// most once.
	Add(ctx context.Context, entries []Entry) error
	// Finish returns, in increasing index then Lookup order, every
	// IndexMiss among the entries added, and ends the check. Entries that
	// the store's index holds only in another process's memory (a SQLite
	// index owned by a running server, for at most the entries it has not
	// yet written) cannot be checked and are not reported. The error is
	// for failures to read the store, not for misses.
	Finish(ctx context.Context) ([]IndexMiss, error)
}
