//go:build e2e

package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/smolvm/fakesmolvm/fakestate"
	"github.com/docker-bottle/docker-bottle/smolvm/smolvmtest"
)

// TestSmolvmAgentSessions is a user's session with smolvm bottles, through
// the real docker CLI and the contract fake, in both network modes: `run
// -d` of an agent that prints lines and waits for a key; `logs` and `logs
// -n`; `logs -f` that ends when the agent does; `attach` from a terminal
// that types to the agent and ends with its exit code; `stop` and `start`,
// which runs the agent again, in loopback mode with the bundle's new ports
// (in the agent's env, and in the -e of the exec smolvm was given); `exec`
// with those ports; `rm -f`, which leaves nothing; and `run --rm` attached
// to a terminal, whose exit code is the agent's.
func TestSmolvmAgentSessions(t *testing.T) {
	t.Parallel()
	eng := testenv.Engine(t)
	base := testenv.Debian(t, eng)
	wrapper, calls := recordedSmolvm(t)
	fakeState := t.TempDir()
	env := []string{"DOCKER_BOTTLE_SMOLVM=" + wrapper, "SMOLVM_FAKE_STATE=" + fakeState, "SMOLVM_FAKE_VERSION=1.9.3"}
	cfg := testenv.DockerConfig(t)
	// The workspace is a repository in the image already, so the bootstrap
	// keeps it: in loopback mode the fake's guest cannot reach 100.96.0.1.
	files := map[string]string{
		"Dockerfile": "FROM " + base + "\nRUN git init -q /workspace\nENV HOME=/root\nWORKDIR /workspace\n",
		"bottle.yaml": `agent:
  provider: shell
  dockerfile: Dockerfile
  command:
    - sh
    - -c
    - |
      echo "agent up, proxy port ${HTTPS_PROXY##*:}"
      for i in 1 2 3; do echo line$i; done
      read key
      echo "read:$key"
      exit 7
`,
	}
	repo := testenv.GitRepoWith(t, files)
	svc := serviceOf(t, cfg)

	for _, mode := range []string{"bridge", "loopback"} {
		t.Run(mode, func(t *testing.T) {
			name := fmt.Sprintf("ss-%s-%d", mode[:1], time.Now().UnixNano()%1e6)
			r := docker(t, cfg, env, "bottle", "run", "-d", "--backend", "smolvm", "--network-mode", mode, "--name", name, "--progress", "plain", repo)
			if r.code != 0 || strings.TrimSpace(r.stdout) != name {
				t.Fatalf("run -d: exit %d, stdout %q\n%s", r.code, r.stdout, r.stderr)
			}
			removedAtEnd(t, cfg, env, name, repo)
			p, err := svc.Load(name)
			if err != nil {
				t.Fatal(err)
			}
			port1 := p.Endpoints.AgentProxyURL[strings.LastIndex(p.Endpoints.AgentProxyURL, ":")+1:]

			logs := waitLogs(t, cfg, env, name, "line3")
			if !strings.Contains(logs, "agent up, proxy port "+port1+"\r\n") {
				t.Errorf("logs:\n%q", logs)
			}
			if r := docker(t, cfg, env, "bottle", "logs", "-n", "1", name); r.code != 0 || r.stdout != "line3\r\n" {
				t.Errorf("logs -n 1: exit %d %q %s", r.code, r.stdout, r.stderr)
			}

			// logs -f, then attach from a terminal and end the agent.
			follow := exec.Command(testenv.DockerCLI(t), "bottle", "logs", "-f", name)
			follow.Env = append(append(os.Environ(), "DOCKER_CONFIG="+cfg), env...)
			var followed bytes.Buffer
			follow.Stdout, follow.Stderr = &followed, &followed
			if err := follow.Start(); err != nil {
				t.Fatal(err)
			}
			followDone := make(chan error, 1)
			go func() { followDone <- follow.Wait() }()

			code, screen := onTerminal(t, cfg, env, []string{"bottle", "attach", name}, "line3", "bye\r")
			if code != 7 || !strings.Contains(screen, "read:bye") {
				t.Errorf("attach: exit %d, screen:\n%q", code, screen)
			}
			select {
			case err := <-followDone:
				if err != nil || !strings.Contains(followed.String(), "read:bye") {
					t.Errorf("logs -f: %v\n%q", err, followed.String())
				}
			case <-time.After(60 * time.Second):
				follow.Process.Kill()
				t.Fatalf("logs -f did not end with the agent:\n%q", followed.String())
			}

			// stop and start: the agent runs again, with the bundle's
			// current ports.
			if r := docker(t, cfg, env, "bottle", "stop", name); r.code != 0 {
				t.Fatalf("stop: %d %s", r.code, r.stderr)
			}
			before := countLines(calls)
			if r := docker(t, cfg, env, "bottle", "start", name); r.code != 0 {
				t.Fatalf("start: %d %s", r.code, r.stderr)
			}
			p2, err := svc.Load(name)
			if err != nil {
				t.Fatal(err)
			}
			port2 := p2.Endpoints.AgentProxyURL[strings.LastIndex(p2.Endpoints.AgentProxyURL, ":")+1:]
			// The bundle's host ports are chosen at bring-up and kept
			// across restarts (a machine in loopback mode reaches the
			// bundle through them).
			if port2 != port1 {
				t.Errorf("the bundle moved from port %s to %s across a restart", port1, port2)
			}
			// The port is kept, so the first run's line matches too: wait
			// for the second run's last line.
			logs = waitLogsN(t, cfg, env, name, "line3", 2)
			if strings.Count(logs, "agent up") != 2 || strings.Count(logs, "line3") != 2 {
				t.Errorf("the agent did not run again after start:\n%q", logs)
			}
			var startExec []string
			for _, c := range readCalls(t, calls)[before:] {
				if len(c) > 3 && c[0] == "machine" && c[1] == "exec" && contains(c, "-d") && contains(c, "start") {
					startExec = c
				}
			}
			if want := "HTTPS_PROXY=" + p2.Endpoints.AgentProxyURL; !containsPair(startExec, "-e", want) {
				t.Errorf("the session's exec after start has no -e %s: %q", want, startExec)
			}

			if r := docker(t, cfg, env, "bottle", "exec", name, "--", "sh", "-c", `echo "${HTTPS_PROXY##*:}"`); r.code != 0 || strings.TrimSpace(r.stdout) != port2 {
				t.Errorf("exec after start: exit %d %q, want port %s (%s)", r.code, r.stdout, port2, r.stderr)
			}

			if r := docker(t, cfg, env, "bottle", "rm", "-f", name); r.code != 0 {
				t.Fatalf("rm -f: %d %s", r.code, r.stderr)
			}
			testenv.NothingLeft(t, eng, bottleIn(cfg, env, name, repo))
			if _, err := fakestate.ReadRecord(fakeState, p.Smolvm.MachineName); err == nil {
				t.Error("the machine is still there after rm")
			}
			if left := guestProcesses(fakestate.RootfsDir(fakeState, p.Smolvm.MachineName)); len(left) > 0 {
				t.Errorf("guest processes left after rm: %v", left)
			}
			if mode != "bridge" {
				return
			}

			// Attached from a terminal: the user types to the agent, the
			// exit code is the agent's, --rm removes the bottle.
			name2 := name + "-a"
			code, screen = onTerminal(t, cfg, env, []string{"bottle", "run", "--rm", "--backend", "smolvm", "--network-mode", mode,
				"--name", name2, "--progress", "quiet", repo}, "line3", "attached\r")
			if code != 7 || !strings.Contains(screen, "read:attached") {
				t.Errorf("run attached: exit %d, screen:\n%q", code, screen)
			}
			if _, err := svc.Load(name2); err == nil {
				t.Errorf("bottle %s left after run --rm", name2)
			}
		})
	}
}

