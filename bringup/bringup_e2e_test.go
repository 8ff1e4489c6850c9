//go:build e2e

package bringup

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/gitstage"
	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/pki"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/provider"
	"github.com/docker-bottle/docker-bottle/spec"
	"github.com/docker-bottle/docker-bottle/stage"
)

// prepare makes a real plan, stage dir, CA, gate repository and bundle
// configuration for a bottle called name.
func prepare(t *testing.T, eng *client.Client, name, backend string) plan.Plan {
	t.Helper()
	return prepareSpec(t, eng, name, backend, "egress:\n  allow:\n    - host: example.test\n", testenv.GitRepo(t))
}

// prepareSpec is prepare with the bottle.yaml text given and the user's
// repository made by the caller.
func prepareSpec(t *testing.T, eng *client.Client, name, backend, specYAML, repo string) plan.Plan {
	t.Helper()
	ctx := context.Background()
	dirs := stage.Dirs{State: filepath.Join(t.TempDir(), "state"), Cache: t.TempDir()}
	if _, err := pki.LoadOrCreateCA(dirs.CA()); err != nil {
		t.Fatal(err)
	}
	prov, _ := provider.Get(spec.ProviderShell)
	s, err := spec.Parse("bottle.yaml", []byte(specYAML))
	if err != nil {
		t.Fatal(err)
	}
	mode := spec.NetworkBridge
	if backend == spec.BackendDocker {
		mode = plan.NetworkInternal
	}
	pool, _ := stage.PoolFromEnv()
	p, err := stage.Prepare(ctx, stage.Options{
		Spec: s.Resolve(prov.Defaults), NameFlag: name, Workspace: repo, Provider: prov.Plan(),
		Choice: plan.Choice{Backend: backend, NetworkMode: mode, Why: "test"}, Dirs: dirs,
		Allocator: &stage.Allocator{Pool: pool, Dir: dirs.Subnets(), Engine: eng},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := Down(context.Background(), eng, p.Slug); err != nil {
			t.Errorf("Down: %v", err)
		}
		(&stage.Allocator{Dir: dirs.Subnets()}).Release(p.Bundle.Reserved, p.Slug)
		testenv.NothingLeft(t, eng, testenv.Bottle{Name: p.Slug})
	})
	if err := gitstage.Prepare(ctx, repo, p.GitGate.Repo); err != nil {
		t.Fatal(err)
	}
	ref, commit, err := gitstage.Start(ctx, p.GitGate.Repo)
	if err != nil {
		t.Fatal(err)
	}
	p = p.WithStart(ref, commit)
	if _, err := WriteConfig(p, ConfigOptions{CADir: dirs.CA()}); err != nil {
		t.Fatal(err)
	}
	return p
}

// caDir is the CA of the state dir a test plan lives in.
func caDir(p plan.Plan) string {
	return stage.Dirs{State: filepath.Dir(filepath.Dir(p.StageDir))}.CA()
}

// allocator is the subnet allocator of the state dir a test plan lives in.
func allocator(p plan.Plan, eng *client.Client) *stage.Allocator {
	pool, _ := stage.PoolFromEnv()
	return &stage.Allocator{Pool: pool, Dir: stage.Dirs{State: filepath.Dir(filepath.Dir(p.StageDir))}.Subnets(), Engine: eng}
}

func up(t *testing.T, eng *client.Client, p plan.Plan) plan.Plan {
	t.Helper()
	mounts, err := WriteConfig(p, ConfigOptions{CADir: caDir(p)})
	if err != nil {
		t.Fatal(err)
	}
	q, err := Up(context.Background(), eng, Options{Plan: p, Mounts: mounts, CADir: caDir(p), Health: Health, Version: "test", Allocator: allocator(p, eng)})
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func uniqueName(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()%1_000_000_000)
}

