//go:build unix

package verify

import "syscall"

// openNonblock is added to the flags a directory Source opens files with,
// so that opening a FIFO does not wait for a writer.
const openNonblock = syscall.O_NONBLOCK
