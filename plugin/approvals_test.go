package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/config"

	"github.com/docker-bottle/docker-bottle/bundle/approval"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor/api"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor/client"
	"github.com/docker-bottle/docker-bottle/plan"
)

// syncBuffer is a command's output, read by the test while it is written.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// useStateDir points the plugin's state (DOCKER_CONFIG/bottle) at a fresh
// temporary dir for one test.
func useStateDir(t *testing.T) plan.Dirs {
	t.Helper()
	old := config.Dir()
	config.SetDir(t.TempDir())
	t.Setenv("DOCKER_BOTTLE_CACHE", t.TempDir())
	t.Cleanup(func() { config.SetDir(old) })
	dirs, err := plan.DefaultDirs()
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
}

func newBottle(t *testing.T, name string) *bottleFixture {
	t.Helper()
	dirs := useStateDir(t)
	stage := dirs.Stage(name)
	if err := os.MkdirAll(stage, 0o700); err != nil {
		t.Fatal(err)
	}
	p := plan.Plan{
		Slug:              name,
		StageDir:          stage,
		AgentTokenFile:    filepath.Join(stage, plan.StageAgentToken),
		OperatorTokenFile: filepath.Join(stage, plan.StageOperatorFile),
		Bundle:            plan.BundlePlan{Container: "bottle-" + name + "-bundle"},
	}
	agentToken, operatorToken := "agent-"+name+"-4f1c9a", "operator-"+name+"-88d0e2"
	for f, tok := range map[string]string{p.AgentTokenFile: agentToken, p.OperatorTokenFile: operatorToken} {
		if err := os.WriteFile(f, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	timeout := supervisor.Duration(time.Minute)
	sup, err := supervisor.New(supervisor.Config{
		Bottle:            name,
		AgentTokenFile:    p.AgentTokenFile,
		OperatorTokenFile: p.OperatorTokenFile,
		Approvals:         supervisor.Policy{Kinds: []approval.Kind{approval.Egress, approval.Push}, Timeout: &timeout},
	}, supervisor.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Serve(ctx, ln) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(func() { stop(); sup.Close() })
	p.Endpoints = &plan.Endpoints{HostSupervise: ln.Addr().String()}
	if err := p.Save(); err != nil {
		t.Fatal(err)
	}
	agent, err := client.New(ln.Addr().String(), agentToken)
	if err != nil {
		t.Fatal(err)
	}
	return &bottleFixture{name: name, plan: p, sup: sup, agent: agent, stop: stop}
}

// runCommand runs `docker bottle ARGS...` in-process and returns its
// stdout, stderr and error.
func runCommand(ctx context.Context, t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut syncBuffer
	err := runCommandTo(ctx, t, &out, &errOut, args...)
	return out.String(), errOut.String(), err
}

func runCommandTo(ctx context.Context, t *testing.T, out, errOut io.Writer, args ...string) error {
	t.Helper()
	cli, err := command.NewDockerCli(command.WithOutputStream(out), command.WithErrorStream(errOut))
	if err != nil {
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
	check(`--format "yaml" is not supported`, "events", "--format", "yaml", b.name)
	check(`no pending request "abc"`, "approve", b.name, "abc")
	if _, _, err := runCommand(ctx, t, "deny", b.name); err == nil || !strings.Contains(err.Error(), "requires 2 arguments") {
		t.Errorf("deny without ID: %v", err)
	}

	// A bottle whose bundle is not up has no endpoints in its plan.
	down := b.plan
	down.Endpoints = nil
	if err := down.Save(); err != nil {
		t.Fatal(err)
	}
	check("is not up", "approvals", b.name)

	// A bundle that went away: its port refuses.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := b.plan
	gone.Endpoints = &plan.Endpoints{HostSupervise: ln.Addr().String()}
	ln.Close()
	gone.Save()
	check("cannot reach the supervisor", "events", b.name)

	// A token that does not match the running bundle.
	b.plan.Save()
	os.WriteFile(b.plan.OperatorTokenFile, []byte("stale"), 0o600)
	check("refused", "audit", b.name)
	os.Remove(b.plan.OperatorTokenFile)
	check("reading the operator token", "audit", b.name)
}
