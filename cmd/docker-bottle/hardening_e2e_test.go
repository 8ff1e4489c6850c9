//go:build e2e

package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/backend"
	"github.com/docker-bottle/docker-bottle/bottles"
	"github.com/docker-bottle/docker-bottle/bringup"
	gatepkg "github.com/docker-bottle/docker-bottle/bundle/gate"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor"
	supclient "github.com/docker-bottle/docker-bottle/bundle/supervisor/client"
	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/internal/testenv/testio"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/stage"
)

// dockerBottle runs `docker bottle run -d` of a docker-backend bottle whose
// repository holds files (bottle.yaml and any build context), and removes
// it when the test ends.
func dockerBottle(t *testing.T, cfg, prefix string, files map[string]string) string {
	t.Helper()
	return bottleOf(t, cfg, []string{"DOCKER_BOTTLE_SMOLVM="}, "docker", prefix, files)
}

// bottleOf runs `docker bottle run -d --backend BACKEND` (with env) of a
// bottle whose repository holds files, and removes it when the test ends,
// also when the run fails once its agent was made.
func bottleOf(t *testing.T, cfg string, env []string, backendName, prefix string, files map[string]string) string {
	t.Helper()
	repo := testenv.GitRepoWith(t, files)
	name := fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()%1e6)
	removedAtEnd(t, cfg, env, name, repo)
	r := docker(t, cfg, env, "bottle", "run", "-d", "--backend", backendName, "--name", name, "--progress", "plain", repo)
	if r.code != 0 {
		t.Fatalf("run -d: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	return name
}

// TestLogsOnATerminalShowTheAgentsSequencesEscaped: the agent's output
// reaches a pipe as it came, and the user's terminal with what could take
// the terminal over (the clipboard, the screen, a hyperlink, bidi
// overrides) shown escaped.
func TestLogsOnATerminalShowTheAgentsSequencesEscaped(t *testing.T) {
	t.Parallel()
	eng := testenv.Engine(t)
	base := testenv.Debian(t, eng)
	cfg := testenv.DockerConfig(t)
	name := dockerBottle(t, cfg, "lg", map[string]string{"bottle.yaml": "agent:\n  provider: shell\n  image: " + base + "\n" +
		`  command: [sh, -c, 'printf "clip\033]52;c;cGF5bG9hZA==\007 \033[2Jwipe \342\200\256evil\n"; echo agent-done; exec sleep 600']` + "\n"})
	raw := waitLogs(t, cfg, nil, name, "agent-done")
	if !strings.Contains(raw, "\x1b]52;c;cGF5bG9hZA==\x07") || !strings.Contains(raw, "\u202eevil") {
		t.Errorf("logs to a pipe are not the agent's bytes: %q", raw)
	}
	code, screen := onTerminal(t, cfg, nil, []string{"bottle", "logs", name}, "agent-done", "")
	if code != 0 {
		t.Fatalf("logs on a terminal: exit %d\n%q", code, screen)
	}
	for _, want := range []string{`\x1b]52;c;cGF5bG9hZA==\x07`, `\x1b[2Jwipe`, `\u202eevil`} {
		if !strings.Contains(screen, want) {
			t.Errorf("logs on a terminal do not show %s: %q", want, screen)
		}
	}
	if strings.Contains(screen, "\x1b]52") || strings.Contains(screen, "\x1b[2J") || strings.Contains(screen, "\u202e") {
		t.Errorf("the agent's sequences reached the terminal: %q", screen)
	}
}

// TestDockerBackendAgentIsNeitherRootNorOnIPv6: an image whose USER is a
// name its /etc/passwd maps to uid 0 runs as the stand-in user, not root,
// and the agent container has no IPv6 at all.
func TestDockerBackendAgentIsNeitherRootNorOnIPv6(t *testing.T) {
	t.Parallel()
	eng := testenv.Engine(t)
	base := testenv.Debian(t, eng)
	cfg := testenv.DockerConfig(t)
	name := dockerBottle(t, cfg, "nr", map[string]string{
		"Dockerfile": "FROM " + base + "\nRUN echo 'toor:x:0:0::/root:/bin/sh' >> /etc/passwd && mkdir -p /workspace && chmod 777 /workspace\nUSER toor\n",
		"bottle.yaml": "agent:\n  provider: shell\n  dockerfile: Dockerfile\n" +
			`  command: [sh, -c, 'echo "uid=$(id -u) ipv6=$(cat /proc/sys/net/ipv6/conf/all/disable_ipv6) addrs=$(grep -c . /proc/net/if_inet6 2>/dev/null || echo 0)"; exec sleep 600']` + "\n",
	})
	svc := serviceOf(t, cfg)
	p, err := svc.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	c, err := eng.ContainerInspect(context.Background(), p.Docker.Container, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if u := c.Container.Config.User; u != backend.RootStandIn {
		t.Fatalf("the agent container runs as %q, which the image maps to root", u)
	}
	// Engine 20.10 already disables IPv6 on an IPv4-only network; engines
	// 26.0.0 and 26.0.1 did not (CVE-2024-32473): the bottle asks for it.
	if v := c.Container.HostConfig.Sysctls["net.ipv6.conf.all.disable_ipv6"]; v != "1" {
		t.Errorf("the agent container does not disable IPv6 itself: sysctls %v", c.Container.HostConfig.Sysctls)
	}
	logs := waitLogs(t, cfg, nil, name, "uid=")
	if strings.Contains(logs, "uid=0 ") {
		t.Errorf("the agent runs as root:\n%s", logs)
	}
	if !strings.Contains(logs, "ipv6=1 addrs=0") {
		t.Errorf("the agent has IPv6:\n%s", logs)
	}
}

// removedAtEnd removes bottle name when the test ends, as a user would
// (docker bottle rm -f, with env), and proves that nothing of it is left.
func removedAtEnd(t *testing.T, cfg string, env []string, name, repo string) {
	t.Helper()
	eng := testenv.Engine(t)
	t.Cleanup(func() {
		docker(t, cfg, env, "bottle", "rm", "-f", name)
		testenv.NothingLeft(t, eng, bottleIn(cfg, env, name, repo))
	})
}

// bottleIn is where bottle name, run with env from repo and the
// DOCKER_CONFIG dir cfg, leaves its traces.
func bottleIn(cfg string, env []string, name, repo string) testenv.Bottle {
	return testenv.Bottle{Name: name, State: filepath.Join(cfg, "bottle"), Repo: repo, Env: env}
}

// stateOf is the plugin's state and cache under the docker config dir cfg.
func stateOf(cfg string) stage.Dirs {
	return stage.Dirs{State: filepath.Join(cfg, "bottle"), Cache: filepath.Join(cfg, "cache")}
}

// serviceOf is the service of the plugin whose docker config dir is cfg,
// on the test engine and without smolvm: for looking at, bringing up and
// removing bottles (nothing attaches or builds).
func serviceOf(t *testing.T, cfg string) *bottles.Service {
	t.Helper()
	svc, err := bottles.New(nil, bottles.WithEngine(testenv.Engine(t)), bottles.WithDirs(stateOf(cfg)), bottles.WithSmolvm(nil))
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// removedWith removes p through svc, whose state is under the docker
// config dir cfg, when the test ends and proves that nothing of it is
// left.
func removedWith(t *testing.T, svc *bottles.Service, cfg string, p plan.Plan) {
	t.Helper()
	eng := testenv.Engine(t)
	t.Cleanup(func() {
		// A test may have removed it already.
		if err := svc.Remove(context.Background(), p.Slug, false); err != nil && !errors.Is(err, bottles.ErrNotFound) {
			t.Errorf("removing bottle %s: %v", p.Slug, err)
		}
		testenv.NothingLeft(t, eng, testenv.Bottle{Name: p.Slug, State: stateOf(cfg).State, Repo: p.Workspace})
	})
}

// TestPushWithoutADecisionSaysSo: a push held for approval that no one
// decides is refused as "no decision in time", to the agent's git, in the
// audit and in the events; never as a human's denial.
func TestPushWithoutADecisionSaysSo(t *testing.T) {
	t.Parallel()
	cfg := testenv.DockerConfig(t)
	_, p := upBottle(t, cfg, "supervise:\n  approvals: [push]\n  timeout: 2s\n", testenv.GitRepo(t))
	out, err := agentPush(t, p, map[string]string{".github/workflows/ci.yml": "on: push\n"})
	if err == nil {
		t.Fatalf("the push was accepted without a decision:\n%s", out)
	}
	if !strings.Contains(string(out), "no decision in time") || strings.Contains(string(out), "denied") {
		t.Errorf("git was not told that no decision came in time:\n%s", out)
	}
	audit := docker(t, cfg, nil, "bottle", "audit", p.Slug)
	if !regexp.MustCompile(`approval\.decided push refs/heads/` + regexp.QuoteMeta(p.GitGate.Branch) + ` by timeout \(no decision in time`).MatchString(audit.stdout) {
		t.Errorf("the audit does not say no decision came in time:\n%s", audit.stdout)
	}
	events := docker(t, cfg, nil, "bottle", "events", p.Slug)
	if !strings.Contains(events.stdout, "denied, no decision in time") || strings.Contains(events.stdout, "a human") {
		t.Errorf("the events do not say no decision came in time:\n%s", events.stdout)
	}
}

// agentPush clones the bottle's repository from the gate as the agent
// would, commits files, and pushes to the bottle's branch; it returns
// git's output and error.
func agentPush(t *testing.T, p plan.Plan, files map[string]string) (string, error) {
	t.Helper()
	return pushFrom(agentCommit(t, p, files), p)
}

func pushFrom(work string, p plan.Plan) (string, error) {
	out, err := exec.Command("git", "-C", work, "push", "origin", "HEAD:refs/heads/"+p.GitGate.Branch).CombinedOutput()
	return string(out), err
}

// agentCommit clones the bottle's repository from the gate as the agent
// would and commits files; it returns the clone.
func agentCommit(t *testing.T, p plan.Plan, files map[string]string) string {
	t.Helper()
	tok, err := os.ReadFile(p.AgentTokenFile)
	if err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(t.TempDir(), "agent")
	gate := "http://bottle:" + strings.TrimSpace(string(tok)) + "@" + p.Endpoints.HostGitGate + "/repo.git"
	if out, err := exec.Command("git", "clone", "-q", gate, work).CombinedOutput(); err != nil {
		t.Fatalf("clone: %v\n%s", err, out)
	}
	for f, content := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(work, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(work, f), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gitIn(t, work, "add", ".")
	gitIn(t, work, "commit", "-qm", "agent work")
	return work
}

// TestToolAsksCannotCrowdOutAPush: the agent fills the approval queue with
// tool asks; a push that touches a protected path is still held for the
// human, not denied for want of room.
func TestToolAsksCannotCrowdOutAPush(t *testing.T) {
	t.Parallel()
	cfg := testenv.DockerConfig(t)
	_, p := upBottle(t, cfg, "supervise:\n  approvals: [push, tool]\n  timeout: 1m\n", testenv.GitRepo(t))
	tok, err := os.ReadFile(p.AgentTokenFile)
	if err != nil {
		t.Fatal(err)
	}
	agent, err := supclient.New(p.Endpoints.HostSupervise, strings.TrimSpace(string(tok)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const flood = 80
	for i := range flood {
		go agent.Ask(ctx, fmt.Sprintf("Bash(curl x%d)", i), "")
	}
	held := func(kind string) int {
		r := docker(t, cfg, nil, "bottle", "approvals", p.Slug, "--format", "json")
		return strings.Count(r.stdout, `"kind":"`+kind+`"`)
	}
	for start := time.Now(); held("tool") < 20 || time.Since(start) < 2*time.Second; time.Sleep(200 * time.Millisecond) {
		if time.Since(start) > 30*time.Second {
			t.Fatalf("%d tool asks held", held("tool"))
		}
	}
	work := agentCommit(t, p, map[string]string{".github/workflows/ci.yml": "on: push\n"})
	pushed := make(chan string, 1)
	go func() {
		out, _ := pushFrom(work, p)
		pushed <- out
	}()
	for start := time.Now(); held("push") == 0; time.Sleep(200 * time.Millisecond) {
		select {
		case out := <-pushed:
			t.Fatalf("the push was settled without being held (%d tool asks held):\n%s", held("tool"), out)
		default:
		}
		if time.Since(start) > 30*time.Second {
			t.Fatal("the push was never held")
		}
	}
	if n := held("tool"); n >= flood {
		t.Errorf("all %d tool asks are held", n)
	}
	cancel()
}

// proxyGet fetches target through the bottle's proxy with the agent's
// token and returns the status line and body.
func proxyGet(t *testing.T, p plan.Plan, target string) string {
	t.Helper()
	tok, err := os.ReadFile(p.AgentTokenFile)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("http://" + p.Endpoints.HostProxy)
	hc := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(u)}, Timeout: 30 * time.Second}
	req, _ := http.NewRequest("GET", target, nil)
	req.Header.Set("Proxy-Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("bottle:"+strings.TrimSpace(string(tok)))))
	resp, err := hc.Do(req)
	if err != nil {
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.Status + " " + string(body)
}

// TestAuditFloodKeepsTheRecord is the review's audit wipe: one allowed
// request, then a flood of requests without the token, pipelined on one
// connection (the proxy closes it at the first refusal) and then one a
// connection. The allowed request is still in `docker bottle audit` and in
// the proxy's audit files, and the flood is counted, not copied. The
// floods run alone (not parallel): they load the machine, and what they
// measure must not be another test's load.
func TestAuditFloodKeepsTheRecord(t *testing.T) {
	eng := testenv.Engine(t)
	cfg := testenv.DockerConfig(t)
	_, p := upBottle(t, cfg, "egress:\n  allow:\n    - host: api.audit.test\n", testenv.GitRepo(t))
	internet := testenv.NewInternet(t, eng)
	internet.Host(t, "api.audit.test", "")
	internet.Connect(t, p.Bundle.Container)
	if r := proxyGet(t, p, "http://api.audit.test/exfil"); !strings.HasPrefix(r, "200") {
		t.Fatalf("the allowed request: %s", r)
	}

	// Pipelined on one connection, the flood ends at the first refusal:
	// the proxy closes a connection that fails its token.
	c, err := net.Dial("tcp", p.Endpoints.HostProxy)
	if err != nil {
		t.Fatal(err)
	}
	req := "GET http://api.audit.test/ HTTP/1.1\r\nHost: api.audit.test\r\n\r\n"
	_, _ = io.WriteString(c, strings.Repeat(req, 1000))
	pipelined := 0
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "HTTP/1.1 407") {
			pipelined++
		}
	}
	c.Close()
	if pipelined != 1 {
		t.Errorf("%d of 1000 pipelined refusals answered on one connection, want 1", pipelined)
	}
	// So the flood takes a connection a refusal.
	const flood = 3000
	answered := 0
	for i := 0; i < flood; i++ {
		c, err := net.Dial("tcp", p.Endpoints.HostProxy)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(c, req)
		if line, err := bufio.NewReader(c).ReadString('\n'); err == nil && strings.HasPrefix(line, "HTTP/1.1 407") {
			answered++
		}
		c.Close()
	}
	t.Logf("%d of %d refusals answered", answered, flood)
	// The repeat counts are written when their second ends.
	var audit result
	testio.Eventually(t, 30*time.Second, func() bool {
		audit = docker(t, cfg, nil, "bottle", "audit", p.Slug, "--format", "json")
		return audit.code == 0 && strings.Contains(audit.stdout, `"repeated":`)
	}, func() string {
		return fmt.Sprintf("audit: exit %d, no repeat count:\n%.2000s\n%s", audit.code, audit.stdout, audit.stderr)
	})
	if !strings.Contains(audit.stdout, `"path":"/exfil"`) {
		t.Errorf("the allowed request is gone from docker bottle audit (%d lines)", strings.Count(audit.stdout, "\n"))
	}
	if n := strings.Count(audit.stdout, "missing or wrong proxy token"); n == 0 || n > 100 {
		t.Errorf("the flood shows as %d lines, want a few with counts", n)
	}
	if !strings.Contains(audit.stdout, `"repeated":`) {
		t.Errorf("no line counts the repeated refusals")
	}
	keep, err := os.ReadFile(filepath.Join(p.StageDir, "audit", "audit-proxy.jsonl.keep"))
	if err != nil || !strings.Contains(string(keep), `"path":"/exfil"`) || strings.Contains(string(keep), "proxy token") {
		t.Errorf("the proxy's kept lines: %v\n%.2000s", err, keep)
	}
}

// slowFlood holds n connections to addr, each sending start and then rest
// a byte a second (a slowloris), and counts those the server still keeps.
type slowFlood struct {
	open atomic.Int64
	stop chan struct{}
}

func newSlowFlood(t *testing.T, addr string, n int, start, rest func(i int) string) *slowFlood {
	t.Helper()
	f := &slowFlood{stop: make(chan struct{})}
	t.Cleanup(func() { close(f.stop) })
	dials := make(chan struct{}, 32)
	for i := range n {
		dials <- struct{}{}
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		<-dials
		if err != nil {
			t.Fatalf("slow connection %d to %s: %v", i, addr, err)
		}
		f.open.Add(1)
		go func() {
			// The server closing the connection ends this read.
			c.Read(make([]byte, 1))
			f.open.Add(-1)
		}()
		go func() {
			defer c.Close()
			if _, err := io.WriteString(c, start(i)); err != nil {
				return
			}
			for _, b := range []byte(rest(i)) {
				select {
				case <-f.stop:
					return
				case <-time.After(time.Second):
				}
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
			}
			<-f.stop
		}()
	}
	return f
}

// TestSlowClientsCannotExhaustTheBundle opens far more slow connections to
// each daemon of a real bundle than it keeps, from the address the
// operator's own connections come from (the host): headers or bodies a
// byte a second, the bodies with valid tokens. The operator's `approvals`,
// the health check and a proxied request still work, and each daemon keeps
// no more connections than its caps.
func TestSlowClientsCannotExhaustTheBundle(t *testing.T) {
	eng := testenv.Engine(t)
	cfg := testenv.DockerConfig(t)
	_, p := upBottle(t, cfg, "egress:\n  allow:\n    - host: api.flood.test\n", testenv.GitRepo(t))
	internet := testenv.NewInternet(t, eng)
	internet.Host(t, "api.flood.test", "")
	internet.Connect(t, p.Bundle.Container)
	tokb, _ := os.ReadFile(p.AgentTokenFile)
	tok := strings.TrimSpace(string(tokb))
	slowly := func(int) string { return strings.Repeat("a", 600) }
	at := func(port int) string { return net.JoinHostPort(p.Bundle.IP.String(), fmt.Sprint(port)) }

	const supFlood, gateFlood, proxyFlood = 1000, 600, 1600
	sup := newSlowFlood(t, at(plan.SupervisePort), supFlood, func(i int) string {
		if i%2 == 0 {
			return "GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: "
		}
		return "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok +
			"\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n"
	}, slowly)
	gate := newSlowFlood(t, at(plan.GatePort), gateFlood, func(i int) string {
		if i%2 == 0 {
			return "GET /repo.git/info/refs?service=git-upload-pack HTTP/1.1\r\nHost: x\r\nX-Slow: "
		}
		return "POST /repo.git/git-receive-pack HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " +
			base64.StdEncoding.EncodeToString([]byte("bottle:"+tok)) +
			"\r\nContent-Type: application/x-git-receive-pack-request\r\nContent-Length: 1000000000\r\n\r\n"
	}, slowly)
	proxy := newSlowFlood(t, at(plan.ProxyPort), proxyFlood, func(int) string {
		return "GET http://api.flood.test/ HTTP/1.1\r\nHost: api.flood.test\r\nX-Slow: "
	}, slowly)
	floods := []struct {
		name       string
		f          *slowFlood
		flood, cap int
	}{
		{"supervisor", sup, supFlood, supervisor.DefaultMaxConnsPerClient},
		{"gate", gate, gateFlood, gatepkg.MaxConnsPerClient},
		{"proxy", proxy, proxyFlood, 2 * 512},
	}
	// Every connection is made; the daemons have pushed out those beyond
	// their caps (these all come from one address: the per-client cap).
	capped := func() bool {
		for _, c := range floods {
			if c.f.open.Load() > int64(c.cap) {
				return false
			}
		}
		return true
	}
	testio.Eventually(t, time.Minute, capped, func() string {
		var b strings.Builder
		for _, c := range floods {
			fmt.Fprintf(&b, "%s keeps %d of %d slow connections, more than its cap of %d; ", c.name, c.f.open.Load(), c.flood, c.cap)
		}
		return b.String()
	})

	// The operator and the agent are still served.
	start := time.Now()
	if r := docker(t, cfg, nil, "bottle", "approvals", p.Slug); r.code != 0 {
		t.Errorf("approvals during the flood: exit %d %s", r.code, r.stderr)
	}
	t.Logf("approvals answered in %s", time.Since(start))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bringup.Health(ctx, p); err != nil {
		t.Errorf("health during the flood: %v", err)
	}
	if r := proxyGet(t, p, "http://api.flood.test/"); !strings.HasPrefix(r, "200") {
		t.Errorf("a proxied request during the flood: %s", r)
	}
	// The slow connections a daemon still holds are still within its caps.
	for _, c := range floods {
		n := c.f.open.Load()
		t.Logf("%s keeps %d of %d slow connections (cap %d)", c.name, n, c.flood, c.cap)
		if n > int64(c.cap) {
			t.Errorf("%s keeps %d slow connections, more than its cap of %d", c.name, n, c.cap)
		}
	}
	if out, err := exec.Command(testenv.DockerCLI(t), "stats", "--no-stream", "--format", "{{.MemUsage}}", p.Bundle.Container).Output(); err == nil {
		t.Logf("the bundle's memory during the flood: %s", strings.TrimSpace(string(out)))
	}
	st, err := eng.ContainerInspect(context.Background(), p.Bundle.Container, client.ContainerInspectOptions{})
	if err != nil || !st.Container.State.Running || st.Container.State.OOMKilled {
		t.Fatalf("the bundle after the flood: %+v %v", st.Container.State, err)
	}
}

// lsRow is a bottle as `docker bottle ls --format json` shows it.
type lsRow struct {
	Name, State, Reason, Bundle, Agent string
	Waiting                            int
}

func lsOf(t *testing.T, cfg, name string) lsRow {
	t.Helper()
	r := docker(t, cfg, nil, "bottle", "ls", "-a", "--format", "json")
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var row lsRow
		if json.Unmarshal([]byte(line), &row) == nil && row.Name == name {
			return row
		}
	}
	t.Fatalf("ls does not list %s: %q %q", name, r.stdout, r.stderr)
	return lsRow{}
}

// killBundle kills the bundle's process as the kernel's OOM killer or a
// crash would end it, not as `docker stop` would.
func killBundle(t *testing.T, eng *client.Client, p plan.Plan) {
	t.Helper()
	c, err := eng.ContainerInspect(context.Background(), p.Bundle.Container, client.ContainerInspectOptions{})
	if err != nil || c.Container.State == nil || c.Container.State.Pid == 0 {
		t.Fatalf("the bundle's process: %+v %v", c.Container.State, err)
	}
	if err := syscall.Kill(c.Container.State.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}

// TestBundleDeathIsToldAndBounded kills the bundle's process in a running
// docker-backend bottle. The engine restarts it on the same ports, with
// an empty tmpfs: it waits for its secrets, which `docker bottle start`
// sends; then ls and events say it died and how (exit code 137), and the
// operator's commands work again. Once its restarts are used up it stays
// down: ls says the bottle failed and why, events says so, and the
// operator's token is not sent to whoever listens on its port now.
func TestBundleDeathIsToldAndBounded(t *testing.T) {
	eng := testenv.Engine(t)
	base := testenv.Debian(t, eng)
	cfg := testenv.DockerConfig(t)
	name := dockerBottle(t, cfg, "bd", map[string]string{"bottle.yaml": "agent:\n  provider: shell\n  image: " + base + "\n" +
		"  command: [sh, -c, 'echo agent-up; exec sleep 600']\n"})
	// The agent has its workspace (cloned from the gate) before its
	// bundle dies.
	waitLogs(t, cfg, nil, name, "agent-up")
	svc := serviceOf(t, cfg)
	p, err := svc.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	before := *p.Endpoints

	if row := lsOf(t, cfg, name); row.State != "running" || row.Reason != "" {
		t.Fatalf("ls before the bundle died: %+v", row)
	}
	serving := func(restarts int) bringup.BundleState {
		t.Helper()
		for start := time.Now(); time.Since(start) < 60*time.Second; time.Sleep(200 * time.Millisecond) {
			st, err := bringup.Inspect(context.Background(), eng, p)
			if err != nil || !st.Serving || st.Restarts != restarts {
				continue
			}
			// Its secrets were in its memory alone: it serves once start
			// sent them again.
			if bringup.Health(context.Background(), p) == nil {
				t.Fatalf("the bundle serves after %d deaths without its secrets", restarts)
			}
			if r := docker(t, cfg, nil, "bottle", "start", name); r.code != 0 {
				t.Fatalf("start after %d deaths: exit %d %s", restarts, r.code, r.stderr)
			}
			if err := bringup.Health(context.Background(), p); err != nil {
				t.Fatalf("health after start: %v", err)
			}
			return st
		}
		t.Fatalf("the bundle did not come back after %d deaths", restarts)
		return bringup.BundleState{}
	}
	killBundle(t, eng, p)
	st := serving(1)
	if st.Restarts != 1 || st.Ports.Supervise == 0 {
		t.Fatalf("after one death: %+v", st)
	}
	if got := fmt.Sprintf("127.0.0.1:%d", st.Ports.Supervise); got != before.HostSupervise {
		t.Errorf("the restarted bundle publishes its supervisor on %s, not on %s", got, before.HostSupervise)
	}
	if got := fmt.Sprintf("127.0.0.1:%d", st.Ports.Proxy); got != before.HostProxy {
		t.Errorf("the restarted bundle publishes its proxy on %s, not on %s", got, before.HostProxy)
	}
	row := lsOf(t, cfg, name)
	if row.State != "running" || !strings.Contains(row.Reason, "exit code 137") || !strings.Contains(row.Reason, "restarted it (1 of") {
		t.Errorf("ls after the bundle died and came back: %+v", row)
	}
	if tbl := docker(t, cfg, nil, "bottle", "ls"); !strings.Contains(tbl.stdout, "running (bundle restarted 1× after exit 137)") {
		t.Errorf("ls table: %s", tbl.stdout)
	}
	ev := docker(t, cfg, nil, "bottle", "events", name)
	if ev.code != 0 || !strings.Contains(ev.stdout, "bundle.restarted") || !strings.Contains(ev.stdout, "exit code 137") {
		t.Errorf("events after the bundle died: exit %d\n%s\n%s", ev.code, ev.stdout, ev.stderr)
	}
	if r := docker(t, cfg, nil, "bottle", "approvals", name); r.code != 0 {
		t.Errorf("approvals after the restart: exit %d %s", r.code, r.stderr)
	}

	// It dies again and again: the engine restarts it a bounded number of
	// times, then leaves it down.
	for i := 2; i <= bringup.MaxRestarts; i++ {
		killBundle(t, eng, p)
		serving(i)
	}
	killBundle(t, eng, p)
	for start := time.Now(); ; time.Sleep(200 * time.Millisecond) {
		st, _ := bringup.Inspect(context.Background(), eng, p)
		if st.Failed() {
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("the bundle was not left down after %d restarts: %+v", bringup.MaxRestarts, st)
		}
	}
	// Whoever takes the supervisor's port now must not get the token.
	got := make(chan string, 16)
	thief, err := net.Listen("tcp", before.HostSupervise)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("Authorization")
		io.WriteString(w, "[]")
	})}
	go srv.Serve(thief)
	defer srv.Close()

	row = lsOf(t, cfg, name)
	if row.State != "failed" || !strings.Contains(row.Reason, "exit code 137") || !strings.Contains(row.Reason, "stays down") {
		t.Errorf("ls after the restarts were used up: %+v", row)
	}
	ev = docker(t, cfg, nil, "bottle", "events", name)
	if ev.code == 0 || !strings.Contains(ev.stdout, "bundle.failed") || !strings.Contains(ev.stderr, "is not running") {
		t.Errorf("events with the bundle down: exit %d\n%s\n%s", ev.code, ev.stdout, ev.stderr)
	}
	if r := docker(t, cfg, nil, "bottle", "approvals", name); r.code == 0 || !strings.Contains(r.stderr, "is not running") {
		t.Errorf("approvals with the bundle down: exit %d %s", r.code, r.stderr)
	}
	select {
	case auth := <-got:
		t.Errorf("a request went to the port's new owner, with Authorization %q", auth)
	default:
	}
	// The user can bring it back.
	srv.Close()
	if r := docker(t, cfg, nil, "bottle", "start", name); r.code != 0 {
		t.Errorf("start after the failure: exit %d %s", r.code, r.stderr)
	}
	if r := docker(t, cfg, nil, "bottle", "approvals", name); r.code != 0 {
		t.Errorf("approvals after start: exit %d %s", r.code, r.stderr)
	}
}
