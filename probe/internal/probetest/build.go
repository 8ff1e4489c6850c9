// Package probetest builds the bundle binary, which carries the probe, for
// the probe's tests.
package probetest

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/docker-bottle/docker-bottle/internal/testenv"
)

var (
	once sync.Once
	dir  string
	err  error
	out  []byte
)

// Binary builds bottle-probe (static, CGO_ENABLED=0, for the host's
// architecture) once per test process and returns its path. The build dir
// is a testenv.ProcessDir: the package's TestMain calls testenv.Main,
// which removes it.
func Binary(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		dir, err = testenv.ProcessDir("bottle-probe-bin-*")
		if err != nil {
			return
		}
		cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, "bottle-probe"), "./cmd/bottle-probe")
		cmd.Dir = testenv.ModuleRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
		out, err = cmd.CombinedOutput()
	})
	if err != nil {
		t.Fatalf("building bottle-probe: %v\n%s", err, out)
	}
	return filepath.Join(dir, "bottle-probe")
}
