//go:build e2e

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/smolvm/smolvmtest"
)

// TestDryRunRefusesWhatRunRefuses goes through every refusal `run` makes
// before it would make anything, through the real docker CLI: `run
// --dry-run` and `run` with the same input fail with the same stderr and
// exit code, and neither leaves a bottle, a stage dir, a subnet
// reservation, an engine object or a git remote behind.
func TestDryRunRefusesWhatRunRefuses(t *testing.T) {
	eng := testenv.Engine(t)
	ctx := context.Background()
	// A PATH with the docker CLI and no git.
	noGit := t.TempDir()
	if err := os.Symlink(testenv.DockerCLI(t), filepath.Join(noGit, "docker")); err != nil {
		t.Fatal(err)
	}
	fake, err := smolvmtest.BuildFake(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	smolvmEnv := []string{"DOCKER_BOTTLE_SMOLVM=" + fake, "SMOLVM_FAKE_STATE=" + t.TempDir(), "SMOLVM_FAKE_VERSION=1.9.3"}
	const shell = "agent:\n  provider: shell\n"
	type row struct {
		name string
		// spec is the workspace's bottle.yaml ("" for none); dir, when
		// set, makes the workspace instead of a git repository with one
		// commit.
		spec   string
		dir    func(t *testing.T) string
		env    []string
		global []string // docker's own flags, before `bottle`
		args   []string
		// before makes what the row needs on the engine, for the bottle
		// name given.
		before func(t *testing.T, name string)
		want   string
	}
	rows := []row{
		{name: "prompt twice", spec: shell, args: []string{"--prompt", "a", "--prompt-file", "p.txt"}, want: "--prompt and --prompt-file exclude each other"},
		{name: "progress", spec: shell, args: []string{"--progress", "loud"}, want: `--progress "loud" is not one of`},
		{name: "rm and detach", spec: shell, args: []string{"--rm", "-d"}, want: "--rm and --detach exclude each other"},
		{name: "two paths", spec: shell, args: []string{"elsewhere"}, want: "requires at most 1 argument"},
		{name: "workspace is a file", dir: func(t *testing.T) string {
			f := filepath.Join(t.TempDir(), "file")
			if err := os.WriteFile(f, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			return f
		}, want: "is not a directory"},
		{name: "spec field", spec: "agent:\n  provder: shell\n", want: `bottle.yaml:2:3: unknown field "provder"`},
		{name: "unknown provider", spec: "agent:\n  provider: nosuch\n", want: "nosuch"},
		{name: "backend", spec: shell, args: []string{"--backend", "vm"}, want: "not one of auto, smolvm, docker"},
		{name: "bad name", spec: shell, args: []string{"--name", "Not A Name"}, want: "Not A Name"},
		{name: "secret-looking env", spec: shell, args: []string{"-e", "GITHUB_TOKEN=x"}, want: "GITHUB_TOKEN"},
		{name: "prompt file flag", spec: shell, args: []string{"--prompt-file", "/nonexistent/prompt.txt"}, want: "reading --prompt-file"},
		{name: "prompt file spec", spec: shell + "  prompt_file: nosuch.txt\n", want: "reading agent.prompt_file"},
		{name: "credentials", spec: "", want: "export ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN"},
		{name: "secret unset", spec: shell + "egress:\n  secrets:\n    - host: api.example.com\n      header: X-Key\n      from_env: BOTTLE_TEST_UNSET_SECRET\n",
			env: []string{"BOTTLE_TEST_UNSET_SECRET="}, want: "comes from $BOTTLE_TEST_UNSET_SECRET, which is empty or unset"},
		{name: "network mode value", spec: shell, env: smolvmEnv, args: []string{"--backend", "smolvm", "--network-mode", "sideways"},
			want: "sideways"},
		{name: "smolvm missing", spec: shell, args: []string{"--backend", "smolvm"}, want: "with --backend smolvm: smolvm was not found"},
		{name: "network mode on docker", spec: shell, args: []string{"--backend", "docker", "--network-mode", "loopback"},
			want: "--network-mode loopback applies to the smolvm backend only"},
		{name: "no engine", spec: shell, global: []string{"-H", "unix:///nonexistent/docker.sock"}, want: "no Docker engine answers"},
		{name: "extra CA", spec: shell + "egress:\n  extra_ca: nosuch.pem\n", want: "egress.extra_ca"},
		{name: "agent image missing", spec: shell + "  image: docker-bottle-test/nosuch:1\n", want: "agent image docker-bottle-test/nosuch:1 is not in the engine"},
		{name: "agent image reference", spec: shell + "  image: Not/A:Ref:At:All\n", want: "agent image Not/A:Ref:At:All"},
		{name: "dockerfile missing", spec: shell + "  dockerfile: nosuch.Dockerfile\n", want: "agent.dockerfile nosuch.Dockerfile"},
		{name: "dockerfile context missing", spec: shell + "  dockerfile: bottle.yaml\n  context: nosuch\n", want: "agent.context nosuch"},
		{name: "tool pattern", spec: "supervise:\n  approvals: [tool]\n  tools: [\"not a pattern!\"]\n", env: []string{"ANTHROPIC_API_KEY=sk-ant-test"},
			want: "supervise.tools"},
		{name: "not a repository", spec: shell, dir: func(t *testing.T) string { return t.TempDir() }, want: "is not a git repository"},
		{name: "no commit", spec: shell, dir: func(t *testing.T) string {
			d := t.TempDir()
			if out, err := exec.Command("git", "init", "-q", d).CombinedOutput(); err != nil {
				t.Fatalf("git init: %v %s", err, out)
			}
			return d
		}, want: "has no commit yet"},
		{name: "git missing", spec: shell, env: []string{"PATH=" + noGit}, want: "git is not installed"},
		{name: "name in use", spec: shell, before: func(t *testing.T, name string) {
			// A bottle of another DOCKER_CONFIG holds the name on the engine.
			makeVolume(t, eng, "bottle-other-"+name, map[string]string{plan.LabelBottle: name})
		}, want: "already exists"},
		{name: "volume of that name", spec: shell, args: []string{"--backend", "docker"}, before: func(t *testing.T, name string) {
			makeVolume(t, eng, "bottle-"+name+"-workspace", nil)
		}, want: "a volume named bottle-"},
		{name: "container of that name", spec: shell, before: func(t *testing.T, name string) {
			// A stand-in host of the test's, renamed.
			in := testenv.NewInternet(t, eng)
			u := in.Host(t, "host.example", "")
			f := make(client.Filters).Add("label", testenv.TestLabel+"=1").Add("network", in.Network)
			cs, err := eng.ContainerList(ctx, client.ContainerListOptions{Filters: f})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range cs.Items {
				if c.NetworkSettings.Networks[in.Network].IPAddress == u.IP {
					if _, err := eng.ContainerRename(ctx, c.ID, client.ContainerRenameOptions{NewName: "bottle-" + name + "-bundle"}); err != nil {
						t.Fatal(err)
					}
					return
				}
			}
			t.Fatal("the stand-in host's container was not found")
		}, want: "a container named bottle-"},
		{name: "network of that name", spec: shell, before: func(t *testing.T, name string) {
			if _, err := eng.NetworkCreate(ctx, "bottle-"+name, client.NetworkCreateOptions{Labels: map[string]string{testenv.TestLabel: "1"}}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { eng.NetworkRemove(context.Background(), "bottle-"+name, client.NetworkRemoveOptions{}) })
		}, want: "a network named bottle-"},
		// The engine's default bridge holds the only /24 of the pool.
		{name: "no subnet", spec: shell, env: []string{"DOCKER_BOTTLE_SUBNET_POOL=" + defaultBridgeSubnet(t, eng)}, want: "no free /24"},
	}
	for i, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			cfg := testenv.DockerConfig(t)
			name := fmt.Sprintf("dr%d-%d", i, time.Now().UnixNano()%1e6)
			ws := testenv.GitRepo(t)
			if r.dir != nil {
				ws = r.dir(t)
			}
			if r.spec != "" {
				if err := os.WriteFile(filepath.Join(ws, "bottle.yaml"), []byte(r.spec), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if r.before != nil {
				r.before(t, name)
			}
			env := append([]string{"DOCKER_BOTTLE_SMOLVM=", "ANTHROPIC_API_KEY=", "CLAUDE_CODE_OAUTH_TOKEN="}, r.env...)
			objects := bottleObjects(t, eng, name)
			args := append([]string{"--name", name}, r.args...)
			dry := docker(t, cfg, env, append(append(append(r.global, "bottle", "run", "--dry-run"), args...), ws)...)
			run := docker(t, cfg, env, append(append(append(r.global, "bottle", "run"), args...), ws)...)
			if dry.code == 0 || run.code != dry.code || run.stderr != dry.stderr || !strings.Contains(run.stderr, r.want) {
				t.Errorf("--dry-run: exit %d %q\nrun:       exit %d %q\nwant both to fail with %q", dry.code, dry.stderr, run.code, run.stderr, r.want)
			}
			if dry.stdout != "" || run.stdout != "" {
				t.Errorf("output on stdout: --dry-run %q, run %q", dry.stdout, run.stdout)
			}
			if after := bottleObjects(t, eng, name); after != objects {
				t.Errorf("engine objects of bottle %s: before %q, after %q", name, objects, after)
			}
			if ents, err := os.ReadDir(filepath.Join(cfg, "bottle", "bottles")); err == nil && len(ents) > 0 {
				t.Errorf("a bottle was left in the state dir: %v", ents)
			}
			if ents, err := os.ReadDir(filepath.Join(cfg, "bottle", "subnets")); err == nil && len(ents) > 0 {
				t.Errorf("a subnet reservation was left: %v", ents)
			}
			if out, _ := exec.Command("git", "-C", ws, "remote").Output(); strings.Contains(string(out), "bottle-") {
				t.Errorf("a git remote was left: %q", out)
			}
		})
	}
}

// bottleObjects names the engine's containers, networks and volumes of
// bottle name.
func bottleObjects(t *testing.T, eng *client.Client, name string) string {
	t.Helper()
	ctx := context.Background()
	f := make(client.Filters).Add("label", plan.LabelBottle+"="+name)
	var names []string
	cs, err := eng.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs.Items {
		names = append(names, "container "+strings.Join(c.Names, ","))
	}
	ns, err := eng.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns.Items {
		names = append(names, "network "+n.Name)
	}
	vs, err := eng.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs.Items {
		names = append(names, "volume "+v.Name)
	}
	sort.Strings(names)
	return strings.Join(names, "; ")
}

func makeVolume(t *testing.T, eng *client.Client, name string, labels map[string]string) {
	t.Helper()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[testenv.TestLabel] = "1"
	if _, err := eng.VolumeCreate(context.Background(), client.VolumeCreateOptions{Name: name, Labels: labels}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.VolumeRemove(context.Background(), name, client.VolumeRemoveOptions{Force: true}) })
}

// defaultBridgeSubnet is the first /24 of the engine's default bridge.
func defaultBridgeSubnet(t *testing.T, eng *client.Client) string {
	t.Helper()
	res, err := eng.NetworkInspect(context.Background(), "bridge", client.NetworkInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Network.IPAM.Config {
		if c.Subnet.Addr().Is4() {
			return fmt.Sprintf("%s/24", c.Subnet.Masked().Addr())
		}
	}
	t.Fatal("the default bridge has no IPv4 subnet")
	return ""
}
