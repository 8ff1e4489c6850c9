//go:build e2e

package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/internal/testenv/testio"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/stage"
	"github.com/moby/moby/client"
)

// engineIdentity is what tells two engines apart: its ID, the hostname it
// reports and its data root.
func engineIdentity(t *testing.T, cfg string, env []string, args ...string) string {
	t.Helper()
	r := docker(t, cfg, env, append(args, "info", "--format", "{{.ID}}|{{.Name}}|{{.DockerRootDir}}")...)
	if r.code != 0 || strings.Count(r.stdout, "|") != 2 {
		t.Fatalf("docker %v info: exit %d: %s %s", args, r.code, r.stdout, r.stderr)
	}
	return strings.TrimSpace(r.stdout)
}

// The harness's engine answers through both context kinds, and it is
// another host: another engine ID and hostname, and what is made there is
// not on the local engine.
func TestRemoteEngineIsAnotherHost(t *testing.T) {
	remote := testenv.RemoteEngine(t)
	local := engineIdentity(t, testenv.DockerConfig(t), nil)
	env := remote.Env()

	ids := map[string]string{}
	for _, ctx := range []string{remote.TLSContext, remote.SSHContext} {
		v := docker(t, remote.Config, env, "--context", ctx, "version", "--format", "{{.Server.Version}} {{.Server.Os}}")
		if v.code != 0 || !strings.HasSuffix(strings.TrimSpace(v.stdout), " linux") {
			t.Fatalf("docker --context %s version: exit %d: %q %s", ctx, v.code, v.stdout, v.stderr)
		}
		ps := docker(t, remote.Config, env, "--context", ctx, "ps", "-a", "--format", "{{.ID}}")
		if ps.code != 0 {
			t.Fatalf("docker --context %s ps: exit %d: %s", ctx, ps.code, ps.stderr)
		}
		ids[ctx] = engineIdentity(t, remote.Config, env, "--context", ctx)
	}
	if ids[remote.TLSContext] != ids[remote.SSHContext] {
		t.Errorf("the two contexts reach different engines: tls %q, ssh %q", ids[remote.TLSContext], ids[remote.SSHContext])
	}
	id := ids[remote.TLSContext]
	if strings.Split(id, "|")[0] == strings.Split(local, "|")[0] {
		t.Fatalf("the remote context answers with the local engine's ID: remote %q, local %q", id, local)
	}
	if name := strings.Split(id, "|")[1]; name != "remote-engine" {
		t.Errorf("the remote engine's hostname is %q, want remote-engine (its own uts namespace)", name)
	}

	// Its root filesystem is its own: the client's module dir is not there.
	root := testenv.ModuleRoot()
	if out, err := remote.SSH("test -d /etc/docker/tls && ! test -e " + root).CombinedOutput(); err != nil {
		t.Errorf("over ssh, the remote host lacks its own /etc/docker/tls or has the client's %s: %v %s", root, err, out)
	}

	// A volume made through the remote context is on the remote engine only.
	vol := fmt.Sprintf("bottle-remote-probe-%06x", rand.Uint32()&0xffffff)
	if r := docker(t, remote.Config, env, "--context", remote.TLSContext, "volume", "create", "--label", "dev.dockerbottle.test=1", vol); r.code != 0 {
		t.Fatalf("volume create on the remote engine: %s", r.stderr)
	}
	t.Cleanup(func() { docker(t, remote.Config, env, "--context", remote.TLSContext, "volume", "rm", vol) })
	if r := docker(t, remote.Config, env, "--context", remote.SSHContext, "volume", "inspect", vol); r.code != 0 {
		t.Errorf("the volume made over tcp+TLS is not there over ssh: %s", r.stderr)
	}
	if r := docker(t, testenv.DockerConfig(t), nil, "volume", "inspect", vol); r.code == 0 {
		t.Errorf("the volume made on the remote engine is on the local engine too")
	}
}

// withoutDockerEnv is env without docker's variables (DOCKER_HOST,
// DOCKER_CONTEXT, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH, ...), as a user's
// shell may well be.
func withoutDockerEnv(env []string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, "DOCKER_") })
}

