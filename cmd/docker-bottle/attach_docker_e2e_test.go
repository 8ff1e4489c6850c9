//go:build e2e

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
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
	attachEndsWithTheAgent(t, cfg, nil, nil, name, func() {
		if r := docker(t, cfg, nil, "bottle", "exec", name, "--", "touch", "/tmp/go"); r.code != 0 {
			t.Fatalf("exec: %d %s", r.code, r.stderr)
		}
	})

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

// echoAgent is the command of an agent that keeps running and says what
// it reads, a line at a time.
const echoAgent = `  command: [sh, -c, 'echo ready; while read -r l; do echo "got:$l"; done; echo eof; exec sleep 600']` + "\n"

// TestDetachedAgentHasATerminal: the agent of `run -d` has a terminal and
// an open stdin, as `docker run -dit` gives a container, so `attach` from
// the user's terminal types to it, and Ctrl-P Ctrl-Q ends the attach (exit
// 0) while the agent keeps running.
func TestDetachedAgentHasATerminal(t *testing.T) {
	eng := testenv.Engine(t)
	base := testenv.Debian(t, eng)
	cfg := testenv.DockerConfig(t)
	name := dockerBottle(t, cfg, "dt", map[string]string{"bottle.yaml": "agent:\n  provider: shell\n  image: " + base + "\n" + echoAgent})
	detachAndAttachAgain(t, cfg, nil, nil, name)
}

// detachAndAttachAgain attaches (`docker ARGS bottle attach NAME`) on a
// terminal to the running echoAgent of bottle name, twice: each time a line
// typed reaches the agent, and Ctrl-P Ctrl-Q detaches with exit 0 and
// leaves the agent running, with the line as its last output in ls. An
// attach without a terminal meanwhile shows the agent's output (its keys
// could not be a terminal's).
func detachAndAttachAgain(t *testing.T, cfg string, env, args []string, name string) {
	t.Helper()
	bottle := func(a ...string) result {
		t.Helper()
		return docker(t, cfg, env, append(append(slices.Clone(args), "bottle"), a...)...)
	}
	watch := exec.Command(testenv.DockerCLI(t), append(slices.Clone(args), "bottle", "attach", name)...)
	watch.Env = append(append(os.Environ(), "DOCKER_CONFIG="+cfg), env...)
	var watched testio.Buffer
	watch.Stdout, watch.Stderr = &watched, &watched
	// Killed, the CLI leaves the plugin attached, holding the output
	// until rm ends the agent: Wait must not wait for it.
	watch.WaitDelay = 5 * time.Second
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { watch.Process.Kill(); watch.Wait() })
	for _, line := range []string{"one", "two"} {
		a := startOnPTY(t, cfg, env, append(slices.Clone(args), "bottle", "attach", name)...)
		a.waitRaw()
		a.press(line + "\r")
		a.waitFor("got:" + line)
		watched.WaitFor(t, "got:"+line, 60*time.Second)
		a.press("\x10\x11")
		if code := a.exit(); code != 0 {
			t.Fatalf("attach, then Ctrl-P Ctrl-Q: exit %d; the terminal shows:\n%q", code, a.screen())
		}
		ls := bottle("ls", "--format", "{{.Name}} {{.State}} {{.LastOutput}}")
		if want := name + " running got:" + line; ls.code != 0 || strings.TrimSpace(ls.stdout) != want {
			t.Fatalf("ls after the detach: exit %d %q, want %q\n%s", ls.code, ls.stdout, want, ls.stderr)
		}
	}
	if logs := bottle("logs", name); !strings.Contains(logs.stdout, "ready\r\n") || !strings.Contains(logs.stdout, "got:one\r\n") {
		t.Errorf("the logs of the agent's terminal: exit %d %q %s", logs.code, logs.stdout, logs.stderr)
	}
	if r := bottle("rm", "-f", name); r.code != 0 {
		t.Errorf("rm -f: exit %d %s", r.code, r.stderr)
	}
}
