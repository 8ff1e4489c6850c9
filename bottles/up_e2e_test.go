//go:build e2e

package bottles_test

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/bottles"
	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/provider"
	"github.com/docker-bottle/docker-bottle/spec"
	"github.com/docker-bottle/docker-bottle/stage"
)

// cancelOn cancels a context once a progress line contains a text.
type cancelOn struct {
	mu     sync.Mutex
	text   string
	cancel context.CancelFunc
	seen   strings.Builder
}

func (c *cancelOn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen.Write(b)
	if strings.Contains(c.seen.String(), c.text) {
		c.cancel()
	}
	return len(b), nil
}

// TestInterruptAfterASubnetMoveLeavesNothing: bring-up finds the planned
// subnet taken (here by a network the test makes after the plan was made,
// as another engine user may) and moves the bottle to another; an
// interrupt then ends the bring-up. Removing the bottle, as run does after
// a failure, must release the subnet it moved to, not only the planned
// one.
func TestInterruptAfterASubnetMoveLeavesNothing(t *testing.T) {
	eng := testenv.Engine(t)
	state := t.TempDir()
	dirs := stage.Dirs{State: filepath.Join(state, "bottle"), Cache: filepath.Join(state, "cache")}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	progress := &cancelOn{text: "moving to subnet", cancel: cancel}
	svc, err := bottles.New(nil, bottles.WithEngine(eng), bottles.WithDirs(dirs), bottles.WithSmolvm(nil), bottles.WithSteps(progress))
	if err != nil {
		t.Fatal(err)
	}
	prov, _ := provider.Get(spec.ProviderShell)
	s, err := spec.Parse("bottle.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	repo := testenv.GitRepo(t)
	p, err := svc.Prepare(context.Background(), bottles.PrepareOptions{Spec: s.Resolve(prov.Defaults), Workspace: repo,
		Provider: prov.Plan(), Choice: plan.Choice{Backend: spec.BackendSmolvm, NetworkMode: spec.NetworkBridge}})
	if err != nil {
		t.Fatal(err)
	}
	gone := testenv.Bottle{Name: p.Slug, State: dirs.State, Repo: repo}
	t.Cleanup(func() {
		if err := svc.Remove(context.Background(), p.Slug, false); err != nil && !errors.Is(err, bottles.ErrNotFound) {
			t.Errorf("removing bottle %s: %v", p.Slug, err)
		}
		testenv.NothingLeft(t, eng, gone)
	})

	// The upper half of the planned /24: the engine refuses the bottle's
	// network as overlapping it.
	a := p.Bundle.Reserved.Addr().As4()
	a[3] = 128
	blocker := "bottle-test-blocker-" + p.Slug
	if _, err := eng.NetworkCreate(context.Background(), blocker, client.NetworkCreateOptions{
		IPAM:   &network.IPAM{Config: []network.IPAMConfig{{Subnet: netip.PrefixFrom(netip.AddrFrom4(a), 25)}}},
		Labels: map[string]string{testenv.TestLabel: "1"},
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := eng.NetworkRemove(context.Background(), blocker, client.NetworkRemoveOptions{}); err != nil {
			t.Errorf("removing %s: %v", blocker, err)
		}
	})

	_, err = svc.BringUp(ctx, p, bottles.BringUpOptions{})
	if err == nil {
		t.Fatalf("bring-up went on after the interrupt:\n%s", progress.seen.String())
	}
	if !strings.Contains(progress.seen.String(), "moving to subnet") {
		t.Fatalf("bring-up never moved the bottle (%v):\n%s", err, progress.seen.String())
	}
	if err := svc.Remove(context.Background(), p.Slug, false); err != nil {
		t.Fatal(err)
	}
	testenv.NothingLeft(t, eng, gone)
}
