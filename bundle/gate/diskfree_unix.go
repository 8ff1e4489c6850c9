//go:build unix

package gate

import "golang.org/x/sys/unix"

// diskFree is the space an unprivileged writer has left on dir's disk.
func diskFree(dir string) (int64, bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return int64(st.Bavail) * int64(st.Bsize), true
}
