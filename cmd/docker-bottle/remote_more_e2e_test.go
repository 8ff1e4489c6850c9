//go:build e2e

package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/bundle/supervisor/api"
	"github.com/docker-bottle/docker-bottle/image"
	"github.com/docker-bottle/docker-bottle/image/artifact"
	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/internal/testenv/testio"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/stage"
)

// remoteBottle runs `docker --context CTX bottle run -d` of a bottle whose
// repository holds bottle.yaml, on the remote engine, and removes it when
// the test ends, proving that nothing of it is left on either engine. It
// returns the bottle's name and a function running `docker bottle ARGS`
// on the same context.
func remoteBottle(t *testing.T, remote *testenv.Remote, ctx, prefix, spec string) (string, func(args ...string) result) {
	t.Helper()
	far := remoteClient(t, remote)
	env := onPath(remote.Env(), remoteHelper(t))
	bottle := func(args ...string) result {
		t.Helper()
		return docker(t, remote.Config, env, append([]string{"--context", ctx, "bottle"}, args...)...)
	}
	name := fmt.Sprintf("%s-%06x", prefix, rand.Uint32()&0xffffff)
	repo := testenv.GitRepoWith(t, map[string]string{"bottle.yaml": spec})
	t.Cleanup(func() {
		bottle("rm", "-f", name)
		testenv.NothingLeft(t, far, bottleIn(remote.Config, env, name, repo))
		testenv.NothingLeft(t, testenv.Engine(t), bottleIn(remote.Config, env, name, repo))
	})
	if r := bottle("run", "-d", "--name", name, "--progress", "plain", repo); r.code != 0 || strings.TrimSpace(r.stdout) != name {
		t.Fatalf("run -d on %s: exit %d, stdout %q\n%s", ctx, r.code, r.stdout, r.stderr)
	}
	return name, bottle
}

// `attach` to a bottle started with `run -d` on a remote engine shows the
// agent's output and ends with the agent's exit code.
func TestAttachOnARemoteContext(t *testing.T) {
	remote := testenv.RemoteEngine(t)
	base := remoteBase(t, remote)
	for _, ctx := range []string{remote.TLSContext, remote.SSHContext} {
		t.Run(ctx, func(t *testing.T) {
			name, bottle := remoteBottle(t, remote, ctx, "fat", "agent:\n  provider: shell\n  image: "+base+"\n"+
				`  command: [sh, -c, 'while [ ! -e /tmp/go ]; do echo tick; sleep 0.2; done; echo released; exit 7']`+"\n")
			attachEndsWithTheAgent(t, remote.Config, onPath(remote.Env(), remoteHelper(t)), []string{"--context", ctx}, name, func() {
				if r := bottle("exec", name, "--", "touch", "/tmp/go"); r.code != 0 {
					t.Fatalf("exec: %d %s", r.code, r.stderr)
				}
			})
		})
	}
}

// The agent of `run -d` on a remote engine has a terminal, as locally: an
// attach types to it, and Ctrl-P Ctrl-Q leaves it running.
func TestDetachedAgentHasATerminalOnARemoteContext(t *testing.T) {
	remote := testenv.RemoteEngine(t)
	base := remoteBase(t, remote)
	name, _ := remoteBottle(t, remote, remote.TLSContext, "fdt", "agent:\n  provider: shell\n  image: "+base+"\n"+echoAgent)
	detachAndAttachAgain(t, remote.Config, onPath(remote.Env(), remoteHelper(t)), []string{"--context", remote.TLSContext}, name)
}

