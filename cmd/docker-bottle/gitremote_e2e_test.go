//go:build e2e

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/bringup"
	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/plan"
)

var (
	remoteHelperOnce sync.Once
	remoteHelperDir  string
	remoteHelperErr  error
	remoteHelperOut  []byte
)

// remoteHelper builds git-remote-bottle once per test process and returns
// the dir that holds it, for PATH (removed when the tests end: TestMain).
func remoteHelper(t *testing.T) string {
	t.Helper()
	remoteHelperOnce.Do(func() {
		if remoteHelperDir, remoteHelperErr = testenv.ProcessDir("git-remote-bottle-*"); remoteHelperErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(remoteHelperDir, "git-remote-bottle"), "./cmd/git-remote-bottle")
		cmd.Dir = testenv.ModuleRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		remoteHelperOut, remoteHelperErr = cmd.CombinedOutput()
	})
	if remoteHelperErr != nil {
		t.Fatalf("building git-remote-bottle: %v\n%s", remoteHelperErr, remoteHelperOut)
	}
	return remoteHelperDir
}

// Real git fetches the agent's pushed branch from a bottle's gate with
// `git fetch bottle::NAME`: git-remote-bottle finds the bottle and its
// engine as the plugin does and reaches the gate through the engine API
// (execs of the bundle's dial), with the gate's token on no command line.
func TestGitFetchThroughTheRemoteHelper(t *testing.T) {
	t.Parallel()
	cfg := testenv.DockerConfig(t)
	repo := testenv.GitRepo(t)
	_, p := upBottle(t, cfg, "name: gitremote-"+strings.ToLower(randomHexT(t, 3))+"\n", repo)

	agent := agentClone(t, p)
	mustGit(t, agent, "checkout", "-q", "-b", "work")
	pushed := commitFile(t, agent, "agent.txt", "the agent's work\n")
	mustGit(t, agent, "push", "-q", "origin", "HEAD:refs/heads/"+p.GitGate.Branch)

	since := time.Now().Add(-time.Second).Unix()
	fetch := exec.Command("git", "fetch", "bottle::"+p.Slug, "refs/heads/"+p.GitGate.Branch+":refs/remotes/from-bottle/work")
	fetch.Dir = repo
	fetch.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0", "DOCKER_CONFIG="+cfg,
		"PATH="+remoteHelper(t)+string(os.PathListSeparator)+os.Getenv("PATH"))
	if out, err := fetch.CombinedOutput(); err != nil {
		t.Fatalf("git fetch bottle::%s: %v\n%s", p.Slug, err, out)
	}
	if got := mustGit(t, repo, "rev-parse", "refs/remotes/from-bottle/work"); got != pushed {
		t.Errorf("fetched %s, the agent pushed %s", got, pushed)
	}

	execs := docker(t, cfg, nil, "events", "--since", strconv.FormatInt(since, 10), "--until", strconv.FormatInt(time.Now().Unix()+1, 10),
		"--filter", "container="+p.Bundle.Container, "--filter", "event=exec_start", "--format", "{{.Action}}")
	want := "exec_start: " + bringup.BinaryPath + " dial 127.0.0.1:" + strconv.Itoa(plan.GatePort)
	if !strings.Contains(execs.stdout, want) {
		t.Errorf("the engine saw no %q in the bundle for the fetch:\n%s", want, execs.stdout)
	}
	tok, err := os.ReadFile(p.AgentTokenFile)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(execs.stdout, strings.TrimSpace(string(tok))) {
		t.Errorf("the gate token is on an exec's command line: %s", execs.stdout)
	}

	// Pushing is the agent's, not the user's: the helper says so.
	push := exec.Command("git", "push", "bottle::"+p.Slug, "HEAD:refs/heads/"+p.GitGate.Branch)
	push.Dir = repo
	push.Env = fetch.Env
	if out, err := push.CombinedOutput(); err == nil {
		t.Errorf("git push to bottle::%s succeeded:\n%s", p.Slug, out)
	}
}
