//go:build !unix

package benchcpu

import "time"

// Now returns 0: the CPU time is not measured on this system.
func Now() time.Duration { return 0 }
