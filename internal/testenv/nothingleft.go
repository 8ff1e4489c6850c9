package testenv

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/gitstage"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/smolvm"
	"github.com/docker-bottle/docker-bottle/stage"
)

// Bottle says where the traces of one bottle a test made would be. Name is
// always checked (the engine's containers, networks and volumes carrying
// its label); the others when set.
type Bottle struct {
	Name string
	// State is the plugin's state dir ($DOCKER_CONFIG/bottle): the
	// bottle's stage dir and its subnet reservation live there.
	State string
	// Repo is the user's repository, where run registers the bottle's
	// remote.
	Repo string
	// Env is what the bottle ran with; when it names a smolvm
	// (DOCKER_BOTTLE_SMOLVM, with the fake's state), that smolvm must know
	// no machine of the bottle.
	Env []string
}

// Lister is what NothingLeft asks of the engine (a *client.Client, or a
// fake in its own tests).
type Lister interface {
	ContainerList(context.Context, client.ContainerListOptions) (client.ContainerListResult, error)
	NetworkList(context.Context, client.NetworkListOptions) (client.NetworkListResult, error)
	VolumeList(context.Context, client.VolumeListOptions) (client.VolumeListResult, error)
}

// NothingLeft fails the test when anything of b is left: a container,
// network or volume with its label, its smolvm machine, its stage dir, its
// remote in the user's repository, or its subnet reservation. It fails as
// well when it cannot look (an engine or smolvm error): that is never
// "nothing left".
func NothingLeft(t testing.TB, eng Lister, b Bottle) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	left, err := Left(ctx, eng, b)
	if err != nil {
		t.Fatalf("looking for what is left of bottle %s: %v", b.Name, err)
	}
	if len(left) != 0 {
		t.Errorf("left of bottle %s: %s", b.Name, strings.Join(left, "; "))
	}
}

// Left lists what is left of b, or an error when it cannot look.
func Left(ctx context.Context, eng Lister, b Bottle) ([]string, error) {
	if b.Name == "" {
		return nil, errors.New("no bottle name to look for")
	}
	var left []string
	f := make(client.Filters).Add("label", plan.LabelBottle+"="+b.Name)
	cs, err := eng.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", err)
	}
	for _, c := range cs.Items {
		left = append(left, "container "+strings.Join(c.Names, ","))
	}
	ns, err := eng.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("listing networks: %w", err)
	}
	for _, n := range ns.Items {
		left = append(left, "network "+n.Name)
	}
	vs, err := eng.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("listing volumes: %w", err)
	}
	for _, v := range vs.Items {
		left = append(left, "volume "+v.Name)
	}
	machines, err := machinesOf(ctx, b)
	if err != nil {
		return nil, err
	}
	left = append(left, machines...)
	if b.State != "" {
		dirs := stage.Dirs{State: b.State}
		dir := dirs.Stage(b.Name).Path()
		if _, err := os.Stat(dir); err == nil {
			left = append(left, "stage dir "+dir)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		reservations, err := reservationsOf(dirs.Subnets(), b.Name)
		if err != nil {
			return nil, err
		}
		left = append(left, reservations...)
	}
	if b.Repo != "" {
		out, err := exec.CommandContext(ctx, "git", "-C", b.Repo, "remote").Output()
		if err != nil {
			return nil, fmt.Errorf("listing the remotes of %s: %w", b.Repo, err)
		}
		for _, r := range strings.Fields(string(out)) {
			if r == gitstage.RemoteName(b.Name) {
				left = append(left, "git remote "+r+" in "+b.Repo)
			}
		}
	}
	return left, nil
}

// machinesOf lists the machines of b that the smolvm of b.Env knows.
func machinesOf(ctx context.Context, b Bottle) ([]string, error) {
	var bin string
	for _, kv := range b.Env {
		if v, ok := strings.CutPrefix(kv, smolvm.EnvBinary+"="); ok {
			bin = v
		}
	}
	if bin == "" {
		return nil, nil
	}
	ms, err := smolvm.New(bin, smolvm.WithEnv(b.Env...)).MachineList(ctx)
	if err != nil {
		return nil, err
	}
	var left []string
	for _, m := range ms {
		if strings.Contains(m.Name, b.Name) {
			left = append(left, "smolvm machine "+m.Name)
		}
	}
	return left, nil
}

// reservationsOf lists the subnet reservations in dir that name owns.
func reservationsOf(dir, name string) ([]string, error) {
	files, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var left []string
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(dir, f.Name()))
		if err != nil {
			return nil, err
		}
		if strings.TrimSpace(string(data)) == name {
			left = append(left, "subnet reservation "+f.Name())
		}
	}
	return left, nil
}
