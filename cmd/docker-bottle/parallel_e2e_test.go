//go:build e2e

package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/docker-bottle/docker-bottle/gitstage"
	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/plan"
)

// TestParallelRunsInOneRepository: eight `docker bottle run -d` started at
// the same moment in one repository all succeed, each under its own
// default name, subnet and git remote; `ls --filter repo=` lists them; eight
// `diff` at once fetch from
// them; eight `rm` at once then remove them all, and the repository's
// config is whole at every step.
func TestParallelRunsInOneRepository(t *testing.T) {
	const n = 8
	eng := testenv.Engine(t)
	base := testenv.Debian(t, eng)
	cfg := testenv.DockerConfig(t)
	repo := testenv.GitRepo(t)
	if err := os.WriteFile(filepath.Join(repo, "bottle.yaml"), []byte("agent:\n  provider: shell\n  image: "+base+
		"\n  command: [sh, -c, 'echo up; exec sleep 600']\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitIn(t, repo, "add", ".")
	gitIn(t, repo, "commit", "-qm", "bottle spec")
	env := append(os.Environ(), "DOCKER_CONFIG="+cfg, "DOCKER_BOTTLE_CACHE="+filepath.Join(cfg, "cache"), "DOCKER_BOTTLE_SMOLVM=")

	// all runs `docker ARGS...` n times at once (args(i) for the i-th) and
	// returns each one's stdout, failing the test for each that fails
	// other than with the message want.
	all := func(what, want string, args func(i int) []string) []string {
		out := make([]string, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cmd := exec.Command(testenv.DockerCLI(t), args(i)...)
				cmd.Env = env
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				<-start
				if err := cmd.Run(); err != nil && (want == "" || !strings.Contains(stderr.String(), want)) {
					t.Errorf("%s #%d: %v\n%s%s", what, i, err, stdout.String(), stderr.String())
				}
				out[i] = strings.TrimSpace(stdout.String())
			}()
		}
		close(start)
		wg.Wait()
		return out
	}

	names := all("run -d", "", func(int) []string {
		return []string{"bottle", "run", "-d", "--backend", "docker", "--progress", "plain", repo}
	})
	var made []string
	for _, name := range names {
		if name != "" {
			made = append(made, name)
		}
	}
	t.Cleanup(func() {
		for _, name := range made {
			docker(t, cfg, nil, "bottle", "rm", "-f", name)
		}
	})
	slices.Sort(made)
	if len(slices.Compact(slices.Clone(made))) != len(made) {
		t.Errorf("two runs got the same name: %v", names)
	}
	for _, name := range made {
		// A default name is the repository's, readable, not only random.
		if !strings.HasPrefix(name, "repo") {
			t.Errorf("default name %q does not say its repository", name)
		}
	}
	remotes := configRemotes(t, repo)
	for _, name := range made {
		if !slices.Contains(remotes, gitstage.RemoteName(name)) {
			t.Errorf("the remote of %s is missing; remotes: %v", name, remotes)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// ls tells the bottles of this repository from the others.
	other := testenv.GitRepo(t)
	for dir, want := range map[string][]string{repo: made, other: nil} {
		r := docker(t, cfg, nil, "bottle", "ls", "-a", "--filter", "repo="+dir, "--format", "{{.Name}}")
		got := strings.Fields(r.stdout)
		slices.Sort(got)
		if r.code != 0 || !slices.Equal(got, want) {
			t.Errorf("ls --filter repo=%s: exit %d %q %s, want %v", dir, r.code, got, r.stderr, want)
		}
	}
	// Each diff fetches its bottle's remote in the same repository.
	all("diff", "has pushed nothing to", func(i int) []string { return []string{"bottle", "diff", names[i]} })
	all("rm", "", func(i int) []string { return []string{"bottle", "rm", "-f", names[i]} })
	if left := configRemotes(t, repo); len(left) != 0 {
		t.Errorf("remotes left after rm: %v", left)
	}
	for _, name := range made {
		testenv.NothingLeft(t, eng, bottleIn(cfg, []string{"DOCKER_BOTTLE_SMOLVM="}, name, repo))
	}
	subnets, _ := os.ReadDir(plan.Dirs{State: filepath.Join(cfg, "bottle")}.Subnets())
	if len(subnets) > 0 {
		t.Errorf("subnet reservations left: %v", subnets)
	}
}

// configRemotes lists the remotes of repo's config, failing the test when
// git cannot read the config.
func configRemotes(t *testing.T, repo string) []string {
	t.Helper()
	out, err := exec.Command("git", "-C", repo, "config", "--list").CombinedOutput()
	if err != nil {
		t.Fatalf("git cannot read the config of %s: %v\n%s", repo, err, out)
	}
	var remotes []string
	for _, line := range strings.Split(string(out), "\n") {
		if k, _, ok := strings.Cut(line, "="); ok && strings.HasPrefix(k, "remote.") && strings.HasSuffix(k, ".url") {
			remotes = append(remotes, strings.TrimSuffix(strings.TrimPrefix(k, "remote."), ".url"))
		}
	}
	return remotes
}
