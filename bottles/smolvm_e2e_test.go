//go:build e2e

package bottles_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/docker-bottle/docker-bottle/bottles"
	"github.com/docker-bottle/docker-bottle/image"
	"github.com/docker-bottle/docker-bottle/image/pack"
	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/probe/probeimage"
	"github.com/docker-bottle/docker-bottle/provider/guest"
	"github.com/docker-bottle/docker-bottle/smolvm"
	"github.com/docker-bottle/docker-bottle/smolvm/fakesmolvm/fakestate"
	"github.com/docker-bottle/docker-bottle/smolvm/smolvmtest"
	"github.com/docker-bottle/docker-bottle/spec"
	"github.com/docker-bottle/docker-bottle/stage"
)

// TestRunSmolvmRecordsThePlan runs a bottle on the smolvm backend through
// the contract fake, in both network modes: the pipeline packs the agent
// image (the fake pulls it from the embedded registry with the credentials
// of SMOLVM_CONFIG), then `machine create --from` must carry, flag by flag,
// what the plan says: labels, the guest env, the allowlist of the network
// mode, the guest dir mounted read-only, the workload; and removing the
// bottle deletes the machine.
func TestRunSmolvmRecordsThePlan(t *testing.T) {
	eng := testenv.Engine(t)
	fake, err := smolvmtest.BuildFake(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fakeState := t.TempDir()
	env := []string{"SMOLVM_FAKE_STATE=" + fakeState, "SMOLVM_FAKE_VERSION=1.9.3"}
	probeTag, err := probeimage.Ensure(context.Background(), eng)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{spec.NetworkBridge, spec.NetworkLoopback} {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			state := t.TempDir()
			dirs := stage.Dirs{State: filepath.Join(state, "bottle"), Cache: filepath.Join(state, "cache")}
			svc, err := bottles.New(nil, bottles.WithEngine(eng), bottles.WithDirs(dirs), bottles.WithSmolvm(smolvm.New(fake, smolvm.WithEnv(env...))))
			if err != nil {
				t.Fatal(err)
			}
			pipe, err := image.New(eng, pack.NewSmolvm(fake, smolvm.WithEnv(env...)), dirs.Cache)
			if err != nil {
				t.Fatal(err)
			}
			s, err := spec.Parse("bottle.yaml", []byte("agent:\n  provider: shell\n  env:\n    LANG: C.UTF-8\n"))
			if err != nil {
				t.Fatal(err)
			}
			res, err := svc.Run(ctx, bottles.RunOptions{
				Prepare: bottles.PrepareOptions{Spec: s.Resolve(spec.Defaults{}), Workspace: testenv.GitRepo(t),
					Provider: plan.Provider{Name: spec.ProviderShell}, Choice: plan.Choice{Backend: spec.BackendSmolvm, NetworkMode: mode}},
				Image:    image.Request{Image: probeTag},
				Pipeline: pipe,
				Command:  []string{guest.HelperPath, "sleep"},
				Arch:     runtime.GOARCH,
				Detach:   true,
			})
			if err != nil {
				t.Fatal(err)
			}
			p := res.Plan
			gone := testenv.Bottle{Name: p.Slug, State: dirs.State, Repo: p.Workspace, Env: append([]string{smolvm.EnvBinary + "=" + fake}, env...)}
			t.Cleanup(func() {
				if err := svc.Remove(context.Background(), p.Slug, false); err != nil && !errors.Is(err, bottles.ErrNotFound) {
					t.Errorf("removing bottle %s: %v", p.Slug, err)
				}
				testenv.NothingLeft(t, eng, gone)
			})

			rec, err := fakestate.ReadRecord(fakeState, p.Smolvm.MachineName)
			if err != nil {
				t.Fatal(err)
			}
			if !rec.Started || !strings.HasSuffix(rec.From, smolvm.SidecarSuffix) || rec.Manifest == nil || !strings.Contains(rec.Manifest.Image, "@sha256:") {
				t.Errorf("machine from %q, started %v, manifest %+v", rec.From, rec.Started, rec.Manifest)
			}
			if rec.Labels[plan.LabelBottle] != p.Slug || rec.Labels[plan.LabelRole] != plan.RoleAgent {
				t.Errorf("labels %v", rec.Labels)
			}
			wantAllow := p.Bundle.IP.String()
			if mode == spec.NetworkLoopback {
				wantAllow = plan.SmolvmGateway
			}
			if !slices.Equal(rec.AllowHosts, []string{wantAllow}) || len(rec.AllowCIDRs) != 0 {
				t.Errorf("allowlist %v %v, want --allow-host %s only", rec.AllowHosts, rec.AllowCIDRs, wantAllow)
			}
			if !slices.Equal(rec.Env, p.Smolvm.GuestEnv) {
				t.Errorf("env\n%v\nplan says\n%v", rec.Env, p.Smolvm.GuestEnv)
			}
			proxy := "HTTPS_PROXY=" + p.Endpoints.AgentProxyURL
			if !slices.Contains(rec.Env, proxy) || !slices.Contains(rec.Env, "LANG=C.UTF-8") {
				t.Errorf("env lacks %s or LANG", proxy)
			}
			if mode == spec.NetworkLoopback && !strings.HasPrefix(p.Endpoints.AgentProxyURL, "http://"+plan.SmolvmGateway+":") {
				t.Errorf("loopback proxy URL %s", p.Endpoints.AgentProxyURL)
			}
			guestDir := stage.Of(p).File(stage.GuestDir)
			if len(rec.Volumes) != 1 || rec.Volumes[0].Host != guestDir || rec.Volumes[0].Guest != plan.GuestDir || !rec.Volumes[0].ReadOnly {
				t.Errorf("volumes %+v, want %s:%s:ro", rec.Volumes, guestDir, plan.GuestDir)
			}
			if !slices.Equal(rec.Workload, []string{guest.HelperPath, "sleep"}) {
				t.Errorf("workload %v", rec.Workload)
			}
			tok, _ := os.ReadFile(p.AgentTokenFile)
			for _, kv := range rec.Env {
				if strings.Contains(kv, strings.TrimSpace(string(tok))) {
					t.Errorf("the agent token is in the machine's env: %s", kv)
				}
			}

			if err := svc.Remove(ctx, p.Slug, false); err != nil {
				t.Fatal(err)
			}
			if _, err := fakestate.ReadRecord(fakeState, p.Smolvm.MachineName); err == nil {
				t.Error("the machine is still there after removal")
			}
			testenv.NothingLeft(t, eng, gone)
		})
	}
}
