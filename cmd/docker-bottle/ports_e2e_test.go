//go:build e2e

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/bringup"
	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/internal/testenv/testio"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/smolvm/fakesmolvm/fakestate"
)

// TestPublishedPorts: on the docker backend, a port the agent serves HTTP
// on is fetched from the host through the port run published (from
// bottle.yaml with a free host port, and from -p with a given one); a port
// the agent serves but nobody published is reachable through none of the
// bundle's published ports until `docker bottle port NAME PORT` publishes
// it on the running bottle; publishing opens no egress (an unlisted host
// is still refused); each inbound connection is in the audit; and removing
// the bottle closes the ports and leaves nothing.
func TestPublishedPorts(t *testing.T) {
	t.Parallel()
	eng := testenv.Engine(t)
	base := testenv.Debian(t, eng)
	dockerfile := agentDockerfile(base)
	// The base has no python or busybox; perl-base serves.
	serve := func(port int) string {
		return fmt.Sprintf(`perl -MIO::Socket::INET -e '$s=IO::Socket::INET->new(LocalPort=>%d,Listen=>16,ReuseAddr=>1) or die; `+
			`while($c=$s->accept){<$c>; print $c "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nagent port %d\n"; close $c}' &`, port, port)
	}
	spec := fmt.Sprintf(`agent:
  provider: shell
  dockerfile: Dockerfile
  command: [sh, -c, %q]
ports:
  - 8000
`, serve(8000)+serve(8001)+serve(8002)+" sleep 900")
	hostPort := freePort(t)

	cfg := testenv.DockerConfig(t)
	env := []string{"DOCKER_BOTTLE_SMOLVM="}
	repo := testenv.GitRepoWith(t, map[string]string{"Dockerfile": dockerfile, "bottle.yaml": spec})
	name := fmt.Sprintf("pt-%d", time.Now().UnixNano()%1e6)
	run := docker(t, cfg, env, "bottle", "run", "-d", "--name", name, "--progress", "plain", "--backend", "docker",
		"-p", fmt.Sprintf("%d:8002", hostPort), repo)
	if run.code != 0 {
		t.Fatalf("run -d -p: exit %d\n%s", run.code, run.stderr)
	}
	removedAtEnd(t, cfg, env, name, repo)
	if !strings.Contains(run.stderr, "8000/tcp -> 127.0.0.1:") || !strings.Contains(run.stderr, fmt.Sprintf("8002/tcp -> 127.0.0.1:%d", hostPort)) {
		t.Errorf("run does not say where the ports are:\n%s", run.stderr)
	}

	list := docker(t, cfg, env, "bottle", "port", name)
	m := regexp.MustCompile(`(?m)^8000/tcp -> (127\.0\.0\.1:\d+)$`).FindStringSubmatch(list.stdout)
	if list.code != 0 || m == nil || !strings.Contains(list.stdout, fmt.Sprintf("8002/tcp -> 127.0.0.1:%d\n", hostPort)) ||
		strings.Contains(list.stdout, "8001") {
		t.Fatalf("port %s: exit %d\n%s%s", name, list.code, list.stdout, list.stderr)
	}
	if got := fetch(t, m[1], true); got != "agent port 8000\n" {
		t.Errorf("8000 through %s: %q", m[1], got)
	}
	if got := fetch(t, "127.0.0.1:"+strconv.Itoa(hostPort), true); got != "agent port 8002\n" {
		t.Errorf("8002 through the given host port %d: %q", hostPort, got)
	}
	one := docker(t, cfg, env, "bottle", "port", name, "8000")
	if one.code != 0 || strings.TrimSpace(one.stdout) != m[1] {
		t.Errorf("port %s 8000: exit %d %q %s", name, one.code, one.stdout, one.stderr)
	}

	// The undeclared 8001 answers through none of the bundle's published
	// ports, and the agent publishes none itself.
	bundle := docker(t, cfg, nil, "port", "bottle-"+name+"-bundle")
	for _, addr := range regexp.MustCompile(`127\.0\.0\.1:\d+`).FindAllString(bundle.stdout, -1) {
		if got := fetch(t, addr, false); strings.Contains(got, "agent port 8001") {
			t.Errorf("the undeclared port 8001 answers at %s", addr)
		}
	}
	if agent := docker(t, cfg, nil, "port", "bottle-"+name+"-agent"); strings.TrimSpace(agent.stdout) != "" {
		t.Errorf("the agent container publishes ports:\n%s", agent.stdout)
	}

	// Published on the running bottle, 8001 answers.
	add := docker(t, cfg, env, "bottle", "port", name, "8001")
	added := strings.TrimSpace(add.stdout)
	if add.code != 0 || !strings.HasPrefix(added, "127.0.0.1:") {
		t.Fatalf("port %s 8001: exit %d %q %s", name, add.code, add.stdout, add.stderr)
	}
	if got := fetch(t, added, true); got != "agent port 8001\n" {
		t.Errorf("8001 after publishing it at %s: %q", added, got)
	}
	ls := docker(t, cfg, env, "bottle", "ls", "--format", "{{json .}}")
	var row struct{ Ports []string }
	if err := json.Unmarshal([]byte(ls.stdout), &row); err != nil || !slices.Contains(row.Ports, "8001/tcp -> "+added) ||
		!slices.Contains(row.Ports, "8000/tcp -> "+m[1]) {
		t.Errorf("ls does not show the published ports:\n%s%s", ls.stdout, ls.stderr)
	}

	// Publishing opened no way out.
	out := docker(t, cfg, env, "bottle", "exec", name, "--", "sh", "-c", `curl -s -o /dev/null -w '%{http_code}' http://unlisted.example/`)
	if strings.TrimSpace(out.stdout) != "403" {
		t.Errorf("an unlisted host from a bottle with published ports: %q %s", out.stdout, out.stderr)
	}

	// Nor does the relay take connections from the bottle's side.
	svc := serviceOf(t, cfg)
	p, err := svc.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	hairpin := docker(t, cfg, env, "bottle", "exec", name, "--", "sh", "-c",
		fmt.Sprintf(`curl -s --max-time 5 --noproxy '*' http://%s:%d/ || true`, p.Bundle.InternalIP, bringup.RelayPoolBase))
	if strings.Contains(hairpin.stdout, "agent port") {
		t.Errorf("the relay answered the agent from inside the bottle: %q", hairpin.stdout)
	}

	audit := docker(t, cfg, env, "bottle", "audit", name)
	if !regexp.MustCompile(`relay +allow +inbound \S+ -> bottle-` + name + `-agent:8001`).MatchString(audit.stdout) {
		t.Errorf("the inbound connections are not in the audit:\n%s%s", audit.stdout, audit.stderr)
	}

	// A stopped and started bottle publishes the same ports, the one added
	// on the running bottle too.
	if r := docker(t, cfg, env, "bottle", "stop", name); r.code != 0 {
		t.Fatalf("stop: %s", r.stderr)
	}
	if r := docker(t, cfg, env, "bottle", "start", name); r.code != 0 {
		t.Fatalf("start: %s", r.stderr)
	}
	if got := fetch(t, added, true); got != "agent port 8001\n" {
		t.Errorf("8001 at %s after stop and start: %q", added, got)
	}

	if rm := docker(t, cfg, env, "bottle", "rm", "-f", name); rm.code != 0 {
		t.Fatalf("rm: %s", rm.stderr)
	}
	for _, addr := range []string{m[1], added} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after rm", addr)
		}
	}
}