func TestUpOneBundle(t *testing.T) {
	eng := testenv.Engine(t)
	p := up(t, eng, prepare(t, eng, uniqueName("bu"), spec.BackendSmolvm))
	ctx := context.Background()
	e := p.Endpoints
	if e == nil || e.HostProxy == "" || e.HostGitGate == "" || e.HostSupervise == "" {
		t.Fatalf("endpoints %+v", e)
	}
	// Bridge mode: the agent reaches the bundle at its pinned IP.
	if e.AgentProxyURL != "http://"+p.Bundle.IP.String()+":3128" {
		t.Errorf("agent proxy URL %s", e.AgentProxyURL)
	}
	if err := Health(ctx, p); err != nil {
		t.Fatalf("health after Up: %v", err)
	}

	// Every daemon demands the token.
	for _, c := range []struct {
		name, url string
		want      int
		proxy     bool
	}{
		{"proxy", "http://example.test/", http.StatusProxyAuthRequired, true},
		{"gate", "http://" + e.HostGitGate + "/info/refs?service=git-upload-pack", http.StatusUnauthorized, false},
		{"supervisor", "http://" + e.HostSupervise + "/v1/health", http.StatusUnauthorized, false},
	} {
		tr := &http.Transport{}
		if c.proxy {
			u, _ := url.Parse("http://" + e.HostProxy)
			tr.Proxy = http.ProxyURL(u)
		}
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(c.url)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s without a token: %d, want %d", c.name, resp.StatusCode, c.want)
		}
	}

	// The gate serves the repository to git with the token.
	tok, _ := os.ReadFile(p.AgentTokenFile)
	clone := filepath.Join(t.TempDir(), "clone")
	if out, err := exec.Command("git", "clone", "-q", "http://x:"+string(tok)+"@"+e.HostGitGate+"/repo.git", clone).CombinedOutput(); err != nil {
		t.Fatalf("git clone through the bundle's gate: %v\n%s", err, out)
	}

	// Hardening, as the engine reports it.
	res, err := eng.ContainerInspect(ctx, p.Bundle.Container, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := res.Container
	if want := fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid()); c.Config.User != want {
		t.Errorf("user %q, want %q", c.Config.User, want)
	}
	hc := c.HostConfig
	if !hc.ReadonlyRootfs || len(hc.CapDrop) != 1 || hc.CapDrop[0] != "ALL" || hc.Memory == 0 || hc.PidsLimit == nil {
		t.Errorf("host config: ro %v capdrop %v memory %d pids %v", hc.ReadonlyRootfs, hc.CapDrop, hc.Memory, hc.PidsLimit)
	}
	if len(hc.SecurityOpt) == 0 || !strings.HasPrefix(hc.SecurityOpt[0], "no-new-privileges") {
		t.Errorf("security opts %v", hc.SecurityOpt)
	}
	if ep := c.NetworkSettings.Networks[p.Bundle.Network]; ep == nil || ep.IPAddress != p.Bundle.IP {
		t.Errorf("bundle address %v, want %s", ep, p.Bundle.IP)
	}
	op, _ := os.ReadFile(p.OperatorTokenFile)
	for _, env := range c.Config.Env {
		if strings.Contains(env, string(tok)) || strings.Contains(env, string(op)) {
			t.Errorf("a token is in the bundle's environment: %s", env)
		}
	}
	if c.Config.Labels[plan.LabelBottle] != p.Slug || c.Config.Labels[plan.LabelRole] != plan.RoleBundle {
		t.Errorf("labels %v", c.Config.Labels)
	}

	// Teardown leaves nothing, and is idempotent.
	if err := Down(ctx, eng, p.Slug); err != nil {
		t.Fatal(err)
	}
	testenv.NothingLeft(t, eng, testenv.Bottle{Name: p.Slug})
	if err := Down(ctx, eng, p.Slug); err != nil {
		t.Fatalf("second Down: %v", err)
	}
}

