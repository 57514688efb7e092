//go:build unix

package runindex

import (
	"syscall"
	"unsafe"
)

// allocWords returns n zeroed words outside the Go heap (an anonymous
// mapping), and the function that releases them. Bloom filters live there
// so that they count once in the process's memory, not twice as the Go
// heap's growth target would count long-lived data.
func allocWords(n int) ([]uint64, func()) {
	b, err := syscall.Mmap(-1, 0, n*8, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		w := make([]uint64, n) // out of address space: fall back to the heap
		return w, func() {}
	}
	return unsafe.Slice((*uint64)(unsafe.Pointer(&b[0])), n), func() { syscall.Munmap(b) }
}
