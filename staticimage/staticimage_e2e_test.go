//go:build e2e

package staticimage_test

import (
	"bytes"
	"context"
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

// TestLoadAndRun proves an assembled image runs on the real engine, and
// that loading it again is a no-op.
func TestLoadAndRun(t *testing.T) {
	eng := testenv.Engine(t)
	ctx := context.Background()
	img, err := staticimage.Build([]staticimage.File{{Path: "/hello", Mode: 0o755, Data: buildHello(t)}}, staticimage.Config{
		Arch: runtime.GOARCH, Entrypoint: []string{"/hello"}, Cmd: []string{"staticimage"}, Env: []string{"GREETING=hi"},
		Labels: map[string]string{"dev.dockerbottle.test": "1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	tag := "docker-bottle-test/staticimage:" + time.Now().Format("150405.000000")[7:]
	if err := staticimage.Load(ctx, eng, tag, img); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		eng.ImageRemove(context.Background(), tag, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	})
	want, _ := img.ConfigName()
	res, err := eng.ImageInspect(ctx, tag)
	if err != nil || res.ID != want.String() {
		t.Fatalf("engine image %s, want %s (%v)", res.ID, want, err)
	}
	if err := staticimage.Load(ctx, eng, tag, img); err != nil {
		t.Fatalf("second load: %v", err)
	}

	c, err := eng.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config:     &container.Config{Image: tag, Labels: map[string]string{"dev.dockerbottle.test": "1"}},
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
