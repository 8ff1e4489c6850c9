//go:build e2e

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/bottles"
	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/internal/testenv/testio"
)

// TestDockerAgentAttached: on the docker backend the plugin attaches in its
// own process, as `docker attach` and `docker start -ai` do. `attach` shows
// a running agent's output and ends with its exit code; `run` attached to a
// terminal passes the user's keys to the agent and ends with its exit code
// (and --rm removes the bottle); Ctrl-P Ctrl-Q detaches from it, and the
// agent keeps running.
func TestDockerAgentAttached(t *testing.T) {
	eng := testenv.Engine(t)
	base := testenv.Debian(t, eng)
	cfg := testenv.DockerConfig(t)
	svc := serviceOf(t, cfg)
	noSmolvm := []string{"DOCKER_BOTTLE_SMOLVM="}

	// The agent ticks until an exec releases it.
	name := dockerBottle(t, cfg, "at", map[string]string{"bottle.yaml": "agent:\n  provider: shell\n  image: " + base + "\n" +
		`  command: [sh, -c, 'while [ ! -e /tmp/go ]; do echo tick; sleep 0.2; done; echo released; exit 7']` + "\n"})
	attach := exec.Command(testenv.DockerCLI(t), "bottle", "attach", name)
	attach.Env = append(os.Environ(), "DOCKER_CONFIG="+cfg)
	var out testio.Buffer
	attach.Stdout, attach.Stderr = &out, &out
	if err := attach.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- attach.Wait() }()
	t.Cleanup(func() { attach.Process.Kill() })
	out.WaitFor(t, "tick", 60*time.Second)
	if r := docker(t, cfg, nil, "bottle", "exec", name, "--", "touch", "/tmp/go"); r.code != 0 {
		t.Fatalf("exec: %d %s", r.code, r.stderr)
	}
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 || !strings.Contains(out.String(), "released") {
			t.Errorf("attach: %v, output:\n%s", err, out.String())
		}
	case <-time.After(60 * time.Second):
		attach.Process.Kill()
		t.Fatalf("attach did not end with the agent:\n%s", out.String())
	}

	repo := testenv.GitRepoWith(t, map[string]string{"bottle.yaml": "agent:\n  provider: shell\n  image: " + base + "\n" +
		`  command: [sh, -c, 'echo ready; read key; echo "read:$key"; exit 7']` + "\n"})
	run := func(name string, extra ...string) []string {
		removedAtEnd(t, cfg, noSmolvm, name, repo)
		return append(append([]string{"bottle", "run", "--backend", "docker", "--name", name, "--progress", "quiet"}, extra...), repo)
	}

	// Attached to a terminal: the keys reach the agent, its exit code is
	// the run's.
	name = fmt.Sprintf("at-rm-%d", time.Now().UnixNano()%1e6)
	code, screen := onTerminal(t, cfg, noSmolvm, run(name, "--rm"), "ready", "typed\r")
	if code != 7 || !strings.Contains(screen, "read:typed") {
		t.Errorf("run attached: exit %d, screen:\n%q", code, screen)
	}
	if _, err := svc.Load(name); err == nil {
		t.Errorf("bottle %s left after run --rm", name)
	}

	// Ctrl-P Ctrl-Q: the run ends at once, the agent keeps running.
	name = fmt.Sprintf("at-d-%d", time.Now().UnixNano()%1e6)
	code, screen = onTerminal(t, cfg, noSmolvm, run(name), "ready", "\x10\x11")
	if code != 0 || !strings.Contains(screen, "detached; the agent keeps running") {
		t.Errorf("run detached: exit %d, screen:\n%q", code, screen)
	}
	p, err := svc.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	if st := svc.Status(context.Background(), p); st.Agent != bottles.StateRunning {
		t.Errorf("the agent after a detach: %+v", st)
	}
}
