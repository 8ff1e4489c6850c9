package client_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/bundle/approval"
	"github.com/docker-bottle/docker-bottle/bundle/audit"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor/api"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor/client"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor/supervisortest"
)

const (
	agentToken    = "agent-0123456789"
	operatorToken = "operator-0123456789"
)

// serve runs a real supervisor on 127.0.0.1 and returns it, its address
// and a function that stops serving.
func serve(t *testing.T) (*supervisor.Supervisor, string, func()) {
	t.Helper()
	dir := t.TempDir()
	for name, tok := range map[string]string{"agent.token": agentToken, "operator.token": operatorToken} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(tok), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	timeout := supervisor.Duration(time.Minute)
	return supervisortest.Start(t, supervisor.Config{
		Bottle:            "c",
		AgentTokenFile:    filepath.Join(dir, "agent.token"),
		OperatorTokenFile: filepath.Join(dir, "operator.token"),
		Approvals:         supervisor.Policy{Kinds: []approval.Kind{approval.Egress}, Timeout: &timeout},
	})
}

func newClient(t *testing.T, addr, token string) *client.Client {
	t.Helper()
	c, err := client.New(addr, token)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNew(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:8419", "http://100.96.0.1:8419", "http://10.0.0.2:8419/"} {
		if _, err := client.New(ok, "t"); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "ftp://x", "http://", "::::"} {
		if _, err := client.New(bad, "t"); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := client.New("127.0.0.1:1", ""); err == nil {
		t.Error("no token accepted")
	}
}

func TestRoundTrip(t *testing.T) {
	s, addr, _ := serve(t)
	ctx := context.Background()
	agent, op := newClient(t, addr, agentToken), newClient(t, "http://"+addr, operatorToken)

	h, err := agent.Health(ctx)
	if err != nil || !h.OK || h.Bottle != "c" {
		t.Fatalf("health %+v %v", h, err)
	}
	s.AddHealth("gate", func() error { return errors.New("down") })
	if h, err = op.Health(ctx); err != nil || h.OK || h.Daemons["gate"].Error != "down" {
		t.Fatalf("unhealthy %+v %v", h, err)
	}

	ev, err := agent.PostEvent(ctx, "tool.use", "Bash", map[string]string{"cmd": "ls"})
	if err != nil || ev.Seq != 1 || ev.Source != api.SourceAgent {
		t.Fatalf("post %+v %v", ev, err)
	}
	if _, err := agent.Events(ctx, 0); client.StatusCode(err) != 403 {
		t.Fatalf("agent listing events: %v, want 403", err)
	}
	evs, err := op.Events(ctx, 0)
	if err != nil || len(evs) != 1 || string(evs[0].Data) != `{"cmd":"ls"}` {
		t.Fatalf("events %+v %v", evs, err)
	}

	res := make(chan approval.Decision, 1)
	go func() {
		d, _ := s.Decide(ctx, approval.Request{Kind: approval.Egress, Subject: "x.example:443"})
		res <- d
	}()
	var as []api.Approval
	for deadline := time.Now().Add(10 * time.Second); len(as) == 0; time.Sleep(5 * time.Millisecond) {
		if as, err = agent.Approvals(ctx); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("nothing pending")
		}
	}
	if _, err := agent.Decide(ctx, as[0].ID, approval.AllowOnce); client.StatusCode(err) != 403 {
		t.Fatalf("agent deciding: %v, want 403", err)
	}
	d, err := op.Decide(ctx, as[0].ID, approval.AllowOnce)
	if err != nil || d.Decision != approval.AllowOnce || d.Subject != "x.example:443" {
		t.Fatalf("decide %+v %v", d, err)
	}
	if got := <-res; got != approval.AllowOnce {
		t.Fatalf("asker got %v", got)
	}
	_, err = op.Decide(ctx, as[0].ID, approval.Deny)
	if client.StatusCode(err) != 404 || !strings.Contains(err.Error(), "already decided") {
		t.Fatalf("deciding twice: %v", err)
	}

	es, err := op.Audit(ctx, 0)
	if err != nil || len(es) != 2 || es[1].Source != "supervisor" {
		t.Fatalf("audit %+v %v", es, err)
	}
	if es, err = op.Audit(ctx, 1); err != nil || len(es) != 1 || es[0].Seq != 2 {
		t.Fatalf("audit after 1: %+v %v", es, err)
	}

	// Tool approvals are off in this bottle: the agent's ask is denied at
	// once, by the policy.
	ans, err := agent.Ask(ctx, "Bash(ls)", `{"command":"ls"}`)
	if err != nil || ans.Decision != approval.Deny || ans.By != "policy" {
		t.Fatalf("ask: %+v %v", ans, err)
	}

	wrong := newClient(t, addr, "nope")
	_, err = wrong.Approvals(ctx)
	if client.StatusCode(err) != 401 || strings.Contains(err.Error(), "nope") {
		t.Fatalf("wrong token: %v", err)
	}
}

