//go:build e2e

package bringup

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/pki"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/spec"
	"github.com/docker-bottle/docker-bottle/stage"
)

// engineStagePlan is a docker-backend plan with its stage on the engine,
// one published port and one secret from $STAGE_TEST_SECRET.
func engineStagePlan(t *testing.T, eng *client.Client, name string) plan.Plan {
	t.Helper()
	// prepareSpec writes a configuration with the host's value.
	t.Setenv("STAGE_TEST_SECRET", "set-when-prepared")
	p := prepareSpec(t, eng, name, spec.BackendDocker, `ports: ["3000"]
egress:
  allow:
    - host: example.test
  secrets:
    - host: example.test
      header: X-Key
      from_env: STAGE_TEST_SECRET
`, testenv.GitRepo(t))
	p.Bundle.StageOnEngine = true
	return p
}

// healthAtIP is Health at the bundle's own address on its network, which
// this host reaches on the local engine: a bundle that goes through the
// engine publishes no port.
func healthAtIP(ctx context.Context, p plan.Plan) error {
	return health(ctx, p, netip.AddrPortFrom(p.Bundle.IP, plan.SupervisePort).String())
}

// TestStageOnEngineUp: a bundle whose stage is on the engine comes up from
// its two labelled volumes and its secrets' tmpfs, with no bind mount and
// no published port; the plugin reads and writes its stage through the
// engine (a guest file) and brings its gate's repository back; the secret
// is in no file of the volumes.
func TestStageOnEngineUp(t *testing.T) {
	eng := testenv.Engine(t)
	ctx := context.Background()
	p := engineStagePlan(t, eng, uniqueName("es"))
	const secret = "stage-test-secret-value"
	getenv := func(k string) string {
		if k == "STAGE_TEST_SECRET" {
			return secret
		}
		return ""
	}
	mounts, err := WriteConfig(p, ConfigOptions{CADir: caDir(p), Getenv: getenv})
	if err != nil {
		t.Fatal(err)
	}
	p, err = Up(ctx, eng, Options{Plan: p, Mounts: mounts, Health: healthAtIP, Version: "test", Allocator: allocator(p, eng), Getenv: getenv, CADir: caDir(p)})
	if err != nil {
		t.Fatal(err)
	}
	res, err := eng.ContainerInspect(ctx, p.Bundle.Container, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range res.Container.Mounts {
		if m.Type != "volume" {
			t.Errorf("the bundle mounts %s %s at %s", m.Type, m.Source, m.Destination)
		}
	}
	for _, role := range []string{plan.RoleStage, plan.RoleGuest} {
		v, err := eng.VolumeInspect(ctx, stage.Volume(p.Slug, role), client.VolumeInspectOptions{})
		if err != nil || v.Volume.Labels[plan.LabelBottle] != p.Slug || v.Volume.Labels[plan.LabelRole] != role {
			t.Errorf("volume %s: %+v %v", role, v.Volume.Labels, err)
		}
	}

	// It goes through the engine: no port is published, not even the one
	// the spec declares, and none can be.
	if len(res.Container.HostConfig.PortBindings) != 0 {
		t.Errorf("the bundle asks for published ports: %v", res.Container.HostConfig.PortBindings)
	}
	if pubs, err := Ports(ctx, eng, p, 0); err != nil || len(pubs) != 0 {
		t.Errorf("ports: %v %v", pubs, err)
	}
	if _, err := Publish(ctx, eng, p, spec.Port{Agent: 5173}); err == nil || !strings.Contains(err.Error(), "publishes no port") {
		t.Errorf("publish: %v, want a refusal", err)
	}

	if err := WriteStageFile(ctx, eng, p, stage.GuestDir+"/probe.json", []byte(`{"marker":"guest-file-marker"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadStageFile(ctx, eng, p, stage.GuestDir+"/probe.json"); err != nil || !strings.Contains(string(got), "guest-file-marker") {
		t.Errorf("guest file read back: %q %v", got, err)
	}
	if found, err := FindInStage(ctx, eng, p, []byte("guest-file-marker")); err != nil || len(found) != 1 || !strings.HasSuffix(found[0], "guest/probe.json") {
		t.Errorf("finding a value in the volumes: %v %v", found, err)
	}
	// Nor the CA key, nor the operator token: they are in the tmpfs too.
	key, err := os.ReadFile(filepath.Join(caDir(p), pki.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	operator, err := os.ReadFile(p.OperatorTokenFile)
	if err != nil {
		t.Fatal(err)
	}
	for what, v := range map[string][]byte{"the secret": []byte(secret), "the CA key": key, "the operator token": operator} {
		if found, err := FindInStage(ctx, eng, p, v); err != nil || len(found) != 0 {
			t.Errorf("%s in the volumes: %v %v", what, found, err)
		}
	}
	// It serves: it read the CA key and the operator token from its tmpfs.
	if err := healthAtIP(ctx, p); err != nil {
		t.Errorf("health: %v", err)
	}

	// What lands in the gate's repository on the engine comes back.
	if err := WriteStageFile(ctx, eng, p, stage.GateRepo+"/refs/heads/from-engine", []byte(p.GitGate.StartCommit+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := SyncGate(ctx, eng, p); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("git", "--git-dir", p.GitGate.Repo, "rev-parse", "refs/heads/from-engine").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != p.GitGate.StartCommit {
		t.Errorf("the gate's repository after SyncGate: %s %v", out, err)
	}
}

// TestStageOnEngineFailedUpLeavesNothing: a bring-up that fails once the
// volumes exist (the secret has no value when it is sent) removes them
// with the rest.
func TestStageOnEngineFailedUpLeavesNothing(t *testing.T) {
	eng := testenv.Engine(t)
	ctx := context.Background()
	p := engineStagePlan(t, eng, uniqueName("ef"))
	mounts, err := WriteConfig(p, ConfigOptions{CADir: caDir(p), Getenv: func(string) string { return "set-when-configured" }})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Up(ctx, eng, Options{Plan: p, Mounts: mounts, Health: healthAtIP, Version: "test", Allocator: allocator(p, eng),
		Getenv: func(string) string { return "" }, CADir: caDir(p)})
	if err == nil || !strings.Contains(err.Error(), "sending the secrets") {
		t.Fatalf("Up without the secret's value: %v", err)
	}
	left, err := testenv.Left(ctx, eng, testenv.Bottle{Name: p.Slug})
	if err != nil || len(left) != 0 {
		t.Errorf("left after the failed bring-up: %v %v", left, err)
	}
}
