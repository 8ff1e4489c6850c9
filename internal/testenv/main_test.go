package testenv

import (
	"os"
	"strings"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// Without Main, nothing would remove the dir: ProcessDir refuses.
func TestProcessDirNeedsMain(t *testing.T) {
	procMu.Lock()
	procMain = false
	procMu.Unlock()
	defer func() {
		procMu.Lock()
		procMain = true
		procMu.Unlock()
	}()
	if dir, err := ProcessDir("bottle-test-*"); err == nil || !strings.Contains(err.Error(), "testenv.Main") {
		os.RemoveAll(dir)
		t.Errorf("ProcessDir without Main: %q, %v", dir, err)
	}
}
