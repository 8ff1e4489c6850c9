//go:build unix

package agent

import (
	"io/fs"
	"syscall"
)

// fileKey identifies a file, so that one reached by two paths (a workspace
// inside $HOME, a link) is read once.
type fileKey struct{ dev, ino uint64 }

func keyOf(info fs.FileInfo) (fileKey, bool) {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return fileKey{}, false
	}
	return fileKey{uint64(st.Dev), uint64(st.Ino)}, true
}
