//go:build e2e

package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	dockerbackend "github.com/docker-bottle/docker-bottle/backend/docker"
	"github.com/docker-bottle/docker-bottle/bringup"
	"github.com/docker-bottle/docker-bottle/hostcheck"
	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/internal/testenv/testio"
	"github.com/docker-bottle/docker-bottle/pki"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/stage"
)

// throughEngine is the environment of a docker-backend bottle that goes
// through the engine as it must on a remote engine, on the local one: the
// one test switch, and git-remote-bottle where git finds it for the
// bottle::NAME remote.
func throughEngine(t *testing.T) []string {
	return []string{"DOCKER_BOTTLE_SMOLVM=", hostcheck.EnvThroughEngine + "=1",
		"PATH=" + remoteHelper(t) + string(os.PathListSeparator) + os.Getenv("PATH")}
}

// TestStageOnEngineLifecycle is a user's session with the bottle's stage on
// the engine (as for a remote engine, here on the local one): `run -d` of
// an agent that reads its guest dir and pushes through the gate, `logs`,
// `exec`, `stop`, `start` (the secrets sent again), `rm`. Neither the
// bundle nor the agent container mounts a path of the client; the secret
// is in no file of the bottle's volumes, of the stage dir, nor in docker
// inspect or logs of its containers.
func TestStageOnEngineLifecycle(t *testing.T) {
	t.Parallel()
	eng := testenv.Engine(t)
	base := testenv.Debian(t, eng)
	cfg := testenv.DockerConfig(t)
	canary := "bottle-canary-" + rand.Text()
	env := append(throughEngine(t), "BOTTLE_TEST_STAGE_SECRET="+canary)
	name := fmt.Sprintf("se-%d", time.Now().UnixNano()%1e6)
	repo := pushingShellRepo(t, base, "test -s /run/bottle/token && test -s /run/bottle/ca.pem && test -e /run/bottle/prompt && echo guest-ok\n"+pushWork, `egress:
  secrets:
    - host: api.example.com
      header: X-Key
      from_env: BOTTLE_TEST_STAGE_SECRET
`)
	removedAtEnd(t, cfg, env, name, repo)
	r := docker(t, cfg, env, "bottle", "run", "-d", "--backend", "docker", "--name", name, "--progress", "plain", repo)
	if r.code != 0 || strings.TrimSpace(r.stdout) != name {
		t.Fatalf("run -d: exit %d, stdout %q\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "copying the stage to the engine") {
		t.Errorf("run did not copy the stage to the engine:\n%s", r.stderr)
	}
	// The one switch takes the git remote through the engine too.
	if url := strings.TrimSpace(gitIn(t, repo, "config", "--get", "remote.bottle-"+name+".url")); url != "bottle::"+name {
		t.Errorf("the registered remote fetches from %q, want bottle::%s", url, name)
	}
	logsShow := func(want ...string) string {
		t.Helper()
		var logs string
		for start := time.Now(); time.Since(start) < 90*time.Second; time.Sleep(300 * time.Millisecond) {
			logs = docker(t, cfg, nil, "bottle", "logs", name).stdout
			if strings.Contains(logs, want[len(want)-1]) {
				break
			}
		}
		for _, w := range want {
			if !strings.Contains(logs, w) {
				t.Fatalf("agent logs have no %q:\n%s", w, logs)
			}
		}
		return logs
	}
	logsShow("guest-ok", "pushed")

	svc := serviceOf(t, cfg)
	p, err := svc.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Bundle.StageOnEngine {
		t.Error("the plan does not record the stage on the engine")
	}
	noClientPaths(t, eng, p.Bundle.Container, p.Docker.Container)
	noPublishedPort(t, eng, p.Bundle.Container, p.Docker.Container)
	// Its later commands follow the plan, not the switch: the supervisor
	// is asked through the engine, and no port is listed.
	if a := docker(t, cfg, nil, "bottle", "approvals", name); a.code != 0 {
		t.Errorf("approvals without the switch: exit %d %s", a.code, a.stderr)
	}
	if a := docker(t, cfg, nil, "bottle", "ls", "--format", "{{.Name}} {{.Ports}}"); strings.TrimSpace(a.stdout) != name {
		t.Errorf("ls lists ports of a bottle that publishes none: %q %s", a.stdout, a.stderr)
	}
	if a := docker(t, cfg, nil, "bottle", "port", name); a.code != 0 || strings.TrimSpace(a.stdout) != "" {
		t.Errorf("port of a bottle that publishes none: exit %d %q %s", a.code, a.stdout, a.stderr)
	}
	secretNowhere(t, eng, p, canary)
	// Nor are the operator token and the bottle CA's key on the engine's
	// disk: they go to the bundle's tmpfs with the secrets.
	operator, err := os.ReadFile(p.OperatorTokenFile)
	if err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(filepath.Join(stateOf(cfg).CA(), pki.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	notInVolumes(t, eng, p, strings.TrimSpace(string(operator)), strings.Split(string(key), "\n")[1])

	if e := docker(t, cfg, nil, "bottle", "exec", name, "--", "cat", "/workspace/agent.txt"); e.code != 0 || e.stdout != "work\n" {
		t.Errorf("exec: exit %d %q %q", e.code, e.stdout, e.stderr)
	}
	if e := docker(t, cfg, nil, "bottle", "exec", name, "--", "touch", plan.GuestDir+"/mine"); e.code == 0 {
		t.Error("the agent wrote into its guest dir")
	}
	if r := docker(t, cfg, env, "bottle", "stop", name); r.code != 0 {
		t.Fatalf("stop: %d %s", r.code, r.stderr)
	}
	// The bundle's tmpfs is gone with the stop: start sends the secrets
	// again, or the bundle would wait for them and never be healthy. It
	// waits for that health through the engine, as run does.
	since := time.Now().Unix()
	if r := docker(t, cfg, env, "bottle", "start", name); r.code != 0 {
		t.Fatalf("start: %d %s", r.code, r.stderr)
	}
	healthThroughEngine(t, cfg, nil, name, since, "start")
	if a := docker(t, cfg, nil, "bottle", "ls", "--format", "{{.Name}} {{.State}}"); strings.TrimSpace(a.stdout) != name+" running" {
		t.Errorf("ls after start: %q", a.stdout)
	}
	if e := docker(t, cfg, nil, "bottle", "exec", name, "--", "cat", "/workspace/agent.txt", plan.GuestTokenFile); e.code != 0 || !strings.HasPrefix(e.stdout, "work\n") {
		t.Errorf("exec after start: exit %d %q %q", e.code, e.stdout, e.stderr)
	}
	logsShow("guest-ok", "pushed", "guest-ok")
	secretNowhere(t, eng, p, canary)

	if r := docker(t, cfg, env, "bottle", "rm", "-f", name); r.code != 0 {
		t.Fatalf("rm -f: %d %s", r.code, r.stderr)
	}
	testenv.NothingLeft(t, eng, bottleIn(cfg, env, name, repo))
}

// TestCheckWithStageOnEngine: `docker bottle check` passes every item with
// the bottle's stage on the engine: the secret reaches the proxy through
// the bundle's tmpfs (the stand-in host checks its hash) and is in none of
// the volumes' files; the probe reads its configuration from the guest
// volume; the agent's branch reaches the user's repository from the gate's
// repository in the stage volume; nothing is left.
func TestCheckWithStageOnEngine(t *testing.T) {
	t.Parallel()
	checkPasses(t, throughEngine(t))
}

// healthOf asks a bundle that goes through the engine for its health, as
// the plugin does: through the engine's exec of the bundle's dial.
func healthOf(eng *client.Client) func(context.Context, plan.Plan) error {
	return bringup.HealthThrough(func(p plan.Plan) bringup.DialFunc {
		return dockerbackend.DialContext(eng, p.Bundle.Container, bringup.BinaryPath, plan.SupervisePort)
	})
}

// noPublishedPort fails the test when a container publishes a port on its
// engine's host: a bottle that goes through the engine publishes none.
func noPublishedPort(t *testing.T, eng *client.Client, containers ...string) {
	t.Helper()
	for _, c := range containers {
		res, err := eng.ContainerInspect(context.Background(), c, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Container.HostConfig.PortBindings) > 0 {
			t.Errorf("%s asks the engine to publish %v", c, res.Container.HostConfig.PortBindings)
		}
		if ns := res.Container.NetworkSettings; ns != nil {
			for port, bs := range ns.Ports {
				if len(bs) > 0 {
					t.Errorf("%s publishes %s on %v", c, port, bs)
				}
			}
		}
	}
}

// noClientPaths fails the test when a container binds any path of the
// client: only volumes and tmpfs mounts may be there.
func noClientPaths(t *testing.T, eng *client.Client, containers ...string) {
	t.Helper()
	for _, c := range containers {
		res, err := eng.ContainerInspect(context.Background(), c, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		hc := res.Container.HostConfig
		if len(hc.Binds) > 0 {
			t.Errorf("%s binds %v", c, hc.Binds)
		}
		for _, m := range hc.Mounts {
			if m.Type != mount.TypeVolume && m.Type != mount.TypeTmpfs {
				t.Errorf("%s mounts %s %s at %s", c, m.Type, m.Source, m.Target)
			}
		}
		vols := 0
		for _, m := range res.Container.Mounts {
			if m.Type != mount.TypeVolume {
				t.Errorf("%s has a %s mount of %s at %s", c, m.Type, m.Source, m.Destination)
			}
			vols++
		}
		if vols == 0 {
			t.Errorf("%s mounts no volume", c)
		}
	}
}

// secretNowhere fails the test when the secret value is in a file of the
// bottle's volumes or of its stage dir, or in docker inspect or logs of
// any of its containers.
func secretNowhere(t *testing.T, eng *client.Client, p plan.Plan, secret string) {
	t.Helper()
	ctx := context.Background()
	notInVolumes(t, eng, p, secret)
	if err := filepath.WalkDir(p.StageDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err == nil && strings.Contains(string(data), secret) {
			t.Errorf("the secret is in %s", path)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	f := make(client.Filters).Add("label", plan.LabelBottle+"="+p.Slug)
	cs, err := eng.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil || len(cs.Items) < 2 {
		t.Fatalf("the bottle's containers: %v %v", cs.Items, err)
	}
	for _, c := range cs.Items {
		res, err := eng.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(res.Raw), secret) {
			t.Errorf("docker inspect %s shows the secret", c.Names[0])
		}
		if strings.Contains(bringup.Logs(ctx, eng, c.ID, 100000), secret) {
			t.Errorf("docker logs %s shows the secret", c.Names[0])
		}
	}
}

// notInVolumes fails the test when any of values is in a file of the
// bottle's stage or guest volume, read by a container of its own, which
// mounts them read-only.
func notInVolumes(t *testing.T, eng *client.Client, p plan.Plan, values ...string) {
	t.Helper()
	ctx := context.Background()
	base := testenv.Debian(t, eng)
	for _, role := range []string{plan.RoleStage, plan.RoleGuest} {
		// Mounting a missing volume would make it, and leave it.
		v, err := eng.VolumeInspect(ctx, stage.Volume(p.Slug, role), client.VolumeInspectOptions{})
		if err != nil || v.Volume.Labels[plan.LabelBottle] != p.Slug || v.Volume.Labels[plan.LabelRole] != role {
			t.Fatalf("the bottle's %s volume: %+v %v", role, v.Volume, err)
		}
	}
	cmd := []string{"grep", "-rlF"}
	for _, v := range values {
		cmd = append(cmd, "-e", v)
	}
	c, err := eng.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{Image: base, Cmd: append(cmd, "/v")},
		HostConfig: &container.HostConfig{Mounts: []mount.Mount{
			{Type: mount.TypeVolume, Source: stage.Volume(p.Slug, plan.RoleStage), Target: "/v/stage", ReadOnly: true},
			{Type: mount.TypeVolume, Source: stage.Volume(p.Slug, plan.RoleGuest), Target: "/v/guest", ReadOnly: true},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
	if _, err := eng.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	wait := eng.ContainerWait(ctx, c.ID, client.ContainerWaitOptions{})
	select {
	case st := <-wait.Result:
		// grep: 1 is no match; 0 a match, 2 a failure to look.
		if st.StatusCode != 1 {
			t.Errorf("grep for %d values in the volumes exited %d: %s", len(values), st.StatusCode, bringup.Logs(ctx, eng, c.ID, 20))
		}
	case err := <-wait.Error:
		t.Fatal(err)
	}
}

// TestStageOnEngineRestartedBundleWaitsForStart: a bundle whose stage is on
// the engine and whose process died is restarted by the engine with an
// empty tmpfs, so it waits for its secrets rather than serve without them;
// `docker bottle start` sends them and it serves again.
func TestStageOnEngineRestartedBundleWaitsForStart(t *testing.T) {
	t.Parallel()
	eng := testenv.Engine(t)
	base := testenv.Debian(t, eng)
	cfg := testenv.DockerConfig(t)
	name := bottleOf(t, cfg, throughEngine(t), "docker", "sr", map[string]string{"bottle.yaml": "agent:\n  provider: shell\n  image: " + base + "\n" +
		"  command: [sh, -c, 'echo agent-up; exec sleep 600']\n"})
	p, err := serviceOf(t, cfg).Load(name)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	health := healthOf(eng)
	if err := health(ctx, p); err != nil {
		t.Fatalf("health after run: %v", err)
	}
	killBundle(t, eng, p)
	testio.Eventually(t, 30*time.Second, func() bool {
		c, err := eng.ContainerInspect(ctx, p.Bundle.Container, client.ContainerInspectOptions{})
		return err == nil && c.Container.RestartCount == 1 && c.Container.State.Running && !c.Container.State.Restarting
	}, func() string { return "the engine did not restart the bundle" })
	// A bundle with its secrets serves within tens of milliseconds of its
	// start: this one must not, however long one asks.
	for start := time.Now(); time.Since(start) < 3*time.Second; {
		if err := health(ctx, p); err == nil {
			t.Fatal("the restarted bundle serves without its secrets")
		}
	}
	if r := docker(t, cfg, throughEngine(t), "bottle", "start", name); r.code != 0 {
		t.Fatalf("start: exit %d %s", r.code, r.stderr)
	}
	if err := health(ctx, p); err != nil {
		t.Errorf("health after start: %v", err)
	}
}
