//go:build e2e

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/internal/testenv"
)

// TestRunLifecycleDockerBackend is a user's session on the docker backend,
// through the real docker CLI: `run -d` of an agent (built from the user's
// Dockerfile on a local Debian base) that commits and pushes; `ls`, `logs`,
// `exec`; the agent's branch fetched on the host through the registered
// remote; `stop`, `start`, with the agent's uncommitted files kept on its
// disk; `rm` refused while running, then `rm -f`, which leaves nothing.
func TestRunLifecycleDockerBackend(t *testing.T) {
	t.Parallel()
	eng := testenv.Engine(t)
	base := testenv.Debian(t, eng)
	cfg := testenv.DockerConfig(t)
	name := fmt.Sprintf("lc-%d", time.Now().UnixNano()%1e6)
	repo := pushingShellRepo(t, base, `echo "hello from the agent in $(pwd)"
`+pushWork+`
git push -q origin HEAD:refs/heads/main 2>&1 | sed 's/^/main: /'`, "")
	// Work the user has not committed stays with the user; run says so.
	if err := os.WriteFile(filepath.Join(repo, "wip.txt"), []byte("mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	r := docker(t, cfg, []string{"DOCKER_BOTTLE_SMOLVM="}, "bottle", "run", "-d", "--backend", "docker", "--name", name, "--progress", "plain", repo)
	if r.code != 0 || strings.TrimSpace(r.stdout) != name {
		t.Fatalf("run -d: exit %d, stdout %q\n%s", r.code, r.stdout, r.stderr)
	}
	removedAtEnd(t, cfg, nil, name, repo)
	if !strings.Contains(r.stderr, "1 uncommitted change(s)") {
		t.Errorf("run did not say that uncommitted work stays behind:\n%s", r.stderr)
	}

	var logs string
	for start := time.Now(); time.Since(start) < 90*time.Second; time.Sleep(300 * time.Millisecond) {
		logs = docker(t, cfg, nil, "bottle", "logs", name).stdout
		if strings.Contains(logs, "main: ") {
			break
		}
	}
	if !strings.Contains(logs, "hello from the agent in /workspace") || !strings.Contains(logs, "pushed") {
		t.Fatalf("agent logs:\n%s", logs)
	}
	if !strings.Contains(logs, "refs/heads/main is not writable from this bottle") {
		t.Errorf("the push to main was not refused with the gate's reason:\n%s", logs)
	}

	// As docker logs: times on each line, and a window.
	if l := docker(t, cfg, nil, "bottle", "logs", "-t", "--since", "10m", name); l.code != 0 ||
		!regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z hello from the agent`).MatchString(l.stdout) {
		t.Errorf("logs -t --since: exit %d %q %q", l.code, l.stdout, l.stderr)
	}
	if l := docker(t, cfg, nil, "bottle", "logs", "--until", "2000-01-01T00:00:00Z", name); l.code != 0 || strings.Contains(l.stdout, "hello") {
		t.Errorf("logs --until before the run: exit %d %q", l.code, l.stdout)
	}
	var row struct{ Name, State, Backend, Branch string }
	ls := docker(t, cfg, nil, "bottle", "ls", "--format", "json")
	if err := json.Unmarshal([]byte(strings.TrimSpace(ls.stdout)), &row); err != nil || row.Name != name || row.State != "running" || row.Backend != "docker" {
		t.Errorf("ls: %q %v %+v", ls.stdout, err, row)
	}
	if q := docker(t, cfg, nil, "bottle", "ls", "-q"); strings.TrimSpace(q.stdout) != name {
		t.Errorf("ls -q: %q", q.stdout)
	}
	if e := docker(t, cfg, nil, "bottle", "exec", name, "--", "test", "-e", "/workspace/wip.txt"); e.code != 1 {
		t.Errorf("the user's uncommitted file reached the bottle: exit %d", e.code)
	}
	if e := docker(t, cfg, nil, "bottle", "exec", name, "--", "cat", "/workspace/agent.txt"); e.code != 0 || e.stdout != "work\n" {
		t.Errorf("exec: exit %d %q %q", e.code, e.stdout, e.stderr)
	}
	if e := docker(t, cfg, nil, "bottle", "exec", name, "--", "sh", "-c", "exit 3"); e.code != 3 {
		t.Errorf("exec exit code: %d", e.code)
	}

	// The user reviews the agent's work with plain git.
	remote := "bottle-" + name
	gitIn(t, repo, "fetch", "-q", remote)
	if out := gitIn(t, repo, "show", remote+"/work:agent.txt"); out != "work\n" {
		t.Errorf("agent.txt on %s/work: %q", remote, out)
	}
	// Or in one command: what the agent changed since it left main.
	if d := docker(t, cfg, nil, "bottle", "diff", name, "--", "--stat"); d.code != 0 ||
		!regexp.MustCompile(`agent\.txt \| 1 \+\n 1 file changed, 1 insertion`).MatchString(d.stdout) {
		t.Errorf("diff --stat: exit %d %q %q", d.code, d.stdout, d.stderr)
	}
	if d := docker(t, cfg, nil, "bottle", "diff", name); d.code != 0 || !strings.Contains(d.stdout, "+work") {
		t.Errorf("diff: exit %d %q %q", d.code, d.stdout, d.stderr)
	}

	// On the user's terminal, exec -it gives the command a terminal.
	if code, screen := onTerminal(t, cfg, nil, []string{"bottle", "exec", "-it", name, "--", "sh", "-c", "test -t 0 && test -t 1 && echo on-a-tty"},
		"on-a-tty", ""); code != 0 {
		t.Errorf("exec -it on a terminal: exit %d\n%s", code, screen)
	}
	// Work the agent has not committed yet, in its workspace and its home.
	if e := docker(t, cfg, nil, "bottle", "exec", name, "--", "sh", "-c", "echo draft > /workspace/draft.txt && echo note > $HOME/note.txt"); e.code != 0 {
		t.Fatalf("exec: exit %d %q", e.code, e.stderr)
	}
	if r := docker(t, cfg, nil, "bottle", "stop", name); r.code != 0 {
		t.Fatalf("stop: %d %s", r.code, r.stderr)
	}
	if q := docker(t, cfg, nil, "bottle", "ls", "-q"); strings.TrimSpace(q.stdout) != "" {
		t.Errorf("ls shows a stopped bottle: %q", q.stdout)
	}
	if a := docker(t, cfg, nil, "bottle", "ls", "-a", "--format", "{{.Name}} {{.State}}"); strings.TrimSpace(a.stdout) != name+" exited" {
		t.Errorf("ls -a: %q", a.stdout)
	}
	if r := docker(t, cfg, nil, "bottle", "start", name); r.code != 0 {
		t.Fatalf("start: %d %s", r.code, r.stderr)
	}
	if a := docker(t, cfg, nil, "bottle", "ls", "--format", "{{.Name}} {{.State}}"); strings.TrimSpace(a.stdout) != name+" running" {
		t.Errorf("ls after start: %q", a.stdout)
	}
	// The agent's disk outlived the stop: nothing uncommitted was lost.
	if e := docker(t, cfg, nil, "bottle", "exec", name, "--", "sh", "-c", "cat /workspace/draft.txt $HOME/note.txt"); e.code != 0 || e.stdout != "draft\nnote\n" {
		t.Errorf("after stop and start, the agent's uncommitted files: exit %d %q %q", e.code, e.stdout, e.stderr)
	}

	if r := docker(t, cfg, nil, "bottle", "rm", name); r.code != 1 || !strings.Contains(r.stderr, "is running") {
		t.Errorf("rm of a running bottle: exit %d %q", r.code, r.stderr)
	}
	svc := serviceOf(t, cfg)
	p, err := svc.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	if r := docker(t, cfg, nil, "bottle", "rm", "-f", name); r.code != 0 {
		t.Fatalf("rm -f: %d %s", r.code, r.stderr)
	}
	testenv.NothingLeft(t, eng, testenv.Bottle{Name: p.Slug, State: stateOf(cfg).State, Repo: p.Workspace})
}

func gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.test"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// TestRunRefusesAForeignVolume: a volume that has the name of the bottle's
// disk but is not the bottle's (the user's own) is never mounted into the
// bottle: the run stops with the reason and leaves nothing of its own.
func TestRunRefusesAForeignVolume(t *testing.T) {
	eng := testenv.Engine(t)
	base := testenv.Debian(t, eng)
	cfg := testenv.DockerConfig(t)
	repo := testenv.GitRepo(t)
	name := fmt.Sprintf("fv-%d", time.Now().UnixNano()%1e6)
	spec := fmt.Sprintf("agent:\n  provider: shell\n  image: %s\n  command: [sh, -c, 'echo should not run']\n", base)
	if err := os.WriteFile(filepath.Join(repo, "bottle.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	volume := "bottle-" + name + "-workspace"
	if _, err := eng.VolumeCreate(context.Background(), client.VolumeCreateOptions{Name: volume}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.VolumeRemove(context.Background(), volume, client.VolumeRemoveOptions{Force: true}) })

	r := docker(t, cfg, []string{"DOCKER_BOTTLE_SMOLVM="}, "bottle", "run", "--backend", "docker", "--name", name, "--progress", "plain", repo)
	if r.code != 1 || !strings.Contains(r.stderr, "a volume named "+volume+" exists and is not this bottle's disk") || strings.Contains(r.stdout, "should not run") {
		t.Fatalf("run with a foreign volume: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	testenv.NothingLeft(t, eng, bottleIn(cfg, nil, name, repo))
	if ls := docker(t, cfg, nil, "bottle", "ls", "-a", "-q"); strings.TrimSpace(ls.stdout) != "" {
		t.Errorf("the failed run left a bottle: %q", ls.stdout)
	}
	if v, err := eng.VolumeInspect(context.Background(), volume, client.VolumeInspectOptions{}); err != nil || len(v.Volume.Labels) != 0 {
		t.Errorf("the user's volume was changed or removed: %+v %v", v.Volume, err)
	}
}
