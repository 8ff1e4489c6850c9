package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/flags"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
	mobyclient "github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/bundle/approval"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor/api"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor/client"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor/supervisortest"
	"github.com/docker-bottle/docker-bottle/internal/testenv/testio"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/stage"
)

// useStateDir points the plugin's state (DOCKER_CONFIG/bottle) at a fresh
// temporary dir for one test.
func useStateDir(t *testing.T) stage.Dirs {
	t.Helper()
	old := config.Dir()
	config.SetDir(t.TempDir())
	t.Setenv("DOCKER_BOTTLE_CACHE", t.TempDir())
	t.Cleanup(func() { config.SetDir(old) })
	dirs, err := stage.DefaultDirs()
	if err != nil {
		t.Fatal(err)
	}
	return dirs
}

// bottleFixture is a bottle whose stage dir the test made, with a real
// supervisor serving on 127.0.0.1 as its bundle would.
type bottleFixture struct {
	name  string
	plan  plan.Plan
	sup   *supervisor.Supervisor
	agent *client.Client // the agent's side, with the agent's token
	stop  func()         // stops serving
	port  int            // where the supervisor listens
}

func newBottle(t *testing.T, name string) *bottleFixture {
	t.Helper()
	dirs := useStateDir(t)
	dir := dirs.Stage(name)
	if err := os.MkdirAll(dir.Path(), 0o700); err != nil {
		t.Fatal(err)
	}
	p := plan.Plan{
		Slug:              name,
		StageDir:          dir.Path(),
		AgentTokenFile:    dir.File(stage.AgentToken),
		OperatorTokenFile: dir.File(stage.OperatorToken),
		Bundle:            plan.BundlePlan{Container: "bottle-" + name + "-bundle"},
	}
	agentToken, operatorToken := "agent-"+name+"-4f1c9a", "operator-"+name+"-88d0e2"
	for f, tok := range map[string]string{p.AgentTokenFile: agentToken, p.OperatorTokenFile: operatorToken} {
		if err := os.WriteFile(f, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The bundle has its own copy of the operator token (its tmpfs): a
	// change of the plugin's file does not change what it takes.
	bundleOperator := filepath.Join(t.TempDir(), "operator.token")
	if err := os.WriteFile(bundleOperator, []byte(operatorToken), 0o600); err != nil {
		t.Fatal(err)
	}
	timeout := supervisor.Duration(time.Minute)
	sup, addr, stop := supervisortest.Start(t, supervisor.Config{
		Bottle:            name,
		AgentTokenFile:    p.AgentTokenFile,
		OperatorTokenFile: bundleOperator,
		Approvals:         supervisor.Policy{Kinds: []approval.Kind{approval.Egress, approval.Push}, Timeout: &timeout},
	})
	p.Endpoints = &plan.Endpoints{HostSupervise: addr}
	if err := stage.Save(p); err != nil {
		t.Fatal(err)
	}
	_, portText, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portText)
	runningBundle(p, uint16(port))
	t.Cleanup(func() { bundles.Delete(p.Bundle.Container) })
	agent, err := client.New(addr, agentToken)
	if err != nil {
		t.Fatal(err)
	}
	return &bottleFixture{name: name, plan: p, sup: sup, agent: agent, stop: stop, port: port}
}

// runCommand runs `docker bottle ARGS...` in-process and returns its
// stdout, stderr and error.
func runCommand(ctx context.Context, t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut testio.Buffer
	err := runCommandTo(ctx, t, &out, &errOut, args...)
	return out.String(), errOut.String(), err
}

// bundles are the bundle containers of the bottles the tests made, by
// name, as fakeEngine reports them.
var bundles sync.Map // string -> container.InspectResponse

// runningBundle records a bottle's bundle as running and publishing its
// three ports on port.
func runningBundle(p plan.Plan, port uint16) {
	bind := []network.PortBinding{{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: strconv.Itoa(int(port))}}
	bundles.Store(p.Bundle.Container, container.InspectResponse{
		ID: p.Bundle.Container, Created: time.Now().UTC().Format(time.RFC3339Nano),
		State:  &container.State{Status: container.StateRunning, Running: true},
		Config: &container.Config{Labels: map[string]string{plan.LabelBottle: p.Slug}},
		NetworkSettings: &container.NetworkSettings{Ports: network.PortMap{
			network.MustParsePort("3128/tcp"): bind, network.MustParsePort("8418/tcp"): bind, network.MustParsePort("8419/tcp"): bind,
		}},
	})
}

// fakeEngine is the engine as the commands see it in these tests: it
// knows the bundles in bundles, and nothing else.
type fakeEngine struct{ mobyclient.APIClient }

func (fakeEngine) ContainerInspect(ctx context.Context, id string, o mobyclient.ContainerInspectOptions) (mobyclient.ContainerInspectResult, error) {
	c, ok := bundles.Load(id)
	if !ok {
		return mobyclient.ContainerInspectResult{}, cerrdefs.ErrNotFound.WithMessage("no such container: " + id)
	}
	return mobyclient.ContainerInspectResult{Container: c.(container.InspectResponse)}, nil
}

// ContainerList finds no container: the bottles of these tests have
// none to read the usage of.
func (fakeEngine) ContainerList(context.Context, mobyclient.ContainerListOptions) (mobyclient.ContainerListResult, error) {
	return mobyclient.ContainerListResult{}, nil
}

func (fakeEngine) Ping(ctx context.Context, o mobyclient.PingOptions) (mobyclient.PingResult, error) {
	return mobyclient.PingResult{}, errors.New("no engine in this test")
}

func (fakeEngine) Events(ctx context.Context, o mobyclient.EventsListOptions) mobyclient.EventsResult {
	errs := make(chan error, 1)
	errs <- io.EOF
	return mobyclient.EventsResult{Messages: make(chan events.Message), Err: errs}
}

func runCommandTo(ctx context.Context, t *testing.T, out, errOut io.Writer, args ...string) error {
	t.Helper()
	cli, err := command.NewDockerCli(command.WithOutputStream(out), command.WithErrorStream(errOut))
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.Initialize(flags.NewClientOptions(), command.WithAPIClient(fakeEngine{})); err != nil {
		t.Fatal(err)
	}
	root := NewRootCmd(cli)
	root.SetArgs(args)
	root.SetOut(out)
	root.SetErr(errOut)
	return root.ExecuteContext(ctx)
}

// hold asks the supervisor in the background, as the proxy or gate would.
func (b *bottleFixture) hold(kind approval.Kind, subject string) <-chan approval.Decision {
	ch := make(chan approval.Decision, 1)
	go func() {
		d, _ := b.sup.Decide(context.Background(), approval.Request{Kind: kind, Subject: subject, Detail: "CONNECT " + subject, Requester: "10.0.0.3:40000"})
		ch <- d
	}()
	return ch
}

func (b *bottleFixture) waitPending(t *testing.T, n int) []api.Approval {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if p := b.sup.Pending(); len(p) == n {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("want %d pending, have %d", n, len(b.sup.Pending()))
		}
	}
}

