//go:build e2e

package docker_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/cli/cli-plugins/metadata"
	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/flags"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/backend"
	"github.com/docker-bottle/docker-bottle/backend/docker"
	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/provider/guest"
	"github.com/docker-bottle/docker-bottle/spec"
)

// TestAgentIOInProcess: exec, logs, an attached launch and attach reach
// the agent container through docker/cli's container commands in this
// process, with no docker binary to start (none is on PATH, and the one
// that would have started the plugin does not exist), and the agent's exit
// codes and streams come back as docker's commands give them.
func TestAgentIOInProcess(t *testing.T) {
	eng := testenv.Engine(t)
	img := testenv.Debian(t, eng)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	t.Setenv("PATH", t.TempDir())
	t.Setenv(metadata.ReexecEnvvar, filepath.Join(t.TempDir(), "docker"))
	cli, err := command.NewDockerCli()
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.Initialize(flags.NewClientOptions()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	d := docker.Docker{Engine: eng, CLI: cli}
	// The helper's stand-in runs the command it is given (guest.Exec).
	helper := "mkdir -p " + filepath.Dir(guest.HelperPath) + " && printf '#!/bin/sh\\nshift 2\\nexec \"$@\"\\n' > " + guest.HelperPath +
		" && chmod +x " + guest.HelperPath + " && "
	agent := func(name, script string, stdin bool) plan.Plan {
		t.Helper()
		name = "docker-bottle-test-agentio-" + name
		_, _ = eng.ContainerRemove(ctx, name, client.ContainerRemoveOptions{Force: true})
		if _, err := eng.ContainerCreate(ctx, client.ContainerCreateOptions{Name: name, Config: &container.Config{Image: img,
			Entrypoint: []string{"sh", "-c", helper + script}, OpenStdin: stdin, StdinOnce: stdin, AttachStdin: stdin,
			Labels: map[string]string{plan.LabelBottle: "agentio-test"}},
			HostConfig: &container.HostConfig{NetworkMode: "none"}}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_, _ = eng.ContainerRemove(context.Background(), name, client.ContainerRemoveOptions{Force: true})
		})
		return plan.Plan{Slug: "agentio-test", Backend: spec.BackendDocker, Docker: &plan.DockerPlan{Container: name}}
	}

	// An attached launch: the agent's output, then its exit code.
	p := agent("launch", "echo started; echo warned >&2; exit 7", false)
	var out, errb bytes.Buffer
	ex, err := d.Launch(ctx, p, backend.LaunchOptions{Streams: backend.Streams{Stdout: &out, Stderr: &errb}})
	if err != nil || ex.Code != 7 || ex.Detached || !ex.Launched || out.String() != "started\n" || errb.String() != "warned\n" {
		t.Fatalf("attached launch: %+v %v, stdout %q, stderr %q", ex, err, out.String(), errb.String())
	}
	// Its logs, both streams apart.
	out.Reset()
	errb.Reset()
	if code, err := d.Logs(ctx, p, backend.LogsOptions{Tail: "all", Stdout: &out, Stderr: &errb}); err != nil || code != 0 ||
		out.String() != "started\n" || errb.String() != "warned\n" {
		t.Errorf("logs: %d %v, stdout %q, stderr %q", code, err, out.String(), errb.String())
	}

	// Exec next to a running agent, with the user's variables.
	p = agent("exec", "exec sleep 600", false)
	if err := d.Start(ctx, p); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errb.Reset()
	code, err := d.Exec(ctx, p, backend.ExecOptions{Command: []string{"sh", "-c", "echo $GREETING; echo nope >&2; exit 3"},
		Env: []string{"GREETING=hello"}, Streams: backend.Streams{Stdout: &out, Stderr: &errb}})
	if err != nil || code != 3 || out.String() != "hello\n" || errb.String() != "nope\n" {
		t.Errorf("exec: %d %v, stdout %q, stderr %q", code, err, out.String(), errb.String())
	}
	if st := d.Status(ctx, p); st != backend.StateRunning {
		t.Errorf("status of a running agent: %q", st)
	}

	// Attach to a running agent that waits for its input.
	p = agent("attach", "read line; echo got $line; exit 5", true)
	if err := d.Start(ctx, p); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	ex, err = d.Attach(ctx, p, backend.AttachOptions{Streams: backend.Streams{Stdin: strings.NewReader("hi\n"), Stdout: &out, Stderr: &errb}})
	if err != nil || ex.Code != 5 || ex.Detached || out.String() != "got hi\n" {
		t.Errorf("attach: %+v %v, stdout %q", ex, err, out.String())
	}
}
