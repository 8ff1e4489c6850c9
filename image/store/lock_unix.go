//go:build unix

package store

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Lock takes the store's lock: shared for a pipeline run, exclusive for a
// prune, so a prune never deletes a blob a concurrent run has just found.
// It blocks until the lock is free; call the returned function to release.
func (s *Store) Lock(exclusive bool) (func(), error) {
	f, err := os.OpenFile(filepath.Join(s.root, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("image cache lock: %w", err)
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	// The lock file holds no data: closing it only lets the lock go.
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close() //nolint:errcheck // see above
		return nil, fmt.Errorf("image cache lock: %w", err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close() //nolint:errcheck // see above
	}, nil
}
