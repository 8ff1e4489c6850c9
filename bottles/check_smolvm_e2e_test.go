//go:build e2e

package bottles_test

import (
	"context"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/flags"

	"github.com/docker-bottle/docker-bottle/bottles"
	"github.com/docker-bottle/docker-bottle/image"
	"github.com/docker-bottle/docker-bottle/image/pack"
	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/probe"
	"github.com/docker-bottle/docker-bottle/smolvm"
	"github.com/docker-bottle/docker-bottle/smolvm/smolvmtest"
	"github.com/docker-bottle/docker-bottle/spec"
	"github.com/docker-bottle/docker-bottle/stage"
)

// TestCheckSmolvmBackendThroughTheFake runs the check's probe agent on the
// smolvm backend through the contract fake, bridge mode: the probe image is
// packed from the embedded registry, the machine made --from the artifact,
// its workload started, and the probe exec'd in the extracted image with
// the guest dir mounted. Everything the bundle decides holds as on the
// docker backend. What the VM's allowlist would decide cannot: the fake
// gives the guest host sockets (as smolvm's TSI does, DESIGN.md), so a
// direct connection succeeds here; the allowlist is checked in the
// machine's create record instead (TestRunSmolvmRecordsThePlan).
func TestCheckSmolvmBackendThroughTheFake(t *testing.T) {
	eng := testenv.Engine(t)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	cli, err := command.NewDockerCli()
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.Initialize(flags.NewClientOptions()); err != nil {
		t.Fatal(err)
	}
	fake, err := smolvmtest.BuildFake(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"SMOLVM_FAKE_STATE=" + t.TempDir(), "SMOLVM_FAKE_VERSION=1.9.3"}
	state := t.TempDir()
	dirs := stage.Dirs{State: filepath.Join(state, "bottle"), Cache: filepath.Join(state, "cache")}
	svc, err := bottles.New(cli, bottles.WithEngine(eng), bottles.WithDirs(dirs), bottles.WithSmolvm(smolvm.New(fake, smolvm.WithEnv(env...))))
	if err != nil {
		t.Fatal(err)
	}
	pipe, err := image.New(eng, pack.NewSmolvm(fake, smolvm.WithEnv(env...)), dirs.Cache)
	if err != nil {
		t.Fatal(err)
	}
	card, err := svc.Check(context.Background(), bottles.CheckOptions{
		Choice:   plan.Choice{Backend: spec.BackendSmolvm, NetworkMode: spec.NetworkBridge},
		Arch:     runtime.GOARCH,
		Pipeline: pipe,
	})
	if err != nil {
		t.Fatal(err)
	}
	verdict := map[string]probe.Verdict{}
	for _, p := range card.Promises {
		for _, it := range p.Items {
			switch it.Check {
			case probe.KindDirect:
				// Host sockets reach the stand-in host directly; real
				// smolvm's allowlist (the bundle's IP only) would not.
				if it.Verdict != probe.Fail {
					t.Errorf("direct under the fake's host sockets: %s (%s)", it.Verdict, it.Evidence)
				}
				continue
			case probe.KindNonRoot, probe.KindNoCapabilities, probe.KindNoNewPrivs:
				// The fake runs the guest's commands as host processes in
				// the extracted image, where no /proc is mounted: the
				// probe cannot read its own status, and says so.
				if it.Verdict == probe.Fail || it.Verdict == probe.Warn && !strings.Contains(it.Evidence, "not proven") {
					t.Errorf("%s under the fake: %s (%s)", it.Check, it.Verdict, it.Evidence)
				}
				continue
			case probe.KindLookup, probe.KindLoopback:
				// The extracted image has no resolver configured, and the
				// host has no 100.96.0.1: nothing answers, as in smolvm.
				if it.Verdict != probe.Pass {
					t.Errorf("%s %s: %s (%s)", it.Check, it.Target, it.Verdict, it.Evidence)
				}
				continue
			}
			if it.Verdict != probe.Pass {
				t.Errorf("promise %d, %s %s: %s (%s)", p.Promise, it.Check, it.Target, it.Verdict, it.Evidence)
			}
			verdict[string(it.Check)] = it.Verdict
			if it.Check == "cleanup" {
				// check removed its bottle: prove it, with more than the
				// card looks at.
				testenv.NothingLeft(t, eng, testenv.Bottle{Name: it.Target, State: dirs.State,
					Env: append([]string{smolvm.EnvBinary + "=" + fake}, env...)})
			}
		}
	}
	for _, want := range []string{"allowed", "unlisted", "proxy-no-token", "secrets", "secret-on-host", "git-clone",
		"git-push-branch", "git-push-protected", "host-fetch", "event", "operator-route", "cleanup"} {
		if _, ok := verdict[want]; !ok {
			t.Errorf("no %q item on the card", want)
		}
	}
}