// A request the agent makes to a host the rules do not list is held on a
// remote engine as locally: `approvals` lists it, `approve` lets it
// through to the upstream, `deny` refuses it with 403, `approvals -i`
// decides one as it arrives, and the audit records each decision as the
// operator's.
func TestApprovalsOnARemoteContext(t *testing.T) {
	remote := testenv.RemoteEngine(t)
	base := remoteBase(t, remote)
	for _, ctx := range []string{remote.TLSContext, remote.SSHContext} {
		t.Run(ctx, func(t *testing.T) {
			// curl says each request's status: 200 from the upstream when
			// allowed, the proxy's 403 when denied.
			name, bottle := remoteBottle(t, remote, ctx, "fap", "agent:\n  provider: shell\n  image: "+base+"\n"+
				`  command: [sh, -c, 'while [ ! -e /tmp/go ]; do sleep 0.2; done; for h in one two three; do echo "$h:$(curl -s -o /dev/null -w %{http_code} http://$h.approve.test/)"; done; exec sleep 600']`+"\n"+
				"supervise:\n  approvals: [egress]\n  timeout: 120s\n")
			// The proxy asks only about names that resolve: the hosts are
			// upstreams on the remote engine, on the bundle's network.
			internet := testenv.NewInternet(t, remoteClient(t, remote))
			for _, h := range []string{"one", "two", "three"} {
				internet.Host(t, h+".approve.test", "")
			}
			internet.Connect(t, "bottle-"+name+"-bundle")
			if r := bottle("exec", name, "--", "touch", "/tmp/go"); r.code != 0 {
				t.Fatalf("exec: %d %s", r.code, r.stderr)
			}
			logEnv := append(remote.Env(), "DOCKER_CONTEXT="+ctx)
			decide := func(verb, host string) {
				t.Helper()
				var id, list string
				testio.Eventually(t, 60*time.Second, func() bool {
					r := bottle("approvals", name, "--format", "json")
					list = r.stdout + r.stderr
					for line := range strings.Lines(r.stdout) {
						var a api.Approval
						if json.Unmarshal([]byte(line), &a) == nil && strings.HasPrefix(a.Subject, host) {
							id = a.ID
							return true
						}
					}
					return false
				}, func() string {
					return "no pending approval for " + host + ":\n" + list + "\nlogs:\n" + bottle("logs", name).stdout
				})
				if r := bottle(verb, name, id); r.code != 0 {
					t.Fatalf("%s %s: exit %d %s", verb, id, r.code, r.stderr)
				}
			}
			decide("approve", "one.approve.test")
			logs := waitLogs(t, remote.Config, logEnv, name, "one:")
			if !strings.Contains(logs, "one:200") {
				t.Errorf("the approved request was refused:\n%s", logs)
			}
			decide("deny", "two.approve.test")
			if logs := waitLogs(t, remote.Config, logEnv, name, "two:"); !strings.Contains(logs, "two:403") {
				t.Errorf("the denied request was not refused with 403:\n%s", logs)
			}

			ask := exec.Command(testenv.DockerCLI(t), "--context", ctx, "bottle", "approvals", "-i", name)
			ask.Env = append(os.Environ(), onPath(remote.Env(), remoteHelper(t))...)
			stdin, err := ask.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			var shown testio.Buffer
			ask.Stdout, ask.Stderr = &shown, &shown
			if err := ask.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ask.Process.Kill() })
			shown.WaitFor(t, "three.approve.test", 60*time.Second)
			if _, err := stdin.Write([]byte("n\n")); err != nil {
				t.Fatal(err)
			}
			shown.WaitFor(t, "Denied", 30*time.Second)
			stdin.Close()
			if err := ask.Wait(); err != nil {
				t.Errorf("approvals -i at the end of its input: %v\n%s", err, shown.String())
			}
			if logs := waitLogs(t, remote.Config, logEnv, name, "three:"); !strings.Contains(logs, "three:403") {
				t.Errorf("the request denied interactively was not refused with 403:\n%s", logs)
			}

			audit := bottle("audit", name)
			for _, want := range []string{`allow-once\s+approval\.decided egress one\.approve\.test[^\n]*by operator`,
				`deny\s+approval\.decided egress two\.approve\.test[^\n]*by operator`,
				`deny\s+approval\.decided egress three\.approve\.test[^\n]*by operator`} {
				if !regexp.MustCompile(want).MatchString(audit.stdout) {
					t.Errorf("the audit has no line matching %s: exit %d\n%s", want, audit.code, audit.stdout)
				}
			}
		})
	}
}

