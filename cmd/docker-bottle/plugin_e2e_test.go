//go:build e2e

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/docker/cli/cli/command"
	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/hostcheck"
	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/plugin"
	"github.com/docker-bottle/docker-bottle/provider"
	"github.com/docker-bottle/docker-bottle/smolvm/smolvmtest"
)

type result struct {
	stdout, stderr string
	code           int
}

// docker runs the real docker CLI with the plugin installed in a fresh
// DOCKER_CONFIG.
func docker(t *testing.T, cfg string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(testenv.DockerCLI(t), args...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+cfg, "DOCKER_BOTTLE_CACHE="+filepath.Join(cfg, "cache"))
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}

func TestHelpListsEverySubcommand(t *testing.T) {
	cfg := testenv.DockerConfig(t)
	r := docker(t, cfg, nil, "bottle", "--help")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	cli, err := command.NewDockerCli()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range plugin.NewRootCmd(cli).Commands() {
		if c.Hidden {
			continue
		}
		if !strings.Contains(r.stdout, c.Name()) || !strings.Contains(r.stdout, c.Short) {
			t.Errorf("help does not list %s (%q):\n%s", c.Name(), c.Short, r.stdout)
		}
	}
	// The plugin shows up among the CLI's own commands, described by
	// manifest.json.
	top := docker(t, cfg, nil, "--help")
	if !strings.Contains(top.stdout, "bottle*") {
		t.Errorf("docker --help does not list the plugin:\n%s", top.stdout)
	}
}

func doctorReport(t *testing.T, r result) hostcheck.Report {
	t.Helper()
	var rep hostcheck.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("doctor --format json printed no JSON (%v): %q %q", err, r.stdout, r.stderr)
	}
	return rep
}

func TestDoctorAgainstTheRealEngine(t *testing.T) {
	eng := testenv.Engine(t)
	v, err := eng.ServerVersion(context.Background(), client.ServerVersionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := testenv.DockerConfig(t)
	// No smolvm: auto must fall back to the docker backend.
	r := docker(t, cfg, []string{"DOCKER_BOTTLE_SMOLVM=", "PATH=" + filepath.Dir(testenv.DockerCLI(t)) + ":/usr/bin:/bin"},
		"bottle", "doctor", "--format", "json")
	rep := doctorReport(t, r)
	if r.code != 0 || !rep.CanRun {
		t.Fatalf("doctor exit %d, can_run %v: %s %s", r.code, rep.CanRun, rep.Reason, r.stderr)
	}
	e := rep.Facts.Engine
	if !e.Reachable || e.Version != v.Version || e.APIVersion == "" || e.OS != "linux" || e.Context != "default" {
		t.Errorf("engine facts %+v, engine says version %s", e, v.Version)
	}
	names := map[string]hostcheck.Status{}
	for _, c := range rep.Checks {
		names[c.Name] = c.Status
		if c.Status != hostcheck.OK && c.Remedy == "" && c.Name != "backend" {
			t.Errorf("check %s is %s without a remedy", c.Name, c.Status)
		}
	}
	for _, n := range []string{"engine", "buildx", "smolvm", "hypervisor", "state dir", "cache dir", "backend"} {
		if _, ok := names[n]; !ok {
			t.Errorf("doctor has no %q check: %v", n, names)
		}
	}
	if names["smolvm"] != hostcheck.Warn || rep.Choice == nil || rep.Choice.Backend != "docker" {
		t.Errorf("without smolvm: smolvm %s, choice %+v", names["smolvm"], rep.Choice)
	}
	if want := filepath.Join(cfg, "bottle"); !strings.Contains(r.stdout, want) {
		t.Errorf("the state dir is not under DOCKER_CONFIG (%s)", want)
	}

	// The table form says the same.
	tab := docker(t, cfg, nil, "bottle", "doctor")
	if tab.code != 0 || !strings.Contains(tab.stdout, "Bottles can run here") {
		t.Errorf("table doctor: exit %d\n%s%s", tab.code, tab.stdout, tab.stderr)
	}
}

func TestDoctorWithoutAnEngine(t *testing.T) {
	cfg := testenv.DockerConfig(t)
	sock := "unix://" + filepath.Join(t.TempDir(), "nothing.sock")
	r := docker(t, cfg, nil, "-H", sock, "bottle", "doctor", "--format", "json")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1: %s %s", r.code, r.stdout, r.stderr)
	}
	rep := doctorReport(t, r)
	if rep.CanRun || rep.Facts.Engine.Reachable || rep.Checks[0].Status != hostcheck.Fail ||
		!strings.Contains(rep.Reason, "no Docker engine answers") {
		t.Errorf("report %+v", rep)
	}
	if !strings.Contains(rep.Facts.Engine.Endpoint, "nothing.sock") {
		t.Errorf("-H was not honoured: endpoint %q", rep.Facts.Engine.Endpoint)
	}
}

