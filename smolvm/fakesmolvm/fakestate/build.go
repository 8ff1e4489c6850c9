package fakestate

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// FakePackage is the import path of the fake smolvm program.
const FakePackage = "github.com/docker-bottle/docker-bottle/smolvm/fakesmolvm"

// Build compiles the fake into dir/smolvm (the name docker bottle looks for
// on PATH) and returns its path. Tests call it from TestMain; it needs the
// go tool and runs inside this module.
func Build(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "smolvm")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, FakePackage)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the fake smolvm (is the go tool on PATH?): %w\n%s", err, b)
	}
	return out, nil
}