// `prune` on a remote context removes the plugin's unused images and
// cached artifacts of that engine only: the same tag on the local engine,
// and the artifact in the local engine's cache, stay.
func TestPruneOnARemoteContextPrunesThatEngine(t *testing.T) {
	remote := testenv.RemoteEngine(t)
	base := remoteBase(t, remote)
	env := remote.Env()
	tag := fmt.Sprintf("docker-bottle/probe:prune-%06x", rand.Uint32()&0xffffff)
	cfg := testenv.DockerConfig(t)
	if r := docker(t, cfg, nil, "tag", base, tag); r.code != 0 {
		t.Fatalf("tag on the local engine: %s", r.stderr)
	}
	t.Cleanup(func() { docker(t, cfg, nil, "rmi", tag) })
	if r := docker(t, remote.Config, env, "--context", remote.TLSContext, "tag", base, tag); r.code != 0 {
		t.Fatalf("tag on the remote engine: %s", r.stderr)
	}
	t.Cleanup(func() { docker(t, remote.Config, env, "--context", remote.TLSContext, "rmi", tag) })

	// One artifact in each engine's cache (image.EngineCacheDir), as a
	// pack would leave it.
	caches := map[string]*artifact.Cache{}
	for where, args := range map[string][]string{"local": nil, "remote": {"--context", remote.TLSContext}} {
		id := strings.TrimSpace(docker(t, remote.Config, env, append(args, "info", "--format", "{{.ID}}")...).stdout)
		dir, err := image.EngineCacheDir(filepath.Join(remote.Config, "cache"), id)
		if err != nil {
			t.Fatal(err)
		}
		c, err := artifact.Open(filepath.Join(dir, "artifacts"))
		if err != nil {
			t.Fatal(err)
		}
		key := artifact.Key{Image: "sha256:" + where, BottleLayer: "sha256:layer", Smolvm: "test", Platform: "linux/amd64"}
		if _, err := c.Create(key, base, nil, func(out string) error { return os.WriteFile(out+".smolmachine", []byte(where), 0o600) }); err != nil {
			t.Fatal(err)
		}
		caches[where] = c
	}

	r := docker(t, remote.Config, env, "--context", remote.TLSContext, "bottle", "prune", "-f", "--format", "json")
	if r.code != 0 || !strings.Contains(r.stdout, tag) {
		t.Errorf("prune on %s: exit %d, did not report %s: %q\n%s", remote.TLSContext, r.code, tag, r.stdout, r.stderr)
	}
	if i := docker(t, remote.Config, env, "--context", remote.SSHContext, "image", "inspect", tag); i.code == 0 {
		t.Errorf("prune on the remote context left %s on the remote engine", tag)
	}
	if i := docker(t, cfg, nil, "image", "inspect", tag); i.code != 0 {
		t.Errorf("prune on the remote context removed %s from the local engine: %s", tag, i.stderr)
	}
	for where, want := range map[string]int{"remote": 0, "local": 1} {
		if as, err := caches[where].List(); err != nil || len(as) != want {
			t.Errorf("after prune on the remote context, the %s engine's cache holds %d artifacts (%v), want %d", where, len(as), err, want)
		}
	}
}

// Ctrl-C while the bundle comes up on a remote engine ends the run with
// 130 and leaves nothing on the remote engine, the local one or the
// client.
func TestInterruptDuringBringUpOnARemoteContext(t *testing.T) {
	remote := testenv.RemoteEngine(t)
	repo := agentRepo(t, remoteBase(t, remote))
	env := append(onPath(remote.Env(), remoteHelper(t)), "DOCKER_CONTEXT="+remote.TLSContext)
	name := fmt.Sprintf("fib-%06x", rand.Uint32()&0xffffff)
	code, stderr := interruptRunIn(t, remote.Config, env, "bundle: starting the bundle", "--name", name, repo)
	if code != 130 {
		t.Errorf("exit %d, want 130\n%s", code, stderr)
	}
	testenv.NothingLeft(t, remoteClient(t, remote), bottleIn(remote.Config, env, name, repo))
	testenv.NothingLeft(t, testenv.Engine(t), bottleIn(remote.Config, env, name, repo))
	if t.Failed() {
		t.Logf("the interrupted run:\n%s", stderr)
	}
}

