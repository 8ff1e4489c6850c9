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
	"github.com/docker-bottle/docker-bottle/stage"
)

// TestParallelRunsInOneRepository: eight `docker bottle run -d` started at
// the same moment in one repository, and three in another of the same
// folder name, all succeed, each under its own default name, subnet and
// git remote; `ls --filter repo=` tells them apart; `diff` and then `rm`
// of all at once succeed too, and each repository's config is whole and
// holds exactly its bottles' remotes at every step.
func TestParallelRunsInOneRepository(t *testing.T) {
	eng := testenv.Engine(t)
	base := testenv.Debian(t, eng)
	cfg := testenv.DockerConfig(t)
	one, two := testenv.GitRepo(t), testenv.GitRepo(t)
	for _, repo := range []string{one, two} {
		if err := os.WriteFile(filepath.Join(repo, "bottle.yaml"), []byte("agent:\n  provider: shell\n  image: "+base+
			"\n  command: [sh, -c, 'echo up; exec sleep 600']\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		gitIn(t, repo, "add", ".")
		gitIn(t, repo, "commit", "-qm", "bottle spec")
	}
	repos := []string{one, one, one, one, one, one, one, one, two, two, two}
	n := len(repos)
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

	names := all("run -d", "", func(i int) []string {
		return []string{"bottle", "run", "-d", "--backend", "docker", "--progress", "plain", repos[i]}
	})
	t.Cleanup(func() {
		for _, name := range names {
			if name != "" {
				docker(t, cfg, nil, "bottle", "rm", "-f", name)
			}
		}
	})
	of := map[string][]string{} // the bottles of each repository
	for i, name := range names {
		if name != "" {
			of[repos[i]] = append(of[repos[i]], name)
		}
		// A default name is the repository's, readable, not only random.
		if !strings.HasPrefix(name, "repo") {
			t.Errorf("default name %q does not say its repository", name)
		}
	}
	if made := slices.Sorted(slices.Values(names)); len(slices.Compact(made)) != n {
		t.Errorf("two runs got the same name: %v", names)
	}
	for _, repo := range []string{one, two} {
		slices.Sort(of[repo])
		var want []string
		for _, name := range of[repo] {
			want = append(want, gitstage.RemoteName(name))
		}
		if got := configRemotes(t, repo); !slices.Equal(got, want) {
			t.Errorf("remotes of %s: %v, want %v", repo, got, want)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// ls tells the bottles of one repository from the other's.
	for _, repo := range []string{one, two, testenv.GitRepo(t)} {
		r := docker(t, cfg, nil, "bottle", "ls", "-a", "--filter", "repo="+repo, "--format", "{{.Name}}")
		got := strings.Fields(r.stdout)
		slices.Sort(got)
		if r.code != 0 || !slices.Equal(got, of[repo]) {
			t.Errorf("ls --filter repo=%s: exit %d %q %s, want %v", repo, r.code, got, r.stderr, of[repo])
		}
	}
	// Each diff fetches its bottle's remote into its repository.
	all("diff", "has pushed nothing to", func(i int) []string { return []string{"bottle", "diff", names[i]} })
	all("rm", "", func(i int) []string { return []string{"bottle", "rm", "-f", names[i]} })
	for _, repo := range []string{one, two} {
		if left := configRemotes(t, repo); len(left) != 0 {
			t.Errorf("remotes left in %s after rm: %v", repo, left)
		}
	}
	for repo, names := range of {
		for _, name := range names {
			testenv.NothingLeft(t, eng, bottleIn(cfg, []string{"DOCKER_BOTTLE_SMOLVM="}, name, repo))
		}
	}
	subnets, _ := os.ReadDir(stage.Dirs{State: filepath.Join(cfg, "bottle")}.Subnets())
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
	slices.Sort(remotes)
	return remotes
}
