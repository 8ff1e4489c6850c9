//go:build e2e

package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/internal/testenv"
)

// interruptRun starts `docker bottle run` in its own process group (as a
// terminal's foreground job), sends SIGINT to the whole group, as Ctrl-C
// does, once a stderr line contains when, and returns the exit code.
func interruptRun(t *testing.T, cfg string, when string, args ...string) (int, string) {
	t.Helper()
	return interruptRunIn(t, cfg, nil, when, args...)
}

// interruptRunIn is interruptRun with env added to the CLI's environment.
func interruptRunIn(t *testing.T, cfg string, env []string, when string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(testenv.DockerCLI(t), append([]string{"bottle", "run", "--progress", "plain"}, args...)...)
	cmd.Env = append(append(os.Environ(), "DOCKER_CONFIG="+cfg, "DOCKER_BOTTLE_CACHE="+filepath.Join(cfg, "cache"), "DOCKER_BOTTLE_SMOLVM="), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var seen strings.Builder
	sent := false
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		seen.WriteString(sc.Text() + "\n")
		if !sent && strings.Contains(sc.Text(), when) {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
			sent = true
		}
	}
	err = cmd.Wait()
	if !sent {
		t.Fatalf("never saw %q:\n%s", when, seen.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	return code, seen.String()
}

// agentRepo makes a repository whose bottle runs a shell agent, built on
// the local Debian base, that prints a line and waits.
func agentRepo(t *testing.T, base string) string {
	t.Helper()
	repo := testenv.GitRepo(t)
	files := map[string]string{
		"Dockerfile":  agentDockerfile(base),
		"bottle.yaml": "agent:\n  provider: shell\n  dockerfile: Dockerfile\n  command: [sh, -c, 'echo agent is up >&2; exec sleep 600']\n",
	}
	for f, c := range files {
		if err := os.WriteFile(filepath.Join(repo, f), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return repo
}

// TestInterruptDuringBringUp: Ctrl-C while the bundle comes up ends the
// run with 130 and leaves nothing.
func TestInterruptDuringBringUp(t *testing.T) {
	eng := testenv.Engine(t)
	cfg := testenv.DockerConfig(t)
	repo := agentRepo(t, testenv.Debian(t, eng))
	name := fmt.Sprintf("ib-%d", time.Now().UnixNano()%1e6)
	code, stderr := interruptRun(t, cfg, "bundle: starting the bundle", "--backend", "docker", "--name", name, repo)
	if code != 130 {
		t.Errorf("exit %d, want 130\n%s", code, stderr)
	}
	testenv.NothingLeft(t, eng, bottleIn(cfg, nil, name, repo))
	if t.Failed() {
		t.Logf("the interrupted run:\n%s", stderr)
	}
}

// TestInterruptDuringRun: Ctrl-C while the agent runs reaches the agent
// (through the docker CLI and the container's init), the run ends, and
// with --rm nothing is left.
func TestInterruptDuringRun(t *testing.T) {
	eng := testenv.Engine(t)
	cfg := testenv.DockerConfig(t)
	repo := agentRepo(t, testenv.Debian(t, eng))
	name := fmt.Sprintf("ir-%d", time.Now().UnixNano()%1e6)
	code, stderr := interruptRun(t, cfg, "agent is up", "--backend", "docker", "--rm", "--name", name, repo)
	if code == 0 {
		t.Errorf("an interrupted agent reported success\n%s", stderr)
	}
	testenv.NothingLeft(t, eng, bottleIn(cfg, nil, name, repo))
	if t.Failed() {
		t.Logf("the interrupted run:\n%s", stderr)
	}
}