func outcome(t *testing.T, ch <-chan approval.Decision) approval.Decision {
	t.Helper()
	select {
	case d := <-ch:
		return d
	case <-time.After(30 * time.Second):
		t.Fatal("the held request was not settled")
		return ""
	}
}

func TestApprovalsCommand(t *testing.T) {
	b := newBottle(t, "apv")
	ctx := context.Background()

	out, _, err := runCommand(ctx, t, "approvals", b.name)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "ID") ||
		!strings.Contains(lines[0], "SUBJECT") {
		t.Fatalf("empty list: %q", out)
	}

	b.hold(approval.Egress, "example.com:443")
	id := b.waitPending(t, 1)[0].ID
	out, _, err = runCommand(ctx, t, "approvals", b.name)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], id[:shortID]+" ") || strings.Contains(out, id) ||
		!strings.Contains(lines[1], "egress") || !strings.Contains(lines[1], "example.com:443") ||
		!strings.Contains(lines[1], "10.0.0.3:40000") {
		t.Fatalf("table: %q", out)
	}
	if out, _, _ = runCommand(ctx, t, "approvals", "--no-trunc", b.name); !strings.Contains(out, id) {
		t.Fatalf("--no-trunc: %q", out)
	}

	out, _, err = runCommand(ctx, t, "approvals", "--format", "json", b.name)
	if err != nil {
		t.Fatal(err)
	}
	var a api.Approval
	if err := json.Unmarshal([]byte(out), &a); err != nil || a.ID != id || a.Subject != "example.com:443" {
		t.Fatalf("json %q: %v", out, err)
	}
	// The operator's token is used, and never printed.
	tok, _ := os.ReadFile(b.plan.OperatorTokenFile)
	if strings.Contains(out, strings.TrimSpace(string(tok))) {
		t.Fatal("the token was printed")
	}
}

