//go:build e2e

package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/bottles"
	"github.com/docker-bottle/docker-bottle/bundle/protect"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor/api"
	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/provider"
	"github.com/docker-bottle/docker-bottle/spec"
)

// TestConfigShowsEffectiveProtectedPaths: `docker bottle config` in a
// repository, and the plan `run` makes from it, list the default protected
// paths, the spec file and the agent's Dockerfile and .dockerignore files as
// configured (relative to the repository root), minus what bottle.yaml
// removes, plus what it adds.
func TestConfigShowsEffectiveProtectedPaths(t *testing.T) {
	cfg := testenv.DockerConfig(t)
	repo := testenv.GitRepo(t)
	sub := filepath.Join(repo, "agent")
	if err := os.MkdirAll(filepath.Join(sub, "image"), 0o755); err != nil {
		t.Fatal(err)
	}
	yml := "agent:\n  provider: shell\n  dockerfile: image/Dockerfile\n  context: image\n" +
		"git:\n  protected_paths:\n    add: [deploy/**]\n    remove: [.envrc]\n"
	if err := os.WriteFile(filepath.Join(sub, "bottle.yaml"), []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	// run --dry-run checks the Dockerfile exists, as run does.
	if err := os.WriteFile(filepath.Join(sub, "image", "Dockerfile"), []byte("FROM scratch\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	want := slices.DeleteFunc(protect.Defaults(), func(s string) bool { return s == ".envrc" })
	want = append(want, "agent/bottle.yaml", "agent/image/Dockerfile", "agent/image/Dockerfile.dockerignore",
		"agent/image/.dockerignore", "deploy/**")

	cmd := exec.Command(testenv.DockerCLI(t), "bottle", "config", "--format", "json")
	cmd.Dir = sub
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+cfg)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("docker bottle config: %v\n%s", err, out)
	}
	var s struct {
		Git struct {
			ProtectedPaths struct {
				Remove, Effective []string
			} `json:"protected_paths"`
		} `json:"git"`
	}
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatalf("config is not JSON: %v\n%s", err, out)
	}
	if got := s.Git.ProtectedPaths.Effective; !slices.Equal(got, want) {
		t.Errorf("config's effective protected paths\n%v\nwant\n%v", got, want)
	}

	testenv.Engine(t)
	r := docker(t, cfg, []string{"DOCKER_BOTTLE_SMOLVM="}, "bottle", "run", "--dry-run", "--format", "json",
		"--backend", "docker", "-f", filepath.Join(sub, "bottle.yaml"), repo)
	if r.code != 0 {
		t.Fatalf("run --dry-run: exit %d: %s", r.code, r.stderr)
	}
	var p plan.Plan
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil {
		t.Fatalf("plan is not JSON: %v\n%s", err, r.stdout)
	}
	if !slices.Equal(p.GitGate.ProtectedPaths, want) {
		t.Errorf("the gate's plan protects\n%v\nwant\n%v", p.GitGate.ProtectedPaths, want)
	}
}

// gitRun runs the real git in dir as the agent would, and returns its
// combined output.
func gitRun(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=agent", "GIT_AUTHOR_EMAIL=agent@example.test",
		"GIT_COMMITTER_NAME=agent", "GIT_COMMITTER_EMAIL=agent@example.test")
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func mustGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := gitRun(dir, args...)
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func commitFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	full := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	mustGit(t, dir, "add", "-A")
	mustGit(t, dir, "commit", "-q", "-m", "commit "+name)
	return mustGit(t, dir, "rev-parse", "HEAD")
}

// upBottle prepares a bottle on repo from specYAML and brings its real
// bundle up, as run does before it starts the agent.
func upBottle(t *testing.T, cfg, specYAML, repo string) (*bottles.Service, plan.Plan) {
	t.Helper()
	ctx := context.Background()
	svc := serviceOf(t, cfg)
	prov, _ := provider.Get(spec.ProviderShell)
	s, err := spec.Parse("bottle.yaml", []byte(specYAML))
	if err != nil {
		t.Fatal(err)
	}
	p, err := svc.Prepare(ctx, bottles.PrepareOptions{Spec: s.Resolve(prov.Defaults), Workspace: repo,
		Provider: prov.Plan(), Choice: plan.Choice{Backend: spec.BackendSmolvm, NetworkMode: spec.NetworkBridge}})
	if err != nil {
		t.Fatal(err)
	}
	removedWith(t, svc, cfg, p)
	if p, err = svc.BringUp(ctx, p, bottles.BringUpOptions{}); err != nil {
		t.Fatal(err)
	}
	return svc, p
}

// agentClone clones the bottle's gate as the agent does.
func agentClone(t *testing.T, p plan.Plan) string {
	t.Helper()
	tok, err := os.ReadFile(p.AgentTokenFile)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "clone")
	mustGit(t, filepath.Dir(dir), "clone", "-q", "http://bottle:"+strings.TrimSpace(string(tok))+"@"+p.Endpoints.HostGitGate+"/repo.git", dir)
	return dir
}