// TestTwoBundlesAtOnce brings two bundles up concurrently. Their state
// dirs differ (as for two users, or two DOCKER_CONFIG dirs), so both plan
// the same first free subnet: the engine refuses the second network and
// bring-up moves that bottle to another subnet.
func TestTwoBundlesAtOnce(t *testing.T) {
	eng := testenv.Engine(t)
	ps := []plan.Plan{prepare(t, eng, uniqueName("bt1"), spec.BackendDocker), prepare(t, eng, uniqueName("bt2"), spec.BackendSmolvm)}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mounts, err := WriteConfig(ps[i], ConfigOptions{CADir: caDir(ps[i])})
			if err != nil {
				errs[i] = err
				return
			}
			ps[i], errs[i] = Up(context.Background(), eng, Options{Plan: ps[i], Mounts: mounts, CADir: caDir(ps[i]), Health: Health, Allocator: allocator(ps[i], eng)})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if ps[0].Bundle.Reserved.Overlaps(ps[1].Bundle.Reserved) {
		t.Fatalf("both bottles got %s", ps[0].Bundle.Reserved)
	}
	for _, p := range ps {
		res, err := eng.ContainerInspect(context.Background(), p.Bundle.Container, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ep := res.Container.NetworkSettings.Networks[p.Bundle.Network]; ep == nil || ep.IPAddress != p.Bundle.IP {
			t.Errorf("%s: bundle at %v, plan says %s", p.Slug, ep, p.Bundle.IP)
		}
	}
	if ps[0].Endpoints.HostProxy == ps[1].Endpoints.HostProxy {
		t.Fatalf("both bottles got proxy port %s", ps[0].Endpoints.HostProxy)
	}
	for _, p := range ps {
		if err := Health(context.Background(), p); err != nil {
			t.Errorf("%s: %v", p.Slug, err)
		}
	}
	// The docker backend's bundle sits on the internal network too, at
	// its pinned address.
	res, err := eng.ContainerInspect(context.Background(), ps[0].Bundle.Container, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ep := res.Container.NetworkSettings.Networks[ps[0].Bundle.InternalNetwork]; ep == nil || ep.IPAddress != ps[0].Bundle.InternalIP {
		t.Errorf("internal endpoint %v, want %s", ep, ps[0].Bundle.InternalIP)
	}
}

// TestInterruptedBringUpLeavesNothing cancels Up while it waits for health,
// as Ctrl-C would.
func TestInterruptedBringUpLeavesNothing(t *testing.T) {
	eng := testenv.Engine(t)
	p := prepare(t, eng, uniqueName("bi"), spec.BackendDocker)
	mounts, err := WriteConfig(p, ConfigOptions{CADir: caDir(p)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	never := func(context.Context, plan.Plan) error {
		calls++
		if calls == 3 {
			cancel()
		}
		return errors.New("not yet")
	}
	_, err = Up(ctx, eng, Options{Plan: p, Mounts: mounts, CADir: caDir(p), Health: never, Allocator: allocator(p, eng)})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Up after cancel: %v", err)
	}
	testenv.NothingLeft(t, eng, testenv.Bottle{Name: p.Slug})
}

// TestFailedBringUpShowsTheBundleLog breaks the configuration so the bundle
// exits, and checks the error names the step and quotes the bundle.
func TestFailedBringUpShowsTheBundleLog(t *testing.T) {
	eng := testenv.Engine(t)
	p := prepare(t, eng, uniqueName("bf"), spec.BackendSmolvm)
	mounts, err := WriteConfig(p, ConfigOptions{CADir: caDir(p)})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.StageDir, ConfigFile), []byte(`{"bottle": "x", "nonsense": 1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Up(context.Background(), eng, Options{Plan: p, Mounts: mounts, CADir: caDir(p), Health: Health, HealthTimeout: 20 * time.Second, Allocator: allocator(p, eng)})
	var be *Error
	if !errors.As(err, &be) || !strings.Contains(be.Err.Error(), "exited") || !strings.Contains(be.Logs, "nonsense") {
		t.Fatalf("error %v", err)
	}
	testenv.NothingLeft(t, eng, testenv.Bottle{Name: p.Slug})
}