// remoteCerts is the dir of the TLS client certificates (ca.pem,
// cert.pem, key.pem) of the remote engine's tcp:// context.
func remoteCerts(t *testing.T, remote *testenv.Remote) string {
	t.Helper()
	certs, err := filepath.Glob(filepath.Join(remote.Config, "contexts", "tls", "*", "docker"))
	if err != nil || len(certs) == 0 {
		t.Fatalf("no TLS material of the remote contexts in %s: %v", remote.Config, err)
	}
	return certs[0]
}

// remoteHost is the remote engine's tcp:// address.
func remoteHost(remote *testenv.Remote) string {
	return "tcp://" + net.JoinHostPort(remote.Addr, "2376")
}

// remoteClient is an engine client of the harness's remote engine, over
// tcp:// with the TLS client certificates of its context.
func remoteClient(t *testing.T, remote *testenv.Remote) *client.Client {
	t.Helper()
	certs := remoteCerts(t, remote)
	c, err := client.New(client.WithHost(remoteHost(remote)),
		client.WithTLSClientConfig(filepath.Join(certs, "ca.pem"), filepath.Join(certs, "cert.pem"), filepath.Join(certs, "key.pem")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// remoteBase is the local Debian base image, loaded into the remote engine
// as docker does (docker save | docker --context X load).
func remoteBase(t *testing.T, remote *testenv.Remote) string {
	t.Helper()
	base := testenv.Debian(t, testenv.Engine(t))
	if r := docker(t, remote.Config, remote.Env(), "--context", remote.TLSContext, "image", "inspect", base); r.code == 0 {
		return base
	}
	load := exec.Command("sh", "-c", `docker save "$0" | docker --context "$1" load -q`, base, remote.TLSContext)
	load.Env = append(os.Environ(), remote.Env()...)
	if out, err := load.CombinedOutput(); err != nil {
		t.Fatalf("loading %s into the remote engine: %v\n%s", base, err, out)
	}
	return base
}

// onPath is env with dir first on its PATH.
func onPath(env []string, dir string) []string {
	path := os.Getenv("PATH")
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	return append(slices.Clone(env), "PATH="+dir+string(os.PathListSeparator)+path)
}

// A user's session with a bottle on the remote engine, through the real
// docker CLI, for each way to name the engine (--context of either kind,
// DOCKER_CONTEXT, DOCKER_HOST): `run -d` of a shell agent
// that pushes a branch (auto picks the docker backend there), `ls`,
// `logs`, `exec`, `approvals`, `events`, `audit`, `diff`, `git fetch
// bottle-NAME` in the user's repository, `stop`, `start`, `rm`. The
// bottle's containers bind no path of the client and publish no port;
// nothing is left on the remote engine, on the local one or the client.
func TestBottleOnARemoteContext(t *testing.T) {
	remote := testenv.RemoteEngine(t)
	far := remoteClient(t, remote)
	base := remoteBase(t, remote)
	helper := remoteHelper(t)
	tlsEnv := []string{"DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH=" + remoteCerts(t, remote)}
	for _, way := range []struct {
		name string
		args []string
		env  []string
	}{
		{"context-tls", []string{"--context", remote.TLSContext}, nil},
		{"context-ssh", []string{"--context", remote.SSHContext}, nil},
		{"DOCKER_CONTEXT", nil, []string{"DOCKER_CONTEXT=" + remote.TLSContext}},
		{"DOCKER_HOST", nil, append([]string{"DOCKER_HOST=" + remoteHost(remote)}, tlsEnv...)},
	} {
		t.Run(way.name, func(t *testing.T) {
			t.Parallel()
			env := append(onPath(remote.Env(), helper), way.env...)
			bottle := func(args ...string) result {
				t.Helper()
				return docker(t, remote.Config, env, append(append(slices.Clone(way.args), "bottle"), args...)...)
			}
			name := fmt.Sprintf("far-%06x", rand.Uint32()&0xffffff)
			repo := testenv.GitRepoWith(t, map[string]string{"bottle.yaml": `agent:
  provider: shell
  image: ` + base + `
  command:
    - sh
    - -c
    - |
      echo work > agent.txt && git add agent.txt && git commit -qm "agent work" && git push -q && echo pushed
      exec sleep 600
`})
			t.Cleanup(func() {
				bottle("rm", "-f", name)
				testenv.NothingLeft(t, far, bottleIn(remote.Config, env, name, repo))
				testenv.NothingLeft(t, testenv.Engine(t), bottleIn(remote.Config, env, name, repo))
			})
			r := bottle("run", "-d", "--name", name, "--progress", "plain", repo)
			if r.code != 0 || strings.TrimSpace(r.stdout) != name {
				t.Fatalf("run -d: exit %d, stdout %q\n%s", r.code, r.stdout, r.stderr)
			}
			var logs string
			testio.Eventually(t, 90*time.Second, func() bool {
				logs = bottle("logs", name).stdout
				return strings.Contains(logs, "pushed")
			}, func() string { return "the agent did not push:\n" + logs })

			p, err := serviceOf(t, remote.Config).Load(name)
			if err != nil {
				t.Fatal(err)
			}
			if p.Backend != "docker" || !p.ThroughEngine() {
				t.Errorf("the plan of a bottle on a remote engine: backend %s, through the engine %v", p.Backend, p.ThroughEngine())
			}
			noClientPaths(t, far, p.Bundle.Container, p.Docker.Container)
			noPublishedPort(t, far, p.Bundle.Container, p.Docker.Container)

			// The subtests share the client's state dir: each looks at its
			// own bottle's row.
			row := func(format string) string {
				a := bottle("ls", "--format", "{{.Name}} "+format)
				for line := range strings.Lines(a.stdout) {
					if v, ok := strings.CutPrefix(line, name+" "); ok {
						return strings.TrimSpace(v)
					}
				}
				t.Errorf("ls has no row of %s: %q %s", name, a.stdout, a.stderr)
				return ""
			}
			if r := row("{{.State}} {{.Ports}}"); r != "running" {
				t.Errorf("ls: state and ports %q, want running and no port", r)
			}
			if e := bottle("exec", name, "--", "cat", plan.GuestWorkspace+"/agent.txt"); e.code != 0 || e.stdout != "work\n" {
				t.Errorf("exec: exit %d %q %q", e.code, e.stdout, e.stderr)
			}
			if a := bottle("approvals", name); a.code != 0 {
				t.Errorf("approvals: exit %d %s", a.code, a.stderr)
			}
			if e := bottle("events", name); e.code != 0 || strings.TrimSpace(e.stdout) == "" {
				t.Errorf("events: exit %d %q %s", e.code, e.stdout, e.stderr)
			}
			if a := bottle("audit", name); a.code != 0 || !strings.Contains(a.stdout, "push") {
				t.Errorf("audit: exit %d %q %s", a.code, a.stdout, a.stderr)
			}
			if d := bottle("diff", name); d.code != 0 || !strings.Contains(d.stdout, "+work") {
				t.Errorf("diff: exit %d %q %q", d.code, d.stdout, d.stderr)
			}
			// git runs in the user's shell, whose current context is the
			// default one, with no DOCKER_HOST nor TLS settings: the
			// bottle's remote reaches the bottle's engine as its plan
			// records it.
			fetch := exec.Command("git", "-C", repo, "fetch", "-q", "bottle-"+name)
			fetch.Env = append(withoutDockerEnv(os.Environ()), onPath(remote.Env(), helper)...)
			if out, err := fetch.CombinedOutput(); err != nil {
				t.Errorf("git fetch bottle-%s: %v\n%s", name, err, out)
			} else if out := gitIn(t, repo, "show", "bottle-"+name+"/work:agent.txt"); out != "work\n" {
				t.Errorf("agent.txt on bottle-%s/work: %q", name, out)
			}

			if r := bottle("stop", name); r.code != 0 {
				t.Fatalf("stop: exit %d %s", r.code, r.stderr)
			}
			if r := bottle("start", name); r.code != 0 {
				t.Fatalf("start: exit %d %s", r.code, r.stderr)
			}
			if r := row("{{.State}}"); r != "running" {
				t.Errorf("ls after start: state %q", r)
			}
			if a := bottle("approvals", name); a.code != 0 {
				t.Errorf("approvals after start: exit %d %s", a.code, a.stderr)
			}
			if r := bottle("rm", "-f", name); r.code != 0 {
				t.Fatalf("rm -f: exit %d %s", r.code, r.stderr)
			}
			testenv.NothingLeft(t, far, bottleIn(remote.Config, env, name, repo))
			testenv.NothingLeft(t, testenv.Engine(t), bottleIn(remote.Config, env, name, repo))
		})
	}
}

// doctor says which machine it judged: the remote engine's host through
// either context kind, this machine's engine through the default one.
func TestDoctorNamesTheMachineItJudged(t *testing.T) {
	remote := testenv.RemoteEngine(t)
	env := remote.Env()
	localName := strings.Split(engineIdentity(t, testenv.DockerConfig(t), nil), "|")[1]
	for _, c := range []struct {
		args []string
		env  []string
		host string
	}{
		{[]string{"--context", remote.TLSContext}, env, "remote-engine"},
		{[]string{"--context", remote.SSHContext}, env, "remote-engine"},
		{nil, nil, localName},
	} {
		r := docker(t, remote.Config, c.env, append(c.args, "bottle", "doctor", "--format", "json")...)
		rep := doctorReport(t, r)
		if rep.Facts.Engine.Host != c.host {
			t.Errorf("doctor %v judged host %q, want %q", c.args, rep.Facts.Engine.Host, c.host)
		}
		for _, ch := range rep.Checks {
			if ch.Name == "engine" && !strings.Contains(ch.Detail, fmt.Sprintf("on host %q", c.host)) {
				t.Errorf("doctor %v: the engine check does not name host %q: %q", c.args, c.host, ch.Detail)
			}
		}
	}
}

// emptyImageTar is a root filesystem of one empty file, which `docker
// import` takes: enough for a container to exist (created, never started)
// on an engine nothing can be pulled to.
func emptyImageTar(t *testing.T) []byte {
	t.Helper()
	return rootfsTar(t, []rootfsFile{{"empty", 0o644, nil}})
}

// rootfsFile is a regular file of a root filesystem for `docker import`.
type rootfsFile struct {
	name string
	mode int64
	data []byte
}

// rootfsTar is a root filesystem of files, which `docker import` takes.
func rootfsTar(t *testing.T, files []rootfsFile) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// ls on a remote context lists the bottles whose containers that engine
// has, not every bottle of the client's state dir; the default context
// still lists them all.
func TestLsOnARemoteContextListsThatEnginesBottles(t *testing.T) {
	remote := testenv.RemoteEngine(t)
	env := remote.Env()
	suffix := fmt.Sprintf("%06x", rand.Uint32()&0xffffff)
	here, there := "here-"+suffix, "there-"+suffix
	for _, slug := range []string{here, there} {
		p := plan.Plan{Slug: slug, Created: time.Now(), StageDir: filepath.Join(remote.Config, "bottle", "bottles", slug),
			Backend: "docker", NetworkMode: "internal", Bundle: plan.BundlePlan{Container: "bottle-" + slug + "-bundle"}}
		if err := os.MkdirAll(p.StageDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := stage.Save(p); err != nil {
			t.Fatal(err)
		}
	}

	img := "bottle-remote-empty:" + suffix
	imp := exec.Command(testenv.DockerCLI(t), "--context", remote.TLSContext, "import", "-", img)
	imp.Env = append(os.Environ(), env...)
	imp.Stdin = bytes.NewReader(emptyImageTar(t))
	if out, err := imp.CombinedOutput(); err != nil {
		t.Fatalf("docker import on the remote engine: %v\n%s", err, out)
	}
	t.Cleanup(func() { docker(t, remote.Config, env, "--context", remote.TLSContext, "rmi", img) })
	bundle := "bottle-" + there + "-bundle"
	if r := docker(t, remote.Config, env, "--context", remote.TLSContext, "create", "--name", bundle,
		"--label", plan.LabelBottle+"="+there, "--label", plan.LabelRole+"="+plan.RoleBundle, img, "/empty"); r.code != 0 {
		t.Fatalf("creating %s on the remote engine: %s", bundle, r.stderr)
	}
	t.Cleanup(func() { docker(t, remote.Config, env, "--context", remote.TLSContext, "rm", "-f", bundle) })

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--context", remote.TLSContext}, there},
		{[]string{"--context", remote.SSHContext}, there},
		{nil, here + "\n" + there},
	} {
		r := docker(t, remote.Config, env, append(c.args, "bottle", "ls", "-a", "--format", "{{.Name}}")...)
		if got := strings.TrimSpace(r.stdout); r.code != 0 || got != c.want {
			t.Errorf("ls -a %v: exit %d, listed %q, want %q\n%s", c.args, r.code, got, c.want, r.stderr)
		}
	}
}

// `docker bottle check` on a remote context passes every item: the check
// judges the bottle on the remote engine, and the host-loopback port the
// bottle must not reach is one on the engine's host, where something
// listens.
func TestCheckOnARemoteContext(t *testing.T) {
	remote := testenv.RemoteEngine(t)
	card, stderr := checkPassesOn(t, remoteClient(t, remote), remote.Config, append(onPath(remote.Env(), remoteHelper(t)), "DOCKER_CONTEXT="+remote.TLSContext))
	_, port, ok := strings.Cut(stderr, "a listener on the engine's host at port ")
	port, _, _ = strings.Cut(port, ",")
	if !ok || port == "" {
		t.Fatalf("check started no listener on the engine's host:\n%s", stderr)
	}
	for _, p := range card.Promises {
		for _, it := range p.Items {
			if it.Check == "loopback" && !strings.HasSuffix(it.Target, ":"+port) {
				t.Errorf("the loopback item tried %s, not the engine host's listener at port %s", it.Target, port)
			}
		}
	}
}

// On a remote context an agent image is built by that engine from the
// repository's Dockerfile (`build`), and an attached `run --rm` shows the
// agent's output and removes the bottle when it exits: nothing is left
// on either engine or on the client.
func TestBuildAndAttachedRunOnARemoteContext(t *testing.T) {
	remote := testenv.RemoteEngine(t)
	far := remoteClient(t, remote)
	base := remoteBase(t, remote)
	env := onPath(remote.Env(), remoteHelper(t))
	name := fmt.Sprintf("fara-%06x", rand.Uint32()&0xffffff)
	repo := testenv.GitRepoWith(t, map[string]string{
		"Dockerfile": "FROM " + base + "\nRUN useradd -m -u 1000 agent && mkdir /workspace && chown agent /workspace && echo built-far > /etc/far\n" +
			"ENV HOME=/home/agent\nUSER 1000:1000\nWORKDIR /workspace\n",
		"bottle.yaml": "agent:\n  provider: shell\n  dockerfile: Dockerfile\n  command: [sh, -c, 'cat /etc/far; echo agent-done']\n",
	})
	t.Cleanup(func() {
		testenv.NothingLeft(t, far, bottleIn(remote.Config, env, name, repo))
		testenv.NothingLeft(t, testenv.Engine(t), bottleIn(remote.Config, env, name, repo))
	})
	ctxArgs := []string{"--context", remote.TLSContext, "bottle"}
	if r := docker(t, remote.Config, env, append(ctxArgs, "build", repo)...); r.code != 0 {
		t.Fatalf("build on the remote engine: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r := docker(t, remote.Config, env, append(ctxArgs, "run", "--rm", "--name", name, "--progress", "plain", repo)...)
	if r.code != 0 || !strings.Contains(r.stdout, "built-far") || !strings.Contains(r.stdout, "agent-done") {
		t.Fatalf("attached run --rm on the remote engine: exit %d, stdout %q\n%s", r.code, r.stdout, r.stderr)
	}
}
