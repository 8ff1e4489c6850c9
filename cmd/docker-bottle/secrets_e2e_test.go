//go:build e2e

package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/bringup"
	supclient "github.com/docker-bottle/docker-bottle/bundle/supervisor/client"
	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/pki"
	"github.com/docker-bottle/docker-bottle/plan"
)

// TestSecretsOnlyInTheBundlesMemory: on the local engine, a docker-backend
// bottle's secret, the bottle CA's key and its operator token are in no
// file of its stage dir, nor in docker inspect (env, command, labels,
// mounts) or the logs of its bundle and agent; the bundle mounts the CA's
// certificate alone, and the operator token the plugin keeps is outside
// the stage dir, 0600. The proxy still adds the secret (a stand-in host
// checks its hash), again after stop and start, which mint a new operator
// token: the one before gets 401 from the supervisor.
func TestSecretsOnlyInTheBundlesMemory(t *testing.T) {
	t.Parallel()
	eng := testenv.Engine(t)
	base := testenv.Debian(t, eng)
	cfg := testenv.DockerConfig(t)
	canary := "bottle-canary-" + rand.Text()
	sum := sha256.Sum256([]byte(canary))
	certs, spec := secretSpec(t, base)
	env := []string{"DOCKER_BOTTLE_SMOLVM=", "BOTTLE_TEST_LOCAL_SECRET=" + canary}
	name := bottleOf(t, cfg, env, "docker", "sm", map[string]string{"bottle.yaml": spec})
	svc := serviceOf(t, cfg)
	p, err := svc.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	if p.Bundle.StageOnEngine || p.ThroughEngine() {
		t.Fatal("the bottle goes through the engine: this test is about the local one")
	}
	secretHost(t, eng, p, certs, sum[:])
	// The stand-in answers only when the header has the secret's value.
	waitLogs(t, cfg, nil, name, "secret arrived at "+host)

	key, err := os.ReadFile(filepath.Join(stateOf(cfg).CA(), pki.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	operator := operatorToken(t, p)
	values := map[string]string{"the secret": canary, "the CA key": strings.Split(string(key), "\n")[1], "the operator token": operator}
	nowhereOnHost(t, eng, p, values)
	bundleMountsNoSecret(t, eng, p, stateOf(cfg).CA())
	if a := docker(t, cfg, nil, "bottle", "approvals", name); a.code != 0 {
		t.Errorf("approvals: exit %d %s", a.code, a.stderr)
	}

	if r := docker(t, cfg, env, "bottle", "stop", name); r.code != 0 {
		t.Fatalf("stop: %d %s", r.code, r.stderr)
	}
	if r := docker(t, cfg, env, "bottle", "start", name); r.code != 0 {
		t.Fatalf("start: %d %s", r.code, r.stderr)
	}
	// The agent's command ran again, and the secret arrived again: start
	// sent it to the bundle's new tmpfs.
	waitLogsN(t, cfg, nil, name, "secret arrived at "+host, 2)
	if p, err = svc.Load(name); err != nil {
		t.Fatal(err)
	}
	rotated := operatorToken(t, p)
	if rotated == operator {
		t.Error("start kept the operator token")
	}
	ctx := context.Background()
	old, err := supclient.New(p.Endpoints.HostSupervise, operator)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Approvals(ctx); supclient.StatusCode(err) != 401 {
		t.Errorf("the operator token of the run before start: %v, want 401", err)
	}
	if a := docker(t, cfg, nil, "bottle", "approvals", name); a.code != 0 {
		t.Errorf("approvals after start: exit %d %s", a.code, a.stderr)
	}
	values["the operator token"] = rotated
	values["the operator token before start"] = operator
	nowhereOnHost(t, eng, p, values)
	bundleMountsNoSecret(t, eng, p, stateOf(cfg).CA())

	if r := docker(t, cfg, env, "bottle", "rm", "-f", name); r.code != 0 {
		t.Fatalf("rm -f: %d %s", r.code, r.stderr)
	}
	if _, err := os.Stat(p.OperatorTokenFile); !os.IsNotExist(err) {
		t.Errorf("rm left the operator token: %v", err)
	}
}

// The host a secret goes to in these tests.
const host = "api.secret.test"

// secretSpec is the bottle.yaml of a shell agent that asks the stand-in
// host (secretHost) until it answers that the secret arrived: the proxy
// adds it from $BOTTLE_TEST_LOCAL_SECRET. It returns the stand-in's
// certificates too.
func secretSpec(t *testing.T, base string) (string, string) {
	ca, caFile := standInCA(t)
	certs := standInCert(t, ca, host, filepath.Join(t.TempDir(), "api"))
	return certs, `agent:
  provider: shell
  image: ` + base + `
  command: [sh, -c, 'until curl -fsS --max-time 5 https://` + host + `/secret; do sleep 1; done; exec sleep 600']
egress:
  extra_ca: ` + caFile + `
  allow:
    - host: ` + host + `
      ports: [443]
      private: true
  secrets:
    - host: ` + host + `
      header: X-Key
      from_env: BOTTLE_TEST_LOCAL_SECRET
`
}

// secretHost starts the stand-in host on p's bundle network: it answers
// https://HOST/secret only when the header has the value whose sha256 is
// sum.
func secretHost(t *testing.T, eng *client.Client, p plan.Plan, certs string, sum []byte) {
	testenv.StartUpstream(t, eng, p.Bundle.Network, host, certs, map[string]string{plan.LabelBottle: p.Slug, testenv.TestLabel: "1"},
		"--secret-header", "X-Key", "--secret-sha256", hex.EncodeToString(sum))
}

// beforeMemorySecrets is the last commit whose plugin wrote a local
// bottle's secrets, operator token and CA key where its bundle mounted them.
const beforeMemorySecrets = "94846064b379b75041b166e406066206e4085abc"

// TestSecretsOfAnOldBottle: a local bottle made by the plugin before the
// secrets went to the bundle's memory (built from that commit) starts
// with this one: its bundle still reads them from its stage dir, the
// proxy still adds the secret, the operator's commands work, start says
// how to move it on, and rm removes it.
func TestSecretsOfAnOldBottle(t *testing.T) {
	t.Parallel()
	eng := testenv.Engine(t)
	base := testenv.Debian(t, eng)
	cfg := testenv.DockerConfig(t)
	installed := filepath.Join(cfg, "cli-plugins", "docker-bottle")
	current, err := os.ReadFile(installed)
	if err != nil {
		t.Fatal(err)
	}
	install := func(bin []byte) {
		t.Helper()
		if err := os.WriteFile(installed, bin, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	install(oldPlugin(t, beforeMemorySecrets))
	canary := "bottle-canary-" + rand.Text()
	sum := sha256.Sum256([]byte(canary))
	certs, spec := secretSpec(t, base)
	env := []string{"DOCKER_BOTTLE_SMOLVM=", "BOTTLE_TEST_LOCAL_SECRET=" + canary}
	name := bottleOf(t, cfg, env, "docker", "so", map[string]string{"bottle.yaml": spec})
	// Whatever happens next, the bottle is removed by this plugin.
	install(current)
	p, err := serviceOf(t, cfg).Load(name)
	if err != nil {
		t.Fatal(err)
	}
	secretHost(t, eng, p, certs, sum[:])
	waitLogs(t, cfg, nil, name, "secret arrived at "+host)
	if data, err := os.ReadFile(filepath.Join(p.StageDir, "secrets", "0")); err != nil || string(data) != canary {
		t.Fatalf("the old plugin did not write the secret into the stage dir (%v): the test proves nothing", err)
	}

	if r := docker(t, cfg, env, "bottle", "stop", name); r.code != 0 {
		t.Fatalf("stop: %d %s", r.code, r.stderr)
	}
	r := docker(t, cfg, env, "bottle", "start", name)
	if r.code != 0 {
		t.Fatalf("start: %d %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "made by an older docker bottle") || !strings.Contains(r.stderr, "docker bottle rm "+name) {
		t.Errorf("start does not say the bottle keeps its secrets on disk:\n%s", r.stderr)
	}
	waitLogsN(t, cfg, nil, name, "secret arrived at "+host, 2)
	if a := docker(t, cfg, nil, "bottle", "approvals", name); a.code != 0 {
		t.Errorf("approvals after start: exit %d %s", a.code, a.stderr)
	}
	if r := docker(t, cfg, env, "bottle", "rm", "-f", name); r.code != 0 {
		t.Fatalf("rm -f: %d %s", r.code, r.stderr)
	}
}

// oldPlugin builds the plugin of commit (of this repository), with the
// bundle binary for this host's architecture, and returns it.
func oldPlugin(t *testing.T, commit string) []byte {
	t.Helper()
	src := t.TempDir()
	archive := exec.Command("sh", "-c", `git -C "$1" archive --format=tar "$2" | tar -x -C "$3"`, "sh", testenv.ModuleRoot(), commit, src)
	if out, err := archive.CombinedOutput(); err != nil {
		t.Fatalf("the source of %s: %v\n%s", commit, err, out)
	}
	bins := filepath.Join(src, "internal", "bundlebin", "bin")
	for _, bin := range []string{"bottle-bundle", "bottle-probe"} {
		out := filepath.Join(bins, bin+"-linux-"+runtime.GOARCH)
		build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "./cmd/"+bin)
		build.Dir, build.Env = src, append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
		if msg, err := build.CombinedOutput(); err != nil {
			t.Fatalf("building %s of %s: %v\n%s", bin, commit, err, msg)
		}
		// Compressed, as the plugin embeds it.
		if msg, err := exec.Command("gzip", "-n", "-f", out).CombinedOutput(); err != nil {
			t.Fatalf("compressing %s: %v\n%s", bin, err, msg)
		}
	}
	plugin := filepath.Join(src, "docker-bottle")
	build := exec.Command("go", "build", "-o", plugin, "./cmd/docker-bottle")
	build.Dir, build.Env = src, append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the plugin of %s: %v\n%s", commit, err, msg)
	}
	data, err := os.ReadFile(plugin)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// operatorToken reads the operator token the plugin keeps for p, and
// fails the test unless it is outside the stage dir (which the bundle
// mounts) and the user's alone.
func operatorToken(t *testing.T, p plan.Plan) string {
	t.Helper()
	if rel, err := filepath.Rel(p.StageDir, p.OperatorTokenFile); err != nil || !strings.HasPrefix(rel, "..") {
		t.Errorf("the operator token %s is in the stage dir %s", p.OperatorTokenFile, p.StageDir)
	}
	st, err := os.Stat(p.OperatorTokenFile)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("the operator token's mode is %v", st.Mode().Perm())
	}
	tok, err := os.ReadFile(p.OperatorTokenFile)
	if err != nil || len(strings.TrimSpace(string(tok))) < 20 {
		t.Fatalf("the operator token: %q %v", tok, err)
	}
	return strings.TrimSpace(string(tok))
}

// nowhereOnHost fails the test when any of values (what: value) is in a
// file of p's stage dir, in docker inspect of a container of the bottle
// (env, command, labels, mounts), or in its logs.
func nowhereOnHost(t *testing.T, eng *client.Client, p plan.Plan, values map[string]string) {
	t.Helper()
	ctx := context.Background()
	files := 0
	if err := filepath.WalkDir(p.StageDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		data, err := os.ReadFile(path)
		for what, v := range values {
			if err == nil && strings.Contains(string(data), v) {
				t.Errorf("%s is in %s", what, path)
			}
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Fatalf("no file in the stage dir %s", p.StageDir)
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
		logs := bringup.Logs(ctx, eng, c.ID, 100000)
		if c.Labels[plan.LabelRole] == plan.RoleAgent && logs == "" {
			t.Errorf("no logs of %s to search", c.Names[0])
		}
		for what, v := range values {
			if strings.Contains(string(res.Raw), v) {
				t.Errorf("docker inspect %s shows %s", c.Names[0], what)
			}
			if strings.Contains(logs, v) {
				t.Errorf("docker logs %s shows %s", c.Names[0], what)
			}
		}
	}
}

// bundleMountsNoSecret fails the test unless p's bundle has its secrets'
// tmpfs, mounts nothing of the CA dir caDir but the certificate, and
// mounts its stage dir read-only but for the gate's repository (not its
// config and hooks) and the audit dir.
func bundleMountsNoSecret(t *testing.T, eng *client.Client, p plan.Plan, caDir string) {
	t.Helper()
	res, err := eng.ContainerInspect(context.Background(), p.Bundle.Container, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := res.Container.HostConfig.Tmpfs[bringup.SecretsMount]; !ok {
		t.Errorf("the bundle has no tmpfs at %s: %v", bringup.SecretsMount, res.Container.HostConfig.Tmpfs)
	}
	writable := map[string]bool{}
	for _, m := range res.Container.Mounts {
		if strings.HasPrefix(m.Source, caDir) && m.Source != filepath.Join(caDir, pki.CertFile) {
			t.Errorf("the bundle mounts %s at %s", m.Source, m.Destination)
		}
		if m.RW {
			writable[m.Destination] = true
		}
		if rel, err := filepath.Rel(p.StageDir, m.Source); err == nil && !strings.HasPrefix(rel, "..") &&
			m.Destination != path.Join(bringup.StageMount, filepath.ToSlash(rel)) {
			t.Errorf("the bundle mounts %s at %s", m.Source, m.Destination)
		}
	}
	want := map[string]bool{bringup.StageMount + "/gate.git": true, bringup.StageMount + "/audit": true}
	for d := range writable {
		if strings.HasPrefix(d, bringup.StageMount) && !want[d] {
			t.Errorf("the bundle may write into %s", d)
		}
	}
	for d := range want {
		if !writable[d] {
			t.Errorf("the bundle cannot write into %s: mounts %+v", d, res.Container.Mounts)
		}
	}
	for _, ro := range []string{bringup.StageMount, bringup.StageMount + "/gate.git/config", bringup.StageMount + "/gate.git/hooks"} {
		found := false
		for _, m := range res.Container.Mounts {
			found = found || m.Destination == ro && !m.RW
		}
		if !found {
			t.Errorf("%s is not mounted read-only in the bundle: %+v", ro, res.Container.Mounts)
		}
	}
}