// fetch GETs http://addr/ from the host; when wait, it tries for a while
// (the agent's servers start in the background).
func fetch(t *testing.T, addr string, wait bool) string {
	t.Helper()
	c := &http.Client{Timeout: 3 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := c.Get("http://" + addr + "/")
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			return string(b)
		}
		if !wait || time.Now().After(deadline) {
			return ""
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestPublishedPortsOnSmolvm: on smolvm the ports go to the machine as
// smolvm's own --port HOST:GUEST (bound on the host's loopback), the
// ports of bottle.yaml and of -p alike, with a free host port where none
// is given, and `docker bottle port` shows them. The contract fake runs the
// guest as a host process, so it checks the flags, not the forwarding.
func TestPublishedPortsOnSmolvm(t *testing.T) {
	t.Parallel()
	eng := testenv.Engine(t)
	base := testenv.Debian(t, eng)
	dockerfile := agentDockerfile(base)
	spec := "agent:\n  provider: shell\n  dockerfile: Dockerfile\n  command: [sleep, \"900\"]\nports:\n  - 8000\n"
	hostPort := freePort(t)
	wrapper, _ := recordedSmolvm(t)
	fakeState := t.TempDir()
	env := []string{"DOCKER_BOTTLE_SMOLVM=" + wrapper, "SMOLVM_FAKE_STATE=" + fakeState, "SMOLVM_FAKE_VERSION=1.9.3"}
	cfg := testenv.DockerConfig(t)
	repo := testenv.GitRepoWith(t, map[string]string{"Dockerfile": dockerfile, "bottle.yaml": spec})
	name := fmt.Sprintf("ps-%d", time.Now().UnixNano()%1e6)
	run := docker(t, cfg, env, "bottle", "run", "-d", "--name", name, "--progress", "plain", "--backend", "smolvm",
		"--network-mode", "bridge", "-p", fmt.Sprintf("%d:8002", hostPort), repo)
	if run.code != 0 {
		t.Fatalf("run -d -p: exit %d\n%s", run.code, run.stderr)
	}
	removedAtEnd(t, cfg, env, name, repo)

	list := docker(t, cfg, env, "bottle", "port", name)
	m := regexp.MustCompile(`(?m)^8000/tcp -> 127\.0\.0\.1:(\d+)$`).FindStringSubmatch(list.stdout)
	if list.code != 0 || m == nil || !strings.Contains(list.stdout, fmt.Sprintf("8002/tcp -> 127.0.0.1:%d\n", hostPort)) {
		t.Fatalf("port %s: exit %d\n%s%s", name, list.code, list.stdout, list.stderr)
	}
	rec, err := fakestate.ReadRecord(fakeState, "bottle-"+name)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{m[1] + ":8000", fmt.Sprintf("%d:8002", hostPort)}; !slices.Equal(rec.Ports, want) {
		t.Errorf("the machine was made with ports %q, want %q", rec.Ports, want)
	}
	// A running machine's ports cannot change: the refusal says what to do.
	add := docker(t, cfg, env, "bottle", "port", name, "8001")
	if add.code == 0 || !strings.Contains(add.stderr, "docker bottle run -p") {
		t.Errorf("port %s 8001 on smolvm: exit %d %s", name, add.code, add.stderr)
	}
}

// TestStartMovesTakenHostPorts: a stopped bottle whose saved host ports
// another process took meanwhile (here the supervisor's and the one that
// publishes the agent's port 8000) starts again on free ones: the bundle is
// made again with them, the plan records them, `approvals` reaches the
// supervisor, `port` and `ls` show where 8000 went and it answers there, the
// agent runs again and still gets out only through the proxy, and rm leaves
// nothing (the replaced container neither). On the old code start failed
// with the engine's "port is already allocated".
func TestStartMovesTakenHostPorts(t *testing.T) {
	t.Parallel()
	eng := testenv.Engine(t)
	base := testenv.Debian(t, eng)
	serve := `perl -MIO::Socket::INET -e '$s=IO::Socket::INET->new(LocalPort=>8000,Listen=>16,ReuseAddr=>1) or die; ` +
		`while($c=$s->accept){<$c>; print $c "HTTP/1.0 200 OK\r\n\r\nagent port 8000\n"; close $c}' & `
	spec := fmt.Sprintf("agent:\n  provider: shell\n  dockerfile: Dockerfile\n  command: [sh, -c, %q]\nports:\n  - 8000\n",
		serve+"echo agent started; exec sleep 900")
	cfg := testenv.DockerConfig(t)
	env := []string{"DOCKER_BOTTLE_SMOLVM="}
	repo := testenv.GitRepoWith(t, map[string]string{"Dockerfile": agentDockerfile(base), "bottle.yaml": spec})
	name := fmt.Sprintf("pm-%d", time.Now().UnixNano()%1e6)
	if run := docker(t, cfg, env, "bottle", "run", "-d", "--name", name, "--backend", "docker", repo); run.code != 0 {
		t.Fatalf("run -d: exit %d\n%s", run.code, run.stderr)
	}
	removedAtEnd(t, cfg, env, name, repo)
	svc := serviceOf(t, cfg)
	before, err := svc.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	published := func() string {
		t.Helper()
		r := docker(t, cfg, env, "bottle", "port", name, "8000")
		if r.code != 0 {
			t.Fatalf("port %s 8000: exit %d %s", name, r.code, r.stderr)
		}
		return strings.TrimSpace(r.stdout)
	}
	agentPort := published()
	if got := fetch(t, agentPort, true); got != "agent port 8000\n" {
		t.Fatalf("8000 through %s: %q", agentPort, got)
	}
	if r := docker(t, cfg, env, "bottle", "stop", name); r.code != 0 {
		t.Fatalf("stop: %s", r.stderr)
	}

	// Another process takes two of the saved ports while the bottle is
	// stopped, and keeps them.
	for _, addr := range []string{before.Endpoints.HostSupervise, agentPort} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("taking %s: %v", addr, err)
		}
		t.Cleanup(func() { l.Close() })
	}
	if r := docker(t, cfg, env, "bottle", "start", name); r.code != 0 || strings.TrimSpace(r.stdout) != name {
		t.Fatalf("start with two of its host ports taken: exit %d %q\n%s", r.code, r.stdout, r.stderr)
	} else if !strings.Contains(r.stderr, "are taken: making it again with others") {
		t.Errorf("start did not say that the bundle's ports moved: %q", r.stderr)
	}

	after, err := svc.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	if after.Endpoints.HostSupervise == before.Endpoints.HostSupervise {
		t.Errorf("the plan still names the taken supervisor port %s", before.Endpoints.HostSupervise)
	}
	if after.Endpoints.HostProxy != before.Endpoints.HostProxy || after.Endpoints.HostGitGate != before.Endpoints.HostGitGate {
		t.Errorf("free host ports moved: proxy %s -> %s, gate %s -> %s", before.Endpoints.HostProxy, after.Endpoints.HostProxy,
			before.Endpoints.HostGitGate, after.Endpoints.HostGitGate)
	}
	if r := docker(t, cfg, env, "bottle", "approvals", name); r.code != 0 {
		t.Errorf("approvals after start: exit %d %s", r.code, r.stderr)
	}
	moved := published()
	if moved == agentPort {
		t.Errorf("port 8000 is still said to be at the taken %s", agentPort)
	}
	if got := fetch(t, moved, true); got != "agent port 8000\n" {
		t.Errorf("8000 through %s after start: %q", moved, got)
	}
	ls := docker(t, cfg, env, "bottle", "ls", "--format", "{{json .}}")
	var row struct {
		State string
		Ports []string
	}
	if err := json.Unmarshal([]byte(ls.stdout), &row); err != nil || row.State != "running" || !slices.Equal(row.Ports, []string{"8000/tcp -> " + moved}) {
		t.Errorf("ls after start: %v\n%s%s", err, ls.stdout, ls.stderr)
	}
	var logs string
	testio.Eventually(t, 90*time.Second, func() bool {
		logs = docker(t, cfg, env, "bottle", "logs", name).stdout
		return strings.Count(logs, "agent started") == 2
	}, func() string { return "the agent did not run again after start:\n" + logs })
	out := docker(t, cfg, env, "bottle", "exec", name, "--", "sh", "-c", `curl -s -o /dev/null -w '%{http_code}' http://unlisted.example/`)
	if strings.TrimSpace(out.stdout) != "403" {
		t.Errorf("an unlisted host after start: %q %s", out.stdout, out.stderr)
	}
	// Started again while it runs, it stays where it is.
	if r := docker(t, cfg, env, "bottle", "start", name); r.code != 0 {
		t.Errorf("start of a running bottle: exit %d %s", r.code, r.stderr)
	}
	if again := published(); again != moved {
		t.Errorf("start of a running bottle moved 8000 from %s to %s", moved, again)
	}

	// A start killed while it made the bundle again leaves the old
	// container aside, and perhaps a replacement without its networks:
	// the next start puts the old one back.
	if r := docker(t, cfg, env, "bottle", "stop", name); r.code != 0 {
		t.Fatalf("stop: %s", r.stderr)
	}
	ctx := context.Background()
	aside := after.Bundle.Container + "-replaced"
	if _, err := eng.ContainerRename(ctx, after.Bundle.Container, client.ContainerRenameOptions{NewName: aside}); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.ContainerCreate(ctx, client.ContainerCreateOptions{Name: after.Bundle.Container,
		Config: &container.Config{Image: base, Cmd: []string{"true"}, Labels: map[string]string{plan.LabelBottle: name}}}); err != nil {
		t.Fatal(err)
	}
	if r := docker(t, cfg, env, "bottle", "start", name); r.code != 0 {
		t.Fatalf("start after an interrupted one: exit %d %s", r.code, r.stderr)
	}
	if r := docker(t, cfg, env, "bottle", "approvals", name); r.code != 0 {
		t.Errorf("approvals after the bundle was put back: exit %d %s", r.code, r.stderr)
	}
	if _, err := eng.ContainerInspect(ctx, aside, client.ContainerInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Errorf("%s is still there after start: %v", aside, err)
	}
}

