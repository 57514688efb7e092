//go:build unix

package audit

import "syscall"

// allocBytes returns n zeroed bytes outside the Go heap (an anonymous
// mapping, with transparent huge pages asked for), and the function that
// releases them. The per-sample state of an engine with a budget lives
// there, so that it counts once in the process's memory and not twice as
// the Go heap's growth target would count long-lived data, and so that a
// large identifier table costs fewer TLB misses.
func allocBytes(n int) ([]byte, func()) {
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]byte, n), func() {} // out of address space: the heap
	}
	if n >= 4<<20 {
		hugePages(b)
	}
	return b, func() { syscall.Munmap(b) }
}