func TestFollow(t *testing.T) {
	s, addr, stop := serve(t)
	op := newClient(t, addr, operatorToken)
	s.Emit(api.Event{Type: "first"})

	got := make(chan api.Event, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- op.FollowEvents(ctx, 0, func(e api.Event) error { got <- e; return nil })
	}()
	next := func() api.Event {
		select {
		case e := <-got:
			return e
		case <-time.After(30 * time.Second):
			t.Fatal("nothing followed")
			return api.Event{}
		}
	}
	if e := next(); e.Type != "first" {
		t.Fatalf("got %+v", e)
	}
	s.Emit(api.Event{Type: "second"})
	if e := next(); e.Type != "second" || e.Seq != 2 {
		t.Fatalf("got %+v", e)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("after cancel: %v", err)
	}

	// fn's error ends the follow.
	errStop := errors.New("enough")
	if err := op.FollowEvents(context.Background(), 0, func(api.Event) error { return errStop }); err != errStop {
		t.Fatalf("fn error: %v", err)
	}

	// The audit follows too, and a server that stops ends the stream with
	// an error that says so.
	lg, err := audit.Open(filepath.Join(t.TempDir(), "a"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Close()
	lg.Tee(s.AuditSource("proxy"))
	lines := make(chan api.AuditEntry, 10)
	go func() {
		done <- op.FollowAudit(context.Background(), 0, func(e api.AuditEntry) error { lines <- e; return nil })
	}()
	lg.Write(map[string]string{"decision": "allow"})
	select {
	case e := <-lines:
		if e.Source != "proxy" || !strings.Contains(string(e.Record), `"decision":"allow"`) {
			t.Fatalf("audit entry %+v", e)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no audit line followed")
	}
	stop()
	if err := <-done; err == nil || !strings.Contains(err.Error(), "ended the stream") {
		t.Fatalf("after the server stopped: %v", err)
	}
	if _, err := op.Approvals(context.Background()); err == nil || !strings.Contains(err.Error(), "reaching the supervisor") {
		t.Fatalf("server gone: %v", err)
	}
}

// TestOperatorTokenRotates: the plugin writes a new operator token into
// the running bundle at each start; the supervisor takes the new one and
// refuses the one before.
func TestOperatorTokenRotates(t *testing.T) {
	dir := t.TempDir()
	agentFile, opFile := filepath.Join(dir, "agent.token"), filepath.Join(dir, "operator.token")
	write := func(path, tok string) {
		t.Helper()
		// As bottle-bundle secrets does: aside, then renamed into place.
		if err := os.WriteFile(path+".tmp", []byte(tok), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
	}
	write(agentFile, agentToken)
	write(opFile, operatorToken)
	_, addr, _ := supervisortest.Start(t, supervisor.Config{Bottle: "r", AgentTokenFile: agentFile, OperatorTokenFile: opFile})
	ctx := context.Background()
	old := newClient(t, addr, operatorToken)
	if _, err := old.Approvals(ctx); err != nil {
		t.Fatalf("the first token: %v", err)
	}
	write(opFile, "operator-rotated-0123")
	if _, err := old.Approvals(ctx); client.StatusCode(err) != 401 {
		t.Fatalf("the token before the rotation: %v, want 401", err)
	}
	if _, err := newClient(t, addr, "operator-rotated-0123").Approvals(ctx); err != nil {
		t.Fatalf("the rotated token: %v", err)
	}
	write(opFile, agentToken)
	if _, err := newClient(t, addr, "operator-rotated-0123").Approvals(ctx); client.StatusCode(err) != 401 {
		t.Fatalf("the token before the agent's was written: %v, want 401", err)
	}
}