// `-H tcp://...` with the TLS flags on the command line names the remote
// engine as a context does: `run -d`, `ls` and `rm` work, and nothing is
// left, and so do `logs`, `exec`, `approvals`, `events`, `audit`, `diff`,
// `doctor`, `stop` and `start`. The plan records the TLS files' paths
// (never their contents), so `git fetch bottle-NAME` reaches the engine
// from a shell that has no DOCKER_HOST nor TLS settings.
func TestTLSFlagsNameARemoteEngine(t *testing.T) {
	remote := testenv.RemoteEngine(t)
	base := remoteBase(t, remote)
	certs := remoteCerts(t, remote)
	env := onPath(remote.Env(), remoteHelper(t))
	args := []string{"-H", remoteHost(remote), "--tlsverify", "--tlscacert", certs + "/ca.pem",
		"--tlscert", certs + "/cert.pem", "--tlskey", certs + "/key.pem", "bottle"}
	bottle := func(a ...string) result {
		t.Helper()
		return docker(t, remote.Config, env, append(slices.Clone(args), a...)...)
	}
	name := fmt.Sprintf("fh-%06x", rand.Uint32()&0xffffff)
	repo := testenv.GitRepoWith(t, map[string]string{"bottle.yaml": "agent:\n  provider: shell\n  image: " + base + "\n" +
		`  command: [sh, -c, 'echo work > agent.txt && git add agent.txt && git commit -qm work && git push -q && echo pushed; exec sleep 600']` + "\n"})
	t.Cleanup(func() {
		bottle("rm", "-f", name)
		testenv.NothingLeft(t, remoteClient(t, remote), bottleIn(remote.Config, env, name, repo))
		testenv.NothingLeft(t, testenv.Engine(t), bottleIn(remote.Config, env, name, repo))
	})
	if r := bottle("run", "-d", "--name", name, "--progress", "plain", repo); r.code != 0 || strings.TrimSpace(r.stdout) != name {
		t.Fatalf("run -d with -H and the TLS flags: exit %d, stdout %q\n%s", r.code, r.stdout, r.stderr)
	}
	if ls := bottle("ls", "--format", "{{.Name}} {{.State}}"); ls.code != 0 || strings.TrimSpace(ls.stdout) != name+" running" {
		t.Errorf("ls with -H and the TLS flags: exit %d %q %s", ls.code, ls.stdout, ls.stderr)
	}
	if ps := docker(t, remote.Config, env, "--context", remote.TLSContext, "ps", "--filter", "name=bottle-"+name, "--format", "{{.Names}}"); strings.TrimSpace(ps.stdout) == "" {
		t.Errorf("the bottle's containers are not on the remote engine: %q %s", ps.stdout, ps.stderr)
	}

	p, err := serviceOf(t, remote.Config).Load(name)
	if err != nil {
		t.Fatal(err)
	}
	want := plan.EngineTLS{Verify: true, CAFile: certs + "/ca.pem", CertFile: certs + "/cert.pem", KeyFile: certs + "/key.pem"}
	if p.Engine.Host != remoteHost(remote) || p.Engine.TLS == nil || *p.Engine.TLS != want {
		t.Errorf("the plan's engine: %+v, want host %s with TLS %+v", p.Engine, remoteHost(remote), want)
	}
	saved, err := os.ReadFile(filepath.Join(p.StageDir, stage.PlanFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"key.pem", "cert.pem"} {
		pem, err := os.ReadFile(filepath.Join(certs, f))
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(pem)) {
			if line = strings.TrimSpace(line); len(line) > 20 && strings.Contains(string(saved), line) {
				t.Errorf("the plan holds a line of %s", f)
				break
			}
		}
	}
	var logs string
	testio.Eventually(t, 90*time.Second, func() bool {
		logs = bottle("logs", name).stdout
		return strings.Contains(logs, "pushed")
	}, func() string { return "the agent did not push:\n" + logs })
	// The user's shell: DOCKER_CONFIG (where the plugin keeps its
	// bottles) and nothing else of docker's.
	fetch := exec.Command("git", "-C", repo, "fetch", "-q", "bottle-"+name)
	fetch.Env = append(withoutDockerEnv(os.Environ()), onPath([]string{"DOCKER_CONFIG=" + remote.Config}, remoteHelper(t))...)
	if out, err := fetch.CombinedOutput(); err != nil {
		t.Errorf("git fetch bottle-%s from a shell without DOCKER_HOST or TLS settings: %v\n%s", name, err, out)
	} else if out := gitIn(t, repo, "show", "bottle-"+name+"/work:agent.txt"); out != "work\n" {
		t.Errorf("agent.txt on bottle-%s/work: %q", name, out)
	}

	// The bottle's other commands take the engine from -H and the flags
	// as from a context.
	if e := bottle("exec", name, "--", "cat", plan.GuestWorkspace+"/agent.txt"); e.code != 0 || e.stdout != "work\n" {
		t.Errorf("exec with -H and the TLS flags: exit %d %q %q", e.code, e.stdout, e.stderr)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"approvals", name}, ""},
		{[]string{"events", name}, ""},
		{[]string{"audit", name}, "push"},
		{[]string{"diff", name}, "+work"},
		{[]string{"doctor"}, `on host "remote-engine"`},
	} {
		if r := bottle(c.args...); r.code != 0 || !strings.Contains(r.stdout, c.want) {
			t.Errorf("%v with -H and the TLS flags: exit %d, want %q in %q\n%s", c.args, r.code, c.want, r.stdout, r.stderr)
		}
	}
	if r := bottle("stop", name); r.code != 0 {
		t.Fatalf("stop with -H and the TLS flags: exit %d %s", r.code, r.stderr)
	}
	if r := bottle("start", name); r.code != 0 {
		t.Fatalf("start with -H and the TLS flags: exit %d %s", r.code, r.stderr)
	}
	if ls := bottle("ls", "--format", "{{.Name}} {{.State}}"); ls.code != 0 || strings.TrimSpace(ls.stdout) != name+" running" {
		t.Errorf("ls after start with -H and the TLS flags: exit %d %q %s", ls.code, ls.stdout, ls.stderr)
	}
	if r := bottle("rm", "-f", name); r.code != 0 {
		t.Fatalf("rm -f with -H and the TLS flags: exit %d %s", r.code, r.stderr)
	}
	testenv.NothingLeft(t, remoteClient(t, remote), bottleIn(remote.Config, env, name, repo))
}
