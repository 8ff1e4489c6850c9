//go:build e2e

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/flags"

	dockerbackend "github.com/docker-bottle/docker-bottle/backend/docker"
	"github.com/docker-bottle/docker-bottle/bringup"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor/client"
	"github.com/docker-bottle/docker-bottle/internal/bundlebin"
	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/internal/testenv/testio"
	"github.com/docker-bottle/docker-bottle/plan"
)

// supervisorThrough is a client of a supervisor whose every connection is
// made by dial, never kept for another request.
func supervisorThrough(t *testing.T, token string, dial func(context.Context) (net.Conn, error)) *client.Client {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) }}}
	c, err := client.New("bundle.invalid:1", token, client.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// forward listens on the test's loopback and relays each connection
// through dial, as `kubectl port-forward` does: for clients that need an
// address (git).
func forward(t *testing.T, dial func(context.Context) (net.Conn, error)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			near, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer near.Close()
				far, err := dial(context.Background())
				if err != nil {
					t.Errorf("dial for a forwarded connection: %v", err)
					return
				}
				defer far.Close()
				go func() {
					io.Copy(far, near)
					far.(interface{ CloseWrite() error }).CloseWrite()
				}()
				io.Copy(near, far)
			})
		}
	})
	return ln.Addr().String()
}

// A real bundle's supervisor and gate answer through Docker.Dial, an exec
// of the bundle binary per connection through the engine API: the
// supervisor's health with the operator's token, real git's ls-remote of
// the gate, many dials at once; and a port nothing serves is Dial's error.
func TestDialReachesABundleThroughTheEngine(t *testing.T) {
	t.Parallel()
	cfg := testenv.DockerConfig(t)
	repo := testenv.GitRepo(t)
	_, p := upBottle(t, cfg, "name: dial-"+strings.ToLower(randomHexT(t, 3))+"\n", repo)
	d := dockerbackend.Docker{Engine: testenv.Engine(t)}
	ctx := context.Background()
	tok, err := os.ReadFile(p.OperatorTokenFile)
	if err != nil {
		t.Fatal(err)
	}
	dialSupervisor := func(ctx context.Context) (net.Conn, error) { return d.Dial(ctx, p, plan.SupervisePort) }
	sup := supervisorThrough(t, strings.TrimSpace(string(tok)), dialSupervisor)
	h, err := sup.Health(ctx)
	if err != nil || !h.OK {
		t.Fatalf("health through Dial: %+v, %v", h, err)
	}

	// Many dials at once, each its own exec.
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if h, err := sup.Health(ctx); err != nil || !h.OK {
				t.Errorf("one of 16 concurrent health requests through Dial: %+v, %v", h, err)
			}
		})
	}
	wg.Wait()

	// One dial against a connection to the published port.
	direct, err := client.New(p.Endpoints.HostSupervise, strings.TrimSpace(string(tok)))
	if err != nil {
		t.Fatal(err)
	}
	timed := func(c *client.Client) time.Duration {
		best := time.Hour
		for range 5 {
			start := time.Now()
			if _, err := c.Health(ctx); err != nil {
				t.Fatal(err)
			}
			best = min(best, time.Since(start))
		}
		return best
	}
	t.Logf("health, best of 5, a new connection each: through Dial %v, to the published port %v", timed(sup), timed(direct))

	agentTok, err := os.ReadFile(p.AgentTokenFile)
	if err != nil {
		t.Fatal(err)
	}
	gate := forward(t, func(ctx context.Context) (net.Conn, error) { return d.Dial(ctx, p, plan.GatePort) })
	if gate == p.Endpoints.HostGitGate {
		t.Fatal("the forwarder took the gate's published port")
	}
	out, err := gitRun(repo, "ls-remote", "http://bottle:"+strings.TrimSpace(string(agentTok))+"@"+gate+"/repo.git")
	if err != nil || !strings.Contains(out, "refs/heads/main") {
		t.Errorf("git ls-remote of the gate through Dial: %v\n%s", err, out)
	}

	_, err = d.Dial(ctx, p, 1)
	if err == nil || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "exit code 1") {
		t.Errorf("Dial to a port the bundle does not serve: %v, want the dial's refusal and exit code", err)
	}
}

