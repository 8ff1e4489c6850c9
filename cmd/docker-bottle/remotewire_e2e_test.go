//go:build e2e

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/bringup"
	"github.com/docker-bottle/docker-bottle/hostcheck"
	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/plan"
)

// pathWithout is PATH without the dirs that hold file.
func pathWithout(file string) string {
	var keep []string
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if _, err := os.Stat(filepath.Join(dir, file)); err != nil {
			keep = append(keep, dir)
		}
	}
	return strings.Join(keep, string(os.PathListSeparator))
}

// A bottle whose bundle is reached through the engine API, as on a remote
// engine (hostcheck.EnvThroughEngine on the local one): `run` refuses,
// before making anything, when git cannot find git-remote-bottle; with it,
// bring-up waits for the bundle's health through the engine, the remote
// registered in the user's repository is bottle::NAME, and the agent's
// pushed work reaches the user through it with real git (`docker bottle
// diff`, `git fetch bottle-NAME`); `rm` leaves no remote.
func TestRunThroughTheEngineFetchesThroughTheRemoteHelper(t *testing.T) {
	t.Parallel()
	eng := testenv.Engine(t)
	base := testenv.Debian(t, eng)
	cfg := testenv.DockerConfig(t)
	name := fmt.Sprintf("rw-%d", time.Now().UnixNano()%1e6)
	repo := pushingShellRepo(t, base, pushWork, "")
	run := []string{"bottle", "run", "-d", "--backend", "docker", "--name", name, "--progress", "plain", repo}

	env := []string{hostcheck.EnvThroughEngine + "=1", "DOCKER_BOTTLE_SMOLVM=",
		"PATH=" + remoteHelper(t) + string(os.PathListSeparator) + os.Getenv("PATH")}
	removedAtEnd(t, cfg, env, name, repo)
	without := []string{hostcheck.EnvThroughEngine + "=1", "DOCKER_BOTTLE_SMOLVM=", "PATH=" + pathWithout("git-remote-bottle")}
	if r := docker(t, cfg, without, run...); r.code == 0 || !strings.Contains(r.stderr, "git-remote-bottle") || !strings.Contains(r.stderr, "make install") {
		t.Errorf("run without git-remote-bottle where git finds it: exit %d, want a refusal naming the remedy:\n%s", r.code, r.stderr)
	}
	testenv.NothingLeft(t, eng, bottleIn(cfg, without, name, repo))

	since := time.Now().Add(-time.Second).Unix()
	r := docker(t, cfg, env, run...)
	if r.code != 0 || strings.TrimSpace(r.stdout) != name {
		t.Fatalf("run -d: exit %d, stdout %q\n%s", r.code, r.stdout, r.stderr)
	}
	healthThroughEngine(t, cfg, nil, name, since, "bring-up")
	remote := "bottle-" + name
	if url := strings.TrimSpace(gitIn(t, repo, "config", "--get", "remote."+remote+".url")); url != "bottle::"+name {
		t.Errorf("the registered remote %s fetches from %q, want bottle::%s", remote, url, name)
	}

	var logs string
	for start := time.Now(); time.Since(start) < 90*time.Second && !strings.Contains(logs, "pushed"); time.Sleep(300 * time.Millisecond) {
		logs = docker(t, cfg, nil, "bottle", "logs", name).stdout
	}
	if !strings.Contains(logs, "pushed") {
		t.Fatalf("the agent did not push:\n%s", logs)
	}
	if d := docker(t, cfg, env, "bottle", "diff", name); d.code != 0 || !strings.Contains(d.stdout, "+work") {
		t.Errorf("diff through the remote helper: exit %d %q %q", d.code, d.stdout, d.stderr)
	}
	fetch := exec.Command("git", "-C", repo, "fetch", "-q", remote)
	fetch.Env = append(os.Environ(), "DOCKER_CONFIG="+cfg)
	fetch.Env = append(fetch.Env, env...)
	if out, err := fetch.CombinedOutput(); err != nil {
		t.Fatalf("git fetch %s: %v\n%s", remote, err, out)
	}
	if out := gitIn(t, repo, "show", remote+"/work:agent.txt"); out != "work\n" {
		t.Errorf("agent.txt on %s/work: %q", remote, out)
	}

	if r := docker(t, cfg, env, "bottle", "rm", "-f", name); r.code != 0 {
		t.Fatalf("rm -f: exit %d %s", r.code, r.stderr)
	}
	if out, err := exec.Command("git", "-C", repo, "config", "--get", "remote."+remote+".url").CombinedOutput(); err == nil {
		t.Errorf("rm left the remote %s: %s", remote, out)
	}
}

// healthThroughEngine fails the test when, since the Unix time since, no
// exec of the bundle's dial to its supervisor ran in bottle name's bundle:
// what step asked the bundle's health did not ask it through the engine.
func healthThroughEngine(t *testing.T, cfg string, env []string, name string, since int64, step string) {
	t.Helper()
	execs := docker(t, cfg, env, "events", "--since", strconv.FormatInt(since, 10), "--until", strconv.FormatInt(time.Now().Unix()+1, 10),
		"--filter", "container=bottle-"+name+"-bundle", "--filter", "event=exec_start", "--format", "{{.Action}}")
	if want := bringup.BinaryPath + " dial 127.0.0.1:" + strconv.Itoa(plan.SupervisePort); !strings.Contains(execs.stdout, want) {
		t.Errorf("%s did not ask the bundle's health through the engine (no exec of %q):\n%s", step, want, execs.stdout)
	}
}

// `docker bottle port` on a remote engine (here -H with an address of
// TEST-NET-1, which no one answers) is refused with the reason before
// anything asks the engine: the agent's ports would be on that host's
// loopback.
func TestPortRefusedOnARemoteEngine(t *testing.T) {
	t.Parallel()
	cfg := testenv.DockerConfig(t)
	for _, args := range [][]string{{"port", "somebottle"}, {"port", "somebottle", "8080"}} {
		r := docker(t, cfg, nil, append([]string{"-H", "tcp://192.0.2.1:2376", "bottle"}, args...)...)
		if r.code == 0 || !strings.Contains(r.stderr, "tcp://192.0.2.1:2376 is on another host") || !strings.Contains(r.stderr, "cannot reach") {
			t.Errorf("bottle %v on a remote engine: exit %d, want the refusal with its reason:\n%s", args, r.code, r.stderr)
		}
	}
}
