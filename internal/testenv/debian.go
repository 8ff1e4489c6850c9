package testenv

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/go-archive"
	"github.com/moby/go-archive/compression"
	"github.com/moby/moby/client"
)

// DebianBase is the tag of the Debian bookworm base image tests build on:
// nothing can be pulled, so it is made here with debootstrap (minbase plus
// ca-certificates, curl, git, less, procps, and the host's CA roots) and
// imported into the engine. It is made once per engine and kept: its tag
// says what it holds.
const DebianBase = "docker-bottle-test/bookworm-base:1"

// debianMirror is where debootstrap fetches from; the environment may
// point it at a closer mirror.
func debianMirror() string {
	if m := os.Getenv("DOCKER_BOTTLE_TEST_DEBIAN_MIRROR"); m != "" {
		return m
	}
	return "http://deb.debian.org/debian"
}

// hostRoots is the host's CA bundle, copied in so that builds on the base
// work behind an intercepting proxy, as they do on the host.
const hostRoots = "/etc/ssl/certs/ca-certificates.crt"

// Debian returns DebianBase, making it first when the engine lacks it. A
// lock file keeps concurrent test processes from making it twice.
func Debian(t testing.TB, eng *client.Client) string {
	t.Helper()
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
	if os.Geteuid() != 0 {
		t.Fatal("debootstrap needs root to make the test base image: run the tests as root")
	}
	debootstrap, err := exec.LookPath("debootstrap")
	if err != nil {
		t.Fatalf("debootstrap is not installed (%v): `bash hack/tools.sh debootstrap` (make test does)", err)
	}
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	cmd := exec.CommandContext(ctx, debootstrap, "--variant=minbase", "--include=ca-certificates,curl,git,less,procps",
		"bookworm", rootfs, debianMirror())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("debootstrap: %v\n%s", err, tailLines(out, 40))
	}
	roots, err := os.ReadFile(hostRoots)
	if err != nil {
		t.Fatalf("reading the host's CA roots: %v", err)
	}
	// Kept by a later update-ca-certificates, and in force at once.
	if err := os.WriteFile(filepath.Join(rootfs, "usr/local/share/ca-certificates/host-roots.crt"), roots, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "etc/ssl/certs/ca-certificates.crt"), roots, 0o644); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(rootfs, "var/cache/apt/archives"))
	tar, err := archive.Tar(rootfs, compression.None)
	if err != nil {
		t.Fatal(err)
	}
	defer tar.Close()
	res, err := eng.ImageImport(ctx, client.ImageImportSource{Source: tar, SourceName: "-"}, DebianBase,
		client.ImageImportOptions{Changes: []string{"LABEL " + TestLabel + "=1", `CMD ["bash"]`}})
	if err != nil {
		t.Fatalf("docker import: %v", err)
	}
	out, _ := io.ReadAll(res)
	res.Close()
	if _, err := eng.ImageInspect(ctx, DebianBase); err != nil {
		t.Fatalf("the imported base is not in the engine: %v\n%s", err, out)
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
