//go:build e2e

package staticimage_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/staticimage"
)

const hello = `package main

import (
	"fmt"
	"os"
)

func main() { fmt.Println("hello from", os.Args[1], os.Getenv("GREETING")) }
`

func buildHello(t *testing.T) []byte {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(hello), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module hello\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", "hello", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the test binary: %v\n%s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(dir, "hello"))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestEnsureAndRun proves an image of a binary runs on the real engine, in
// the engine's architecture, and that ensuring it again is a no-op.
func TestEnsureAndRun(t *testing.T) {
	eng := testenv.Engine(t)
	ctx := context.Background()
	bin := buildHello(t)
	b := staticimage.Binary{
		Repo: fmt.Sprintf("docker-bottle-test/staticimage-%d", time.Now().UnixNano()%1e9),
		Read: func(arch string) ([]byte, error) {
			if arch != runtime.GOARCH {
				return nil, fmt.Errorf("the engine runs on %s, the test binary is %s", arch, runtime.GOARCH)
			}
			return bin, nil
		},
		Path: "/hello", Entrypoint: []string{"/hello"}, Cmd: []string{"staticimage"},
		Labels: map[string]string{"dev.dockerbottle.test": "1"},
	}
	tag, err := b.Ensure(ctx, eng)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		eng.ImageRemove(context.Background(), tag, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	})
	_, img, err := b.Image(runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.ConfigName()
	res, err := eng.ImageInspect(ctx, tag)
	if err != nil || res.ID != want.String() {
		t.Fatalf("engine image %s, want %s (%v)", res.ID, want, err)
	}
	if again, err := b.Ensure(ctx, eng); err != nil || again != tag {
		t.Fatalf("second ensure: %s, %v", again, err)
	}

	c, err := eng.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config:     &container.Config{Image: tag, Env: []string{"GREETING=hi"}, Labels: map[string]string{"dev.dockerbottle.test": "1"}},
		HostConfig: &container.HostConfig{ReadonlyRootfs: true, NetworkMode: "none"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.ContainerRemove(context.Background(), c.ID, client.ContainerRemoveOptions{Force: true})
	if _, err := eng.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	wait := eng.ContainerWait(ctx, c.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	select {
	case r := <-wait.Result:
		if r.StatusCode != 0 {
			t.Fatalf("container exited %d", r.StatusCode)
		}
	case err := <-wait.Error:
		t.Fatal(err)
	case <-time.After(30 * time.Second):
		t.Fatal("container did not exit")
	}
	logs, err := eng.ContainerLogs(ctx, c.ID, client.ContainerLogsOptions{ShowStdout: true})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	stdcopy.StdCopy(&out, &out, logs)
	if got := out.String(); got != "hello from staticimage hi\n" {
		t.Fatalf("container printed %q", got)
	}
}
