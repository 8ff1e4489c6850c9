//go:build unix

package gate

import (
	"math"

	"golang.org/x/sys/unix"
)

// diskFree is the space an unprivileged writer has left on dir's disk.
func diskFree(dir string) (int64, bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, false
	}
	if st.Bsize <= 0 {
		return 0, false
	}
	bsize := uint64(st.Bsize)
	if st.Bavail > math.MaxInt64/bsize {
		return math.MaxInt64, true
	}
	return int64(st.Bavail * bsize), true //nolint:gosec // G115: bounded just above
}