// supervisorImage is a root filesystem of the bundle binary and a
// supervisor's configuration that listens on its loopback only.
func supervisorImage(t *testing.T, token string) []byte {
	t.Helper()
	bin, err := bundlebin.Binary(runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	return rootfsTar(t, []rootfsFile{
		{"bottle-bundle", 0o755, bin},
		{"supervisor.json", 0o644, []byte(`{"listen": "127.0.0.1:` + strconv.Itoa(plan.SupervisePort) +
			`", "bottle": "dial", "agent_token_file": "/agent.token", "operator_token_file": "/operator.token"}`)},
		{"agent.token", 0o644, []byte("agent-" + token)},
		{"operator.token", 0o644, []byte(token)},
	})
}

// On the remote harness's engine, through both context kinds and docker's
// own client for them, DialContainer reaches a supervisor that listens on
// its container's loopback, in a container with no network at all: no
// port is published, none could be.
func TestDialReachesAContainerOnARemoteEngine(t *testing.T) {
	remote := testenv.RemoteEngine(t)
	for _, kv := range remote.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	suffix := fmt.Sprintf("%06x", rand.Uint32()&0xffffff)
	token := "operator-" + suffix
	img, name := "bottle-dial-test:"+suffix, "bottle-dial-test-"+suffix
	imp := exec.Command(testenv.DockerCLI(t), "--context", remote.TLSContext, "import", "-", img)
	imp.Stdin = bytes.NewReader(supervisorImage(t, token))
	if out, err := imp.CombinedOutput(); err != nil {
		t.Fatalf("docker import on the remote engine: %v\n%s", err, out)
	}
	t.Cleanup(func() { docker(t, remote.Config, nil, "--context", remote.TLSContext, "rmi", img) })
	if r := docker(t, remote.Config, nil, "--context", remote.TLSContext, "run", "-d", "--name", name, "--network", "none",
		"--label", "dev.dockerbottle.test=1", img, "/bottle-bundle", "supervisor", "--config", "/supervisor.json"); r.code != 0 {
		t.Fatalf("running the supervisor on the remote engine: %s", r.stderr)
	}
	t.Cleanup(func() { docker(t, remote.Config, nil, "--context", remote.TLSContext, "rm", "-f", name) })
	if r := docker(t, remote.Config, nil, "--context", remote.TLSContext, "port", name); r.code != 0 || strings.TrimSpace(r.stdout) != "" {
		t.Fatalf("the supervisor's container publishes %q (%s), want nothing", r.stdout, r.stderr)
	}

	for _, ctxName := range []string{remote.TLSContext, remote.SSHContext} {
		t.Run(ctxName, func(t *testing.T) {
			cli, err := command.NewDockerCli()
			if err != nil {
				t.Fatal(err)
			}
			opts := flags.NewClientOptions()
			opts.Context = ctxName
			if err := cli.Initialize(opts); err != nil {
				t.Fatal(err)
			}
			eng := cli.Client()
			defer eng.Close()
			ctx := context.Background()
			dial := func(ctx context.Context) (net.Conn, error) {
				return dockerbackend.DialContainer(ctx, eng, name, bringup.BinaryPath, "127.0.0.1:"+strconv.Itoa(plan.SupervisePort))
			}
			sup := supervisorThrough(t, token, dial)
			// The supervisor may still be starting: its first answer is
			// awaited (a refused dial is an error, then a try again).
			var last error
			testio.Eventually(t, 20*time.Second, func() bool { _, last = sup.Health(ctx); return last == nil },
				func() string {
					return fmt.Sprintf("the supervisor on %s never answered through Dial: %v", ctxName, last)
				})
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					if h, err := sup.Health(ctx); err != nil || !h.OK {
						t.Errorf("one of 8 concurrent health requests through Dial on %s: %+v, %v", ctxName, h, err)
					}
				})
			}
			wg.Wait()
			start := time.Now()
			if _, err := sup.Health(ctx); err != nil {
				t.Fatal(err)
			}
			t.Logf("one health request through Dial on %s: %v", ctxName, time.Since(start))
			if _, err := supervisorThrough(t, "wrong", dial).Health(ctx); client.StatusCode(err) != http.StatusUnauthorized {
				t.Errorf("health with a wrong token through Dial: %v, want 401", err)
			}
		})
	}
}

// The plugin's supervisor commands reach a bottle that goes through the
// engine (made with hostcheck.EnvThroughEngine, on the local engine)
// through the engine API whatever the environment says later, as its plan
// records: `approvals` and `events` answer with the switch unset, every
// connection is an exec of the bundle's dial, and the operator's token is
// on no command line.
func TestSupervisorCommandsThroughTheEngine(t *testing.T) {
	t.Parallel()
	eng := testenv.Engine(t)
	base := testenv.Debian(t, eng)
	cfg := testenv.DockerConfig(t)
	name := bottleOf(t, cfg, throughEngine(t), "docker", "dialcmd", map[string]string{"bottle.yaml": "agent:\n  provider: shell\n  image: " + base + "\n" +
		"  command: [sh, -c, '" + pushWork + "; exec sleep 600']\n" +
		"supervise:\n  approvals: [egress]\n"})
	waitLogs(t, cfg, nil, name, "pushed")
	p, err := serviceOf(t, cfg).Load(name)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := os.ReadFile(p.OperatorTokenFile)
	if err != nil {
		t.Fatal(err)
	}
	since := time.Now().Unix()
	if r := docker(t, cfg, nil, "bottle", "approvals", p.Slug, "--format", "json"); r.code != 0 {
		t.Errorf("approvals through the engine: exit %d: %s", r.code, r.stderr)
	}
	ev := docker(t, cfg, nil, "bottle", "events", p.Slug, "--format", "{{.Type}}")
	if ev.code != 0 || strings.TrimSpace(ev.stdout) == "" {
		t.Errorf("events through the engine: exit %d: %q %s", ev.code, ev.stdout, ev.stderr)
	}

	execs := docker(t, cfg, nil, "events", "--since", strconv.FormatInt(since, 10), "--until", strconv.FormatInt(time.Now().Unix()+1, 10),
		"--filter", "container="+p.Bundle.Container, "--filter", "event=exec_start", "--format", "{{.Action}}")
	want := "exec_start: " + bringup.BinaryPath + " dial 127.0.0.1:" + strconv.Itoa(plan.SupervisePort)
	if n := strings.Count(execs.stdout, want); n < 2 {
		t.Errorf("the engine saw %d execs of %q in the bundle for approvals and events, want at least 2:\n%s", n, want, execs.stdout)
	}
	if strings.Contains(execs.stdout, strings.TrimSpace(string(tok))) {
		t.Errorf("the operator token is on an exec's command line: %s", execs.stdout)
	}
}
