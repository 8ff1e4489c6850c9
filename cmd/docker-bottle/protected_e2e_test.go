package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/docker-bottle/docker-bottle/bundle/protect"
	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/plan"
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
