package bottles_test

import (
	"bytes"
	"context"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/flags"

	"github.com/docker-bottle/docker-bottle/backend"
	"github.com/docker-bottle/docker-bottle/bottles"
	"github.com/docker-bottle/docker-bottle/image"
	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/probe"
)

// dockerCLI is the real docker CLI's view of the engine, as the plugin has
// it, for attaching through `docker start -a`.
func dockerCLI(t *testing.T) *command.DockerCli {
	t.Helper()
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	cli, err := command.NewDockerCli()
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.Initialize(flags.NewClientOptions()); err != nil {
		t.Fatal(err)
	}
	return cli
}

// TestCheckDockerBackend runs `docker bottle check`'s work on the docker
// backend: the probe in a real hardened container behind a real bundle,
// judged against every promise.
func TestCheckDockerBackend(t *testing.T) {
	eng := testenv.Engine(t)
	cli := dockerCLI(t)
	state := t.TempDir()
	var progress bytes.Buffer
	svc := &bottles.Service{Engine: eng, Dirs: plan.Dirs{State: filepath.Join(state, "bottle"), Cache: filepath.Join(state, "cache")}, Progress: &progress}
	pipe, err := image.New(eng, nil, svc.Dirs.Cache)
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	card, err := svc.Check(context.Background(), bottles.CheckOptions{
		Choice:   plan.Choice{Backend: "docker", NetworkMode: plan.NetworkInternal},
		Arch:     runtime.GOARCH,
		Pipeline: pipe,
		Run:      bottles.RunOptions{Docker: backend.Docker{Engine: eng, CLI: cli}, Stderr: &stderr},
	})
	if err != nil {
		t.Fatalf("check: %v\nprogress:\n%s\nstderr:\n%s", err, progress.String(), stderr.String())
	}
	var table bytes.Buffer
	card.WriteTable(&table)
	t.Logf("report card:\n%s", table.String())
	for n := 1; n <= 6; n++ {
		if v := card.Verdict(n); v != probe.Pass {
			t.Errorf("promise %d: %s", n, v)
		}
	}
	if card.Failed() {
		t.Errorf("card failed:\n%s\nprobe stderr:\n%s", table.String(), stderr.String())
	}
	if strings.Contains(progress.String(), "bottle-canary-") {
		t.Error("the canary secret appears in the progress output")
	}
}
