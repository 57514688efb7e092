//go:build !unix

package verify

// openNonblock is 0 where there are no FIFOs to block on open; the Stat
// before the open rejects other special files.
const openNonblock = 0
