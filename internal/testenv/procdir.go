package testenv

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
)

var (
	procMu   sync.Mutex
	procMain bool
	procDirs []string
)

// Main runs a package's tests and then removes the dirs ProcessDir made
// for them; a package whose tests use Plugin calls it from its TestMain:
// os.Exit(testenv.Main(m)).
func Main(m *testing.M) int {
	procMu.Lock()
	procMain = true
	procMu.Unlock()
	code := m.Run()
	procMu.Lock()
	defer procMu.Unlock()
	for _, dir := range procDirs {
		if err := os.RemoveAll(dir); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: removing %s: %v\n", dir, err)
			code = max(code, 1)
		}
	}
	procDirs = nil
	return code
}

// ProcessDir makes a temporary dir that lives as long as the test process,
// for what it builds once and shares between its tests (the plugin, about
// 100 MB): Main removes it when the tests end. Without Main nothing would,
// so it refuses.
func ProcessDir(pattern string) (string, error) {
	procMu.Lock()
	defer procMu.Unlock()
	if !procMain {
		return "", errors.New("nothing would remove it: call os.Exit(testenv.Main(m)) from the package's TestMain")
	}
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		return "", err
	}
	procDirs = append(procDirs, dir)
	return dir, nil
}