// recordedSmolvm builds the contract fake behind a wrapper that records
// every smolvm invocation in calls, one a line, arguments separated by
// \x1f (readCalls reads them).
func recordedSmolvm(t *testing.T) (wrapper, calls string) {
	t.Helper()
	dir := t.TempDir()
	fake, err := smolvmtest.BuildFake(dir)
	if err != nil {
		t.Fatal(err)
	}
	calls = filepath.Join(dir, "calls")
	wrapper = filepath.Join(dir, "smolvm-recorded")
	script := "#!/bin/sh\nline=''\nfor a in \"$@\"; do line=\"$line$a$(printf '\\037')\"; done\nprintf '%s\\n' \"$line\" >> " +
		calls + "\nexec " + fake + " \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return wrapper, calls
}

// waitLogs polls `docker bottle logs` until it holds want.
func waitLogs(t *testing.T, cfg string, env []string, name, want string) string {
	t.Helper()
	return waitLogsN(t, cfg, env, name, want, 1)
}

// waitLogsN waits until want is in the bottle's logs n times.
func waitLogsN(t *testing.T, cfg string, env []string, name, want string, n int) string {
	t.Helper()
	var r result
	for start := time.Now(); time.Since(start) < 60*time.Second; time.Sleep(300 * time.Millisecond) {
		r = docker(t, cfg, env, "bottle", "logs", name)
		if strings.Count(r.stdout, want) >= n {
			return r.stdout
		}
	}
	t.Fatalf("%q is not %d times in the logs (exit %d):\n%q\n%s", want, n, r.code, r.stdout, r.stderr)
	return ""
}

func countLines(path string) int {
	b, _ := os.ReadFile(path)
	return bytes.Count(b, []byte("\n"))
}

func readCalls(t *testing.T, path string) [][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		out = append(out, strings.Split(strings.TrimSuffix(l, "\x1f"), "\x1f"))
	}
	return out
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func containsPair(s []string, flag, value string) bool {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == flag && s[i+1] == value {
			return true
		}
	}
	return false
}

// guestProcesses lists the processes chrooted into a fake machine's root.
func guestProcesses(rootfs string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if root, err := os.Readlink("/proc/" + e.Name() + "/root"); err == nil && root == rootfs {
			pids = append(pids, pid)
		}
	}
	return pids
}
