package gate_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/bundle/approval"
	"github.com/docker-bottle/docker-bottle/bundle/gate"
)

// A panic while a push is decided (here in the decider, which the gate
// calls with its push lock held) refuses that push and leaves the gate
// able to take the next one.
func TestPanicInDecideDoesNotWedgePushes(t *testing.T) {
	var calls atomic.Int32
	d := approval.DeciderFunc(func(ctx context.Context, req approval.Request) (approval.Decision, error) {
		calls.Add(1)
		panic("decider bug")
	})
	e := newEnv(t, func(c *gate.Config) { c.Approvals.Enabled = true }, gate.WithDecider(d))
	c := e.clone("work")
	e.commitFile(c, ".github/workflows/ci.yml", "on: push\n", "workflow")
	e.gitFail(c, "push", "origin", "HEAD:refs/heads/bottle/b1/ci")
	if calls.Load() != 1 {
		t.Fatalf("the decider was called %d times, want 1", calls.Load())
	}
	if e.stageRef("refs/heads/bottle/b1/ci") != "" {
		t.Errorf("the push whose decision panicked was applied")
	}

	e.git(c, "reset", "-q", "--hard", "origin/main")
	ok := e.commitFile(c, "notes.txt", "ordinary work\n", "ordinary")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := execGit(e, c, "push", "origin", "HEAD:refs/heads/bottle/b1/next")
	done := make(chan error, 1)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 2 * time.Second // git-remote-http outlives a killed git
	must(t, cmd.Start())
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the push after the panic failed: %v\n%s", err, out.String())
		}
	case <-ctx.Done():
		cmd.Process.Kill()
		<-done
		t.Fatalf("the push after the panic did not complete within 20s: the gate is wedged\n%s", out.String())
	}
	if got := e.stageRef("refs/heads/bottle/b1/next"); got != ok {
		t.Errorf("bottle/b1/next = %q, want %s", got, ok)
	}
}
