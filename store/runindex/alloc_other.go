//go:build !unix

package runindex

// allocWords returns n zeroed words on the Go heap.
func allocWords(n int) ([]uint64, func()) { return make([]uint64, n), func() {} }
