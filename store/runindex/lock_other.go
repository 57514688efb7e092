//go:build !unix

package runindex

// lockDir does nothing where flock is not available: the caller must make
// sure one directory has one Index.
func lockDir(dir string) (func(), error) { return func() {}, nil }
