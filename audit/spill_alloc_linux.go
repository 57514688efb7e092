package audit

import "syscall"

// hugePages asks for transparent huge pages for b (a hint; the kernel may
// refuse).
func hugePages(b []byte) { _ = syscall.Madvise(b, syscall.MADV_HUGEPAGE) }
