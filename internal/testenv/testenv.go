// Package testenv gives tests the real components they need (a Docker
// engine, the docker CLI, the built plugin) and fails, never skips, when one
// is missing: a skipped test proves nothing, and CI must see the gap.
package testenv

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/internal/testenv/testio"
	"github.com/moby/moby/client"
)

// Engine returns a client of the engine DOCKER_HOST (or the default socket)
// points at, after checking that it answers.
func Engine(t testing.TB) *client.Client {
	t.Helper()
	needsE2E(t, "testenv.Engine")
	c, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatalf("no Docker engine client: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Ping(ctx, client.PingOptions{}); err != nil {
		c.Close()
		t.Fatalf("no Docker engine answers (%v): start dockerd (on a fresh Debian machine `bash .ci/run` installs and starts it)", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// DockerCLI returns the path of the docker CLI.
func DockerCLI(t testing.TB) string {
	t.Helper()
	needsE2E(t, "testenv.DockerCLI")
	p, err := exec.LookPath("docker")
	if err != nil {
		t.Fatalf("the docker CLI is not on PATH (%v): install docker.io (bash .ci/run does)", err)
	}
	return p
}

// ModuleRoot is the repository root, found from this file's location.
func ModuleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
	buildOut  []byte
)

// Plugin builds the docker-bottle binary once per test process and returns
// its path; the package's TestMain must use Main, which removes it. The bundle binaries it embeds are built into a temporary dir
// and handed to the plugin's build through -overlay, so a test run never
// writes into the source tree (internal/bundlebin/bin is what make
// bundle-bins fills, and other packages embed it while go test compiles
// them).
func Plugin(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = ProcessDir("bottle-plugin-*")
		if buildErr != nil {
			return
		}
		replace := map[string]string{}
		for _, arch := range []string{"amd64", "arm64"} {
			for _, bin := range []string{"bottle-bundle", "bottle-probe"} {
				name := bin + "-linux-" + arch
				out := filepath.Join(buildDir, name)
				// Stripped, as `make bundle-bins` builds them: the helper goes
				// into every agent image.
				cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "./cmd/"+bin)
				cmd.Dir = ModuleRoot()
				cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
				if buildOut, buildErr = cmd.CombinedOutput(); buildErr != nil {
					return
				}
				// Compressed, as the plugin embeds them.
				if buildErr = gzipFile(out, out+".gz"); buildErr != nil {
					return
				}
				replace[filepath.Join(ModuleRoot(), "internal", "bundlebin", "bin", name+".gz")] = out + ".gz"
			}
		}
		overlay := filepath.Join(buildDir, "overlay.json")
		data, err := json.Marshal(map[string]any{"Replace": replace})
		if err == nil {
			err = os.WriteFile(overlay, data, 0o600)
		}
		if buildErr = err; err != nil {
			return
		}
		cmd := exec.Command("go", "build", "-overlay", overlay, "-o", filepath.Join(buildDir, "docker-bottle"), "./cmd/docker-bottle")
		cmd.Dir = ModuleRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("building docker-bottle: %v\n%s", buildErr, buildOut)
	}
	return filepath.Join(buildDir, "docker-bottle")
}

// DockerConfig makes a fresh DOCKER_CONFIG dir with the plugin installed in
// its cli-plugins, as `make install` would, and returns the dir.
func DockerConfig(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	plugins := filepath.Join(dir, "cli-plugins")
	if err := os.MkdirAll(plugins, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(Plugin(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(plugins, "docker-bottle"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// GitRepo makes a user's git repository with one (empty) commit on main.
// Its dir has a name of its own: a bottle's default name and its build's
// image tag come from it, and tests running at once must not share them.
func GitRepo(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), fmt.Sprintf("repo-%06x", rand.Uint32()&0xffffff))
	for _, args := range [][]string{
		{"init", "-q", "-b", "main", dir},
		{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.test", "commit", "-q", "--allow-empty", "-m", "first"},
	} {
		if out, err := exec.Command("git", args...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	return dir
}

// GitRepoWith makes a user's git repository whose second commit on main
// adds files (path relative to the repository: content).
func GitRepoWith(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := GitRepo(t)
	testio.WriteFiles(t, dir, files)
	for _, args := range [][]string{{"add", "-A"}, {"-c", "user.name=t", "-c", "user.email=t@example.test", "commit", "-qm", "bottle spec"}} {
		if out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	return dir
}

var (
	smolvmOnce sync.Once
	smolvmPath string
	smolvmErr  error
)

// RealSmolvm returns the pinned real smolvm that `bash hack/tools.sh smolvm`
// installs (make e2e does): tests of what this host's smolvm really does
// fail, never skip, without it.
func RealSmolvm(t testing.TB) string {
	t.Helper()
	needsE2E(t, "testenv.RealSmolvm")
	smolvmOnce.Do(func() {
		out, err := exec.Command("bash", filepath.Join(ModuleRoot(), "hack", "tools.sh"), "smolvm-path").Output()
		if err != nil {
			smolvmErr = err
			return
		}
		smolvmPath = strings.TrimSpace(string(out))
		if fi, err := os.Stat(smolvmPath); err != nil || fi.Mode().Perm()&0o111 == 0 {
			smolvmErr = fmt.Errorf("%s is not installed", smolvmPath)
		}
	})
	if smolvmErr != nil {
		t.Fatalf("no real smolvm (%v): install the pinned one with `bash hack/tools.sh smolvm` (make e2e does)", smolvmErr)
	}
	return smolvmPath
}

// gzipFile writes src compressed to dst, as `gzip -9 -n` does.
func gzipFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	zw, err := gzip.NewWriterLevel(f, gzip.BestCompression)
	if err != nil {
		f.Close()
		return err
	}
	if _, err := zw.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