// TestStartMovesTakenHostPortsOnSmolvmLoopback: a smolvm machine in
// loopback mode reaches the bundle through its host ports; when the proxy's
// was taken while the bottle was stopped, start makes the bundle again on
// a free one, and the agent's new session gets it (the -e of its exec, its
// env), as does `exec`.
func TestStartMovesTakenHostPortsOnSmolvmLoopback(t *testing.T) {
	t.Parallel()
	eng := testenv.Engine(t)
	base := testenv.Debian(t, eng)
	wrapper, calls := recordedSmolvm(t)
	env := []string{"DOCKER_BOTTLE_SMOLVM=" + wrapper, "SMOLVM_FAKE_STATE=" + t.TempDir(), "SMOLVM_FAKE_VERSION=1.9.3"}
	cfg := testenv.DockerConfig(t)
	// The workspace is in the image: the fake's guest cannot reach
	// 100.96.0.1 to clone it.
	repo := testenv.GitRepoWith(t, map[string]string{
		"Dockerfile":  "FROM " + base + "\nRUN git init -q /workspace\nENV HOME=/root\nWORKDIR /workspace\n",
		"bottle.yaml": "agent:\n  provider: shell\n  dockerfile: Dockerfile\n  command: [sh, -c, 'echo \"agent up, proxy port ${HTTPS_PROXY##*:}\"; exec sleep 900']\n",
	})
	name := fmt.Sprintf("pl-%d", time.Now().UnixNano()%1e6)
	if r := docker(t, cfg, env, "bottle", "run", "-d", "--backend", "smolvm", "--network-mode", "loopback", "--name", name, repo); r.code != 0 {
		t.Fatalf("run -d: exit %d\n%s", r.code, r.stderr)
	}
	removedAtEnd(t, cfg, env, name, repo)
	svc := serviceOf(t, cfg)
	p, err := svc.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	port := func(url string) string { return url[strings.LastIndex(url, ":")+1:] }
	waitLogs(t, cfg, env, name, "agent up, proxy port "+port(p.Endpoints.AgentProxyURL))
	if r := docker(t, cfg, env, "bottle", "stop", name); r.code != 0 {
		t.Fatalf("stop: %s", r.stderr)
	}
	l, err := net.Listen("tcp", p.Endpoints.HostProxy)
	if err != nil {
		t.Fatalf("taking the proxy's %s: %v", p.Endpoints.HostProxy, err)
	}
	defer l.Close()

	before := countLines(calls)
	if r := docker(t, cfg, env, "bottle", "start", name); r.code != 0 {
		t.Fatalf("start with the proxy's host port taken: exit %d\n%s", r.code, r.stderr)
	}
	q, err := svc.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	moved := port(q.Endpoints.AgentProxyURL)
	if q.Endpoints.HostProxy == p.Endpoints.HostProxy || q.Endpoints.HostProxy != "127.0.0.1:"+moved {
		t.Fatalf("after start the plan has the proxy at %s for the host, %s for the agent (was %s)",
			q.Endpoints.HostProxy, q.Endpoints.AgentProxyURL, p.Endpoints.HostProxy)
	}
	var session []string
	for _, c := range readCalls(t, calls)[before:] {
		if len(c) > 3 && c[0] == "machine" && c[1] == "exec" && contains(c, "-d") && contains(c, "start") {
			session = c
		}
	}
	if want := "HTTPS_PROXY=" + q.Endpoints.AgentProxyURL; !containsPair(session, "-e", want) {
		t.Errorf("the session's exec after start has no -e %s: %q", want, session)
	}
	waitLogs(t, cfg, env, name, "agent up, proxy port "+moved)
	if r := docker(t, cfg, env, "bottle", "exec", name, "--", "sh", "-c", `echo "${HTTPS_PROXY##*:}"`); r.code != 0 || strings.TrimSpace(r.stdout) != moved {
		t.Errorf("exec after start: exit %d %q, want port %s (%s)", r.code, r.stdout, moved, r.stderr)
	}
	if r := docker(t, cfg, env, "bottle", "approvals", name); r.code != 0 {
		t.Errorf("approvals after start: exit %d %s", r.code, r.stderr)
	}
}
