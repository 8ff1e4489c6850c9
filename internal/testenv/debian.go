package testenv

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// DebianBase is the tag of the Debian bookworm base image tests build on:
// nothing can be pulled, so it is made here with debootstrap (minbase plus
// ca-certificates, curl, git, less, procps, and the host's CA roots) and
// imported into the engine. It is made once per engine and kept: its tag
// says what it holds.
const DebianBase = "docker-bottle-test/bookworm-base:1"

// Debian returns DebianBase, making it first (hack/debian-base.sh) when the
// engine lacks it. A lock file keeps concurrent test processes from making
// it twice.
func Debian(t testing.TB, eng *client.Client) string {
	t.Helper()
	needsE2E(t, "testenv.Debian")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if _, err := eng.ImageInspect(ctx, DebianBase); err == nil {
		return DebianBase
	}
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "docker-bottle-test-debian.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := eng.ImageInspect(ctx, DebianBase); err == nil {
		return DebianBase
	}
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(ModuleRoot(), "hack", "debian-base.sh"), DebianBase)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("making the Debian base image: %v\n%s", err, tailLines(out, 40))
	}
	if _, err := eng.ImageInspect(ctx, DebianBase); err != nil {
		t.Fatalf("the Debian base is not in the engine after hack/debian-base.sh: %v", err)
	}
	return DebianBase
}

func tailLines(b []byte, n int) string {
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}
