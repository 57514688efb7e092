//go:build unix && !linux

package audit

// hugePages does nothing outside Linux.
func hugePages([]byte) {}