// TestPushCheckedAgainstTheStart: the bottle records where it starts (the
// user's branch at prepare) and its real gate refuses a branch that revives
// a workflow deleted before that, though no new commit touches it (review
// M3, attack 7).
func TestPushCheckedAgainstTheStart(t *testing.T) {
	t.Parallel()
	cfg := testenv.DockerConfig(t)
	repo := testenv.GitRepo(t)
	old := commitFile(t, repo, ".github/workflows/deploy.yml", "on: push\njobs: {deploy: {runs-on: x, steps: [{run: deploy}]}}\n")
	mustGit(t, repo, "rm", "-q", ".github/workflows/deploy.yml")
	mustGit(t, repo, "commit", "-q", "-m", "drop the deploy workflow")
	start := mustGit(t, repo, "rev-parse", "HEAD")

	_, p := upBottle(t, cfg, "name: start-"+strings.ToLower(randomHexT(t, 3))+"\n", repo)
	if p.GitGate.StartCommit != start || p.GitGate.StartRef != "refs/heads/main" {
		t.Errorf("plan start %s %s, want %s refs/heads/main", p.GitGate.StartRef, p.GitGate.StartCommit, start)
	}
	data, err := os.ReadFile(filepath.Join(p.StageDir, "bundle.json"))
	if err != nil {
		t.Fatal(err)
	}
	var bc struct {
		Gate struct {
			Start struct{ Commit, Ref string } `json:"start"`
		} `json:"gate"`
	}
	if err := json.Unmarshal(data, &bc); err != nil || bc.Gate.Start.Commit != start {
		t.Errorf("the gate's configuration starts at %+v (%v), want %s", bc.Gate.Start, err, start)
	}

	c := agentClone(t, p)
	mustGit(t, c, "checkout", "-q", "-b", "revive", old)
	commitFile(t, c, "notes.txt", "harmless\n")
	out, err := gitRun(c, "push", "origin", "HEAD:refs/heads/"+p.GitGate.Branch)
	if err == nil || !strings.Contains(out, "touches protected path .github/workflows/deploy.yml") {
		t.Errorf("push reviving a deleted workflow: %v\n%s", err, out)
	}
	mustGit(t, c, "checkout", "-q", "-b", "fine", "origin/main")
	commitFile(t, c, "notes.txt", "harmless\n")
	mustGit(t, c, "push", "-q", "origin", "HEAD:refs/heads/"+p.GitGate.Branch)
}

// TestPushAllowAlwaysIsScoped is the review's attack 6 (M2) through a real
// bundle and the real CLI: `docker bottle approve --always` on a push that
// changes a workflow lets a later push with the same change through, and a
// push that changes it again is held again, its request naming the paths
// and their sizes.
func TestPushAllowAlwaysIsScoped(t *testing.T) {
	t.Parallel()
	cfg := testenv.DockerConfig(t)
	repo := testenv.GitRepo(t)
	commitFile(t, repo, ".github/workflows/lint.yml", "on: push\n")
	_, p := upBottle(t, cfg, "name: always-"+strings.ToLower(randomHexT(t, 3))+"\nsupervise:\n  approvals: [push]\n  timeout: 60s\n", repo)
	c := agentClone(t, p)
	ref := "HEAD:refs/heads/" + p.GitGate.Branch

	pushHeld := func(decide ...string) (api.Approval, string, error) {
		type result struct {
			out string
			err error
		}
		ch := make(chan result, 1)
		go func() { out, err := gitRun(c, "push", "origin", ref); ch <- result{out, err} }()
		var held api.Approval
		for start := time.Now(); held.ID == "" && time.Since(start) < 30*time.Second; time.Sleep(100 * time.Millisecond) {
			r := docker(t, cfg, nil, "bottle", "approvals", p.Slug, "--format", "json")
			for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
				if line != "" && json.Unmarshal([]byte(line), &held) == nil && held.Kind == "push" {
					break
				}
				held = api.Approval{}
			}
		}
		if held.ID == "" {
			t.Fatal("no push was held for a decision")
		}
		if r := docker(t, cfg, nil, append(append([]string{"bottle"}, decide...), p.Slug, held.ID)...); r.code != 0 {
			t.Fatalf("%v: exit %d %s", decide, r.code, r.stderr)
		}
		res := <-ch
		return held, res.out, res.err
	}

	commitFile(t, c, ".github/workflows/lint.yml", "# lint\non: push\n")
	held, out, err := pushHeld("approve", "--always")
	if err != nil {
		t.Fatalf("approved push: %v\n%s", err, out)
	}
	if !strings.Contains(held.Detail, ".github/workflows/lint.yml (9 bytes -> 16 bytes)") {
		t.Errorf("the request shows %q", held.Detail)
	}
	commitFile(t, c, "src/more.txt", "more\n")
	if out, err := gitRun(c, "push", "origin", ref); err != nil {
		t.Fatalf("a push with the change allowed always was not let through: %v\n%s", err, out)
	}
	commitFile(t, c, ".github/workflows/lint.yml", "on: push\njobs: {x: {runs-on: y, steps: [{run: curl evil}]}}\n")
	held, out, err = pushHeld("deny")
	if err == nil || !strings.Contains(out, "a human denied it") {
		t.Errorf("the changed workflow: %v\n%s", err, out)
	}
	if !strings.Contains(held.Detail, ".github/workflows/lint.yml (9 bytes -> ") {
		t.Errorf("the second request shows %q", held.Detail)
	}
}