func TestCommandsExplainWhatIsWrong(t *testing.T) {
	b := newBottle(t, "errs")
	ctx := context.Background()
	check := func(want string, args ...string) {
		t.Helper()
		out, _, err := runCommand(ctx, t, args...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error with %q", args, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: the error is not one line: %q", args, err)
		}
		if out != "" {
			t.Errorf("%q: output on error: %q", args, out)
		}
	}
	for _, cmd := range [][]string{{"approvals"}, {"events"}, {"audit"}, {"approve", "_", "abc"}, {"deny", "_", "abc"}} {
		args := func(name string) []string {
			a := append([]string{}, cmd...)
			if len(a) == 3 {
				a[1] = name
				return a
			}
			return append(a, name)
		}
		check(`no bottle named "ghost"`, args("ghost")...)
		check("is invalid", args("Bad_Name")...)
	}
	check(`template parsing error`, "events", "--format", "{{.Message", b.name)
	check(`can't evaluate field Nope`, "audit", "--format", "{{.Nope}}", b.name)
	check(`can't evaluate field Nope`, "approvals", "--format", "table {{.Nope}}", b.name)
	check(`no pending request "abc"`, "approve", b.name, "abc")
	if _, _, err := runCommand(ctx, t, "deny", b.name); err == nil || !strings.Contains(err.Error(), "requires 2 arguments") {
		t.Errorf("deny without ID: %v", err)
	}

	// A bottle whose bundle is not up has no endpoints in its plan.
	down := b.plan
	down.Endpoints = nil
	if err := stage.Save(down); err != nil {
		t.Fatal(err)
	}
	check("is not up", "approvals", b.name)

	// A bundle that publishes a port where nothing answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := b.plan
	gone.Endpoints = &plan.Endpoints{HostSupervise: ln.Addr().String()}
	ln.Close()
	_ = stage.Save(gone)
	runningBundle(gone, uint16(ln.Addr().(*net.TCPAddr).Port))
	check("cannot reach the supervisor", "events", b.name)
	// A bundle that publishes another port than its plan records.
	_ = stage.Save(b.plan)
	check("publishes its supervisor on port", "approvals", b.name)

	// A token that does not match the running bundle.
	runningBundle(b.plan, uint16(b.port))
	os.WriteFile(b.plan.OperatorTokenFile, []byte("stale"), 0o600)
	check("refused", "audit", b.name)
	os.Remove(b.plan.OperatorTokenFile)
	check("reading the operator token", "audit", b.name)
}

// TestTheOperatorTokenGoesOnlyToTheBundle: when the bundle is down (its
// process died), something else may listen on the port the plan records;
// the commands do not send it the operator's token, and say why.
func TestTheOperatorTokenGoesOnlyToTheBundle(t *testing.T) {
	b := newBottle(t, "l6")
	b.stop()
	// Whoever took the port after the bundle died.
	got := make(chan string, 16)
	thief, err := net.Listen("tcp", b.plan.Endpoints.HostSupervise)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("Authorization")
		w.WriteHeader(200)
		io.WriteString(w, "[]")
	})}
	go srv.Serve(thief)
	t.Cleanup(func() { srv.Close() })
	died := container.InspectResponse{ID: b.plan.Bundle.Container, RestartCount: 3,
		State:  &container.State{Status: container.StateExited, ExitCode: 137, OOMKilled: true, FinishedAt: time.Now().UTC().Format(time.RFC3339Nano)},
		Config: &container.Config{Labels: map[string]string{plan.LabelBottle: b.name}}}
	bundles.Store(b.plan.Bundle.Container, died)
	for _, args := range [][]string{{"approvals", b.name}, {"audit", b.name}, {"approve", b.name, "abc"}} {
		_, _, err := runCommand(context.Background(), t, args...)
		if err == nil || !strings.Contains(err.Error(), "is not running") || !strings.Contains(err.Error(), "exit code 137, killed for want of memory") {
			t.Errorf("%v with the bundle down: %v", args, err)
		}
	}
	// events tells what happened to the bundle, then fails.
	out, _, err := runCommand(context.Background(), t, "events", b.name)
	if err == nil || !strings.Contains(out, "bundle.failed") || !strings.Contains(out, "exit code 137") {
		t.Errorf("events with the bundle down: %v\n%s", err, out)
	}
	select {
	case auth := <-got:
		t.Fatalf("a request reached the port's new owner, with Authorization %q", auth)
	default:
	}
}