func TestBadContextIsAClearError(t *testing.T) {
	cfg := testenv.DockerConfig(t)
	r := docker(t, cfg, nil, "--context", "nosuch", "bottle", "doctor")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1", r.code)
	}
	if !strings.Contains(r.stderr, "nosuch") || strings.Contains(r.stderr, "panic") || strings.Contains(r.stderr, "Usage:") {
		t.Errorf("stderr %q", r.stderr)
	}
}

func TestRunDryRunPrintsThePlanAndMakesNothing(t *testing.T) {
	testenv.Engine(t)
	cfg := testenv.DockerConfig(t)
	repo := filepath.Join(t.TempDir(), "Demo Repo")
	if err := os.Mkdir(repo, 0o755); err != nil {
		t.Fatal(err)
	}
	gitIn(t, repo, "init", "-q")
	gitIn(t, repo, "commit", "-q", "--allow-empty", "-m", "first")
	spec := "agent:\n  provider: shell\negress:\n  allow:\n    - host: example.test\n"
	if err := os.WriteFile(filepath.Join(repo, "bottle.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	r := docker(t, cfg, []string{"DOCKER_BOTTLE_SMOLVM="}, "bottle", "run", "--dry-run", "--format", "json",
		"--backend", "docker", "--prompt", "hello", repo)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var p plan.Plan
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil {
		t.Fatalf("plan is not JSON: %v\n%s", err, r.stdout)
	}
	if p.Slug != "demo-repo" || p.Backend != "docker" || p.Agent.Provider != "shell" || p.Docker == nil ||
		p.Egress.Allow[0].Host != "example.test" || !p.Bundle.IP.IsValid() {
		t.Errorf("plan %+v", p)
	}
	if _, err := os.Stat(filepath.Join(cfg, "bottle")); !os.IsNotExist(err) {
		t.Errorf("--dry-run created the state dir: %v", err)
	}

	bad := docker(t, cfg, nil, "bottle", "run", "--dry-run", "--backend", "vm", repo)
	if bad.code != 1 || !strings.Contains(bad.stderr, "not one of auto, smolvm, docker") || strings.Contains(bad.stderr, "Usage:") {
		t.Errorf("bad --backend: exit %d %q", bad.code, bad.stderr)
	}
	if err := os.WriteFile(filepath.Join(repo, "bottle.yaml"), []byte("agent:\n  provder: shell\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad = docker(t, cfg, nil, "bottle", "run", "--dry-run", repo)
	if bad.code != 1 || !strings.Contains(bad.stderr, "bottle.yaml:2:3: unknown field \"provder\"") {
		t.Errorf("bad spec: exit %d %q", bad.code, bad.stderr)
	}
}

// TestDoctorWithFakeSmolvm points DOCKER_BOTTLE_SMOLVM at the contract
// fake: a supported smolvm makes auto pick the microVM backend in bridge
// mode (rootful local engine), a too-old one is refused with the reason.
func TestDoctorWithFakeSmolvm(t *testing.T) {
	testenv.Engine(t)
	fake, err := smolvmtest.BuildFake(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := testenv.DockerConfig(t)
	state := "SMOLVM_FAKE_STATE=" + t.TempDir()

	r := docker(t, cfg, []string{"DOCKER_BOTTLE_SMOLVM=" + fake, state, "SMOLVM_FAKE_VERSION=1.9.3"},
		"bottle", "doctor", "--format", "json")
	rep := doctorReport(t, r)
	if r.code != 0 || rep.Facts.Smolvm.Version != "1.9.3" || rep.Choice == nil || rep.Choice.Backend != "smolvm" {
		t.Fatalf("exit %d, smolvm %+v, choice %+v", r.code, rep.Facts.Smolvm, rep.Choice)
	}
	if rep.Choice.NetworkMode != "bridge" || !strings.Contains(rep.Choice.Why, "rootful") {
		t.Errorf("network mode %+v", rep.Choice)
	}

	r = docker(t, cfg, []string{"DOCKER_BOTTLE_SMOLVM=" + fake, state, "SMOLVM_FAKE_VERSION=1.7.5"},
		"bottle", "doctor", "--format", "json")
	rep = doctorReport(t, r)
	var check hostcheck.Check
	for _, c := range rep.Checks {
		if c.Name == "smolvm" {
			check = c
		}
	}
	if check.Status != hostcheck.Fail || !strings.Contains(check.Detail, "1.8.0") || !strings.Contains(check.Detail, "allowlist") {
		t.Errorf("smolvm 1.7.5 check: %+v", check)
	}
	// The docker backend can still run, so doctor succeeds.
	if r.code != 0 || rep.Choice.Backend != "docker" {
		t.Errorf("with smolvm 1.7.5: exit %d, choice %+v", r.code, rep.Choice)
	}

	r = docker(t, cfg, []string{"DOCKER_BOTTLE_SMOLVM=" + fake, state, "SMOLVM_FAKE_VERSION=1.8.1"},
		"bottle", "doctor", "--format", "json")
	rep = doctorReport(t, r)
	if rep.Facts.Smolvm.Warning == "" || rep.Choice.Backend != "smolvm" {
		t.Errorf("smolvm 1.8.1 must warn and still be used: %+v %+v", rep.Facts.Smolvm, rep.Choice)
	}

	v := docker(t, cfg, []string{"DOCKER_BOTTLE_SMOLVM=" + fake, state, "SMOLVM_FAKE_VERSION=1.9.3"}, "bottle", "version")
	if v.code != 0 || !strings.Contains(v.stdout, "smolvm:  1.9.3") {
		t.Errorf("version: %q %q", v.stdout, v.stderr)
	}
	v = docker(t, cfg, []string{"DOCKER_BOTTLE_SMOLVM="}, "bottle", "version")
	if !strings.Contains(v.stdout, "smolvm:  not found") {
		t.Errorf("version without smolvm: %q", v.stdout)
	}
}

// TestExitCodesFollowDocker: usage errors of the plugin exit 125, an
// unknown subcommand 1, as docker's own commands do.
func TestExitCodesFollowDocker(t *testing.T) {
	cfg := testenv.DockerConfig(t)
	if r := docker(t, cfg, nil, "bottle", "doctor", "--bogus"); r.code != 125 || !strings.Contains(r.stderr, "unknown flag: --bogus") {
		t.Errorf("bad flag: exit %d %q", r.code, r.stderr)
	}
	if r := docker(t, cfg, nil, "bottle", "nosuch"); r.code != 1 || !strings.Contains(r.stderr, "unknown command") {
		t.Errorf("unknown subcommand: exit %d %q", r.code, r.stderr)
	}
	// The claude provider with no credential on the host refuses before
	// anything starts, and says what to set.
	repo := testenv.GitRepo(t)
	r := docker(t, cfg, []string{"ANTHROPIC_API_KEY=", "CLAUDE_CODE_OAUTH_TOKEN="}, "bottle", "run", repo)
	if r.code != 1 || !strings.Contains(r.stderr, "ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN") {
		t.Errorf("run without credentials: exit %d %q", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(cfg, "bottle", "bottles")); !os.IsNotExist(err) {
		t.Errorf("a refused run left a bottle: %v", err)
	}
}

// TestGlobalConfigFlag: `docker --config DIR bottle` finds the plugin in
// DIR/cli-plugins and keeps its state under DIR/bottle.
func TestGlobalConfigFlag(t *testing.T) {
	testenv.Engine(t)
	cfg := testenv.DockerConfig(t)
	elsewhere := t.TempDir() // DOCKER_CONFIG without the plugin
	r := docker(t, elsewhere, nil, "--config", cfg, "bottle", "doctor", "--format", "json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	rep := doctorReport(t, r)
	var detail string
	for _, c := range rep.Checks {
		if c.Name == "state dir" {
			detail = c.Detail
		}
	}
	if !strings.HasPrefix(detail, filepath.Join(cfg, "bottle")) {
		t.Errorf("state dir %q is not under --config %s", detail, cfg)
	}
}

// TestRunWithoutSpecUsesClaude: in a git repository with no bottle.yaml,
// `docker bottle run` is Claude Code with its defaults: the provider's
// command, api.anthropic.com alone on the allowlist, the key as a proxy
// secret and only its placeholder in the agent's env. With no credential
// on the host, the run stops before making anything and says what to set.
func TestRunWithoutSpecUsesClaude(t *testing.T) {
	testenv.Engine(t)
	cfg := testenv.DockerConfig(t)
	repo := testenv.GitRepo(t)
	if _, err := os.Stat(filepath.Join(repo, "bottle.yaml")); !os.IsNotExist(err) {
		t.Fatalf("the test repository has a bottle.yaml: %v", err)
	}
	realKey := "sk-ant-api03-" + randomHexT(t, 16)
	r := docker(t, cfg, []string{"DOCKER_BOTTLE_SMOLVM=", "ANTHROPIC_API_KEY=" + realKey, "CLAUDE_CODE_OAUTH_TOKEN="},
		"bottle", "run", "--dry-run", "--format", "json", "--backend", "docker", repo)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, realKey) {
		t.Error("the real key is in the plan")
	}
	var p plan.Plan
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil {
		t.Fatalf("plan is not JSON: %v\n%s", err, r.stdout)
	}
	a := p.Spec.Agent
	if a.Provider != "claude" || !slices.Equal(a.Command, []string{"claude", "--dangerously-skip-permissions"}) ||
		a.Env["ANTHROPIC_API_KEY"] != provider.AnthropicAPIKeyPlaceholder {
		t.Errorf("agent %+v", a)
	}
	if len(p.Spec.Egress.Allow) != 1 || p.Spec.Egress.Allow[0].Host != provider.AnthropicAPIHost ||
		!slices.Equal(p.Spec.Egress.Allow[0].Ports, []int{443}) {
		t.Errorf("egress allow %+v", p.Spec.Egress.Allow)
	}
	var headers []string
	for _, s := range p.Spec.Egress.Secrets {
		if s.Host != provider.AnthropicAPIHost {
			t.Errorf("secret for %s", s.Host)
		}
		headers = append(headers, s.Header+"<-"+s.FromEnv)
	}
	if !slices.Equal(headers, []string{"x-api-key<-ANTHROPIC_API_KEY", "Authorization<-CLAUDE_CODE_OAUTH_TOKEN"}) {
		t.Errorf("secrets %v", headers)
	}

	none := docker(t, cfg, []string{"DOCKER_BOTTLE_SMOLVM=", "ANTHROPIC_API_KEY=", "CLAUDE_CODE_OAUTH_TOKEN="},
		"bottle", "run", "--backend", "docker", repo)
	if none.code != 1 || !strings.Contains(none.stderr, "export ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN") {
		t.Errorf("no credential: exit %d %q", none.code, none.stderr)
	}
	if ls := docker(t, cfg, nil, "bottle", "ls", "-a", "-q"); ls.code != 0 || strings.TrimSpace(ls.stdout) != "" {
		t.Errorf("a run refused for want of a credential left a bottle: %q %q", ls.stdout, ls.stderr)
	}
}
