package testenv

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/internal/testenv/testio"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/stage"
)

// fakeEngine answers the lists with what it holds, or err.
type fakeEngine struct {
	containers []container.Summary
	networks   []network.Summary
	volumes    []volume.Volume
	err        error
	filters    []client.Filters
}

func (f *fakeEngine) ContainerList(_ context.Context, o client.ContainerListOptions) (client.ContainerListResult, error) {
	f.filters = append(f.filters, o.Filters)
	return client.ContainerListResult{Items: f.containers}, f.err
}

func (f *fakeEngine) NetworkList(_ context.Context, o client.NetworkListOptions) (client.NetworkListResult, error) {
	f.filters = append(f.filters, o.Filters)
	return client.NetworkListResult{Items: f.networks}, nil
}

func (f *fakeEngine) VolumeList(_ context.Context, o client.VolumeListOptions) (client.VolumeListResult, error) {
	f.filters = append(f.filters, o.Filters)
	return client.VolumeListResult{Items: f.volumes}, nil
}

// fakeSmolvm is a smolvm that lists one machine, bottle-NAME.
func fakeSmolvm(t *testing.T, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "smolvm")
	script := "#!/bin/sh\n[ \"$*\" = 'machine ls --json' ] || exit 2\necho '[{\"name\":\"bottle-" + name + "\",\"state\":\"stopped\"}]'\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

func TestLeftFindsEveryTrace(t *testing.T) {
	const name = "nl-1"
	state, repo := t.TempDir(), GitRepo(t)
	b := Bottle{Name: name, State: state, Repo: repo}
	eng := &fakeEngine{}
	if left, err := Left(context.Background(), eng, b); err != nil || len(left) != 0 {
		t.Fatalf("a clean bottle: left %v, err %v", left, err)
	}
	for _, f := range eng.filters {
		if !f["label"][plan.LabelBottle+"="+name] {
			t.Errorf("a list not filtered by the bottle's label: %v", f)
		}
	}

	eng = &fakeEngine{
		containers: []container.Summary{{Names: []string{"/bottle-nl-1-bundle"}}},
		networks:   []network.Summary{{Network: network.Network{Name: "bottle-nl-1"}}},
		volumes:    []volume.Volume{{Name: "bottle-nl-1-home"}},
	}
	dirs := stage.Dirs{State: state}
	stageDir, subnets := dirs.Stage(name).Path(), dirs.Subnets()
	for _, dir := range []string{stageDir, subnets} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for file, owner := range map[string]string{"10.213.7.0_24": name, "10.213.8.0_24": "another"} {
		if err := os.WriteFile(filepath.Join(subnets, file), []byte(owner), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("git", "-C", repo, "remote", "add", "bottle-"+name, "/nowhere").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	b.Env = []string{"DOCKER_BOTTLE_SMOLVM=" + fakeSmolvm(t, name)}
	left, err := Left(context.Background(), eng, b)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"container /bottle-nl-1-bundle", "network bottle-nl-1", "volume bottle-nl-1-home", "smolvm machine bottle-nl-1",
		"stage dir " + stageDir, "subnet reservation 10.213.7.0_24", "git remote bottle-nl-1 in " + repo}
	if !slices.Equal(left, want) {
		t.Errorf("left:\n%s\nwant:\n%s", strings.Join(left, "\n"), strings.Join(want, "\n"))
	}

	// NothingLeft fails the test on what Left finds.
	if msg := testio.Failure(t, func(tb testing.TB) { NothingLeft(tb, eng, b) }); !strings.Contains(msg, "stage dir") {
		t.Errorf("NothingLeft passed a bottle with leftovers (%q)", msg)
	}
}

func TestLeftFailsWhenItCannotLook(t *testing.T) {
	eng := &fakeEngine{err: errors.New("engine down")}
	if _, err := Left(context.Background(), eng, Bottle{Name: "x"}); err == nil || !strings.Contains(err.Error(), "engine down") {
		t.Errorf("an engine error read as %v", err)
	}
	if msg := testio.Failure(t, func(tb testing.TB) { NothingLeft(tb, eng, Bottle{Name: "x"}) }); !strings.Contains(msg, "engine down") {
		t.Errorf("NothingLeft passed when the engine failed (%q)", msg)
	}
	broken := Bottle{Name: "x", Env: []string{"DOCKER_BOTTLE_SMOLVM=/nonexistent/smolvm"}}
	if _, err := Left(context.Background(), &fakeEngine{}, broken); err == nil {
		t.Error("a smolvm that cannot run read as no machine left")
	}
	if _, err := Left(context.Background(), &fakeEngine{}, Bottle{Name: "x", Repo: t.TempDir()}); err == nil {
		t.Error("a repository git cannot read read as no remote left")
	}
}
