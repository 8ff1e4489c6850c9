//go:build e2e

package provider

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/display"
	"github.com/docker-bottle/docker-bottle/image/build"
	"github.com/docker-bottle/docker-bottle/internal/testenv"
)

// testLabel marks what the tests make on the engine.
var testLabel = map[string]string{"dev.dockerbottle.test": "1"}

func tail(b []byte, lines int) string {
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// runHardened runs cmd in image confined much as an agent is (no
// capabilities, no-new-privileges, read-only root, limits, no network), to
// show the image works there, and returns its output. It is not the
// backend's configuration: TestAgentContainerIsHardened (cmd/docker-bottle)
// reads that back from a real bottle's container.
func runHardened(t *testing.T, ctx context.Context, eng *client.Client, image string, cmd []string) (string, int64) {
	t.Helper()
	c, err := eng.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{Image: image, Cmd: cmd, Labels: testLabel},
		HostConfig: &container.HostConfig{
			NetworkMode:    "none",
			ReadonlyRootfs: true,
			CapDrop:        []string{"ALL"},
			SecurityOpt:    []string{"no-new-privileges"},
			Tmpfs:          map[string]string{"/tmp": "rw,noexec,nosuid,size=64m", "/home/agent": "rw,nosuid,size=64m,uid=1000,gid=1000"},
			Resources:      container.Resources{Memory: 1 << 30, PidsLimit: ptr(int64(256))},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.ContainerRemove(context.Background(), c.ID, client.ContainerRemoveOptions{Force: true})
	if _, err := eng.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	wait := eng.ContainerWait(ctx, c.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	var code int64
	select {
	case r := <-wait.Result:
		code = r.StatusCode
	case err := <-wait.Error:
		t.Fatal(err)
	case <-time.After(2 * time.Minute):
		t.Fatal("the container did not exit")
	}
	logs, err := eng.ContainerLogs(ctx, c.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	var out bytes.Buffer
	stdcopy.StdCopy(&out, &out, logs)
	return out.String(), code
}

func ptr[T any](v T) *T { return &v }

// TestBuiltinImages builds each provider's Dockerfile for real: on a
// Debian base made here (nothing can be pulled), with the engine's classic
// builder, fetching Claude Code and Codex from the npm registry and
// checking their pinned sha512; then runs the agent's --version, and looks
// at the agent user, git and the workspace, in a hardened container.
func TestBuiltinImages(t *testing.T) {
	eng := testenv.Engine(t)
	start := time.Now()
	baseTag := testenv.Debian(t, eng)
	t.Logf("base image ready in %s", time.Since(start).Round(time.Second))
	for _, c := range []struct {
		provider, version string
		want              *regexp.Regexp
	}{
		{"claude", "claude --version", regexp.MustCompile(`^` + regexp.QuoteMeta(ClaudeCodeVersion) + ` \(Claude Code\)$`)},
		{"codex", "codex --version", regexp.MustCompile(`^codex-cli ` + regexp.QuoteMeta(CodexVersion) + `$`)},
		{"shell", "bash --version | head -1", regexp.MustCompile(`^GNU bash, version 5\.`)},
	} {
		t.Run(c.provider, func(t *testing.T) {
			buildAndRun(t, eng, baseTag, c.provider, c.version, c.want)
		})
	}
}

func buildAndRun(t *testing.T, eng *client.Client, baseTag, name, versionCmd string, want *regexp.Regexp) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	suffix := make([]byte, 4)
	rand.Read(suffix)
	imageTag := "docker-bottle-test/" + name + ":" + hex.EncodeToString(suffix)
	t.Cleanup(func() {
		eng.ImageRemove(context.Background(), imageTag, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	})

	p, err := Get(name)
	if err != nil {
		t.Fatal(err)
	}
	df, err := p.Dockerfile()
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	pw, err := display.NewWriter(display.ModePlain, &log)
	if err != nil {
		t.Fatal(err)
	}
	buildStart := time.Now()
	res, err := build.Classic{Engine: eng}.Build(ctx, build.Options{
		ContextDir:        t.TempDir(),
		DockerfileContent: df,
		Tag:               imageTag,
		BuildArgs:         map[string]string{BuildArgBaseImage: baseTag},
		Labels:            testLabel,
	}, pw)
	if err != nil {
		t.Fatalf("building the %s image: %v\n%s", name, err, tail(log.Bytes(), 60))
	}
	t.Logf("%s image %s built in %s", name, res.ImageID, time.Since(buildStart).Round(time.Second))

	insp, err := eng.ImageInspect(ctx, imageTag)
	if err != nil {
		t.Fatal(err)
	}
	if u := insp.Config.User; u != fmt.Sprintf("%d:%d", AgentUID, AgentUID) {
		t.Errorf("image user %q", u)
	}
	for _, kv := range insp.Config.Env {
		if k, _, _ := strings.Cut(kv, "="); strings.Contains(k, "KEY") || strings.Contains(k, "TOKEN") {
			t.Errorf("image env has %s", k)
		}
	}

	out, code := runHardened(t, ctx, eng, imageTag, []string{"sh", "-c", versionCmd + " && id -u && git --version && stat -c %U /workspace"})
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || lines[3] != "agent" || !want.MatchString(lines[0]) ||
		lines[1] != "1000" || !strings.HasPrefix(lines[2], "git version ") {
		t.Fatalf("in the container:\n%s", out)
	}
}
