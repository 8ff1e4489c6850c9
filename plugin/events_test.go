package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/bundle/supervisor/api"
	"github.com/docker-bottle/docker-bottle/internal/testenv/testio"
)

func TestEventsCommand(t *testing.T) {
	b := newBottle(t, "evt")
	ctx := context.Background()
	if _, err := b.agent.PostEvent(ctx, "tool.use", "Bash: go test ./...", map[string]string{"tool": "Bash"}); err != nil {
		t.Fatal(err)
	}
	// The agent's text cannot drive the operator's terminal.
	if _, err := b.agent.PostEvent(ctx, "note", "clear\x1b[2Jscreen\nfake line", nil); err != nil {
		t.Fatal(err)
	}
	b.sup.Emit(api.Event{Source: "proxy", Type: "egress.deny", Message: "evil.example:443"})

	out, _, err := runCommand(ctx, t, "events", b.name)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "TIME") {
		t.Fatalf("table: %q", out)
	}
	for i, want := range [][]string{{"agent", "tool.use", "Bash: go test ./..."}, {"agent", "note", `clear\x1b[2Jscreen\nfake line`}, {"proxy", "egress.deny", "evil.example:443"}} {
		for _, w := range want {
			if !strings.Contains(lines[i+1], w) {
				t.Errorf("row %d %q lacks %q", i+1, lines[i+1], w)
			}
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Error("a raw escape reached the terminal")
	}

	out, _, err = runCommand(ctx, t, "events", "--format", "json", b.name)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	var evs []api.Event
	for dec.More() {
		var e api.Event
		if err := dec.Decode(&e); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e)
	}
	if len(evs) != 3 || evs[0].Source != "agent" || string(evs[0].Data) != `{"tool":"Bash"}` || evs[2].Seq != 3 {
		t.Fatalf("json: %+v", evs)
	}
}

func TestEventsFollowEndsCleanly(t *testing.T) {
	b := newBottle(t, "evf")
	ctx := context.Background()
	b.agent.PostEvent(ctx, "first", "before following", nil)

	// The docker CLI passes its Ctrl-C on by cancelling the context.
	t.Run("cancelled", func(t *testing.T) {
		var out, errOut testio.Buffer
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- runCommandTo(cctx, t, &out, &errOut, "events", "-f", b.name) }()
		out.WaitFor(t, "before following", 30*time.Second)
		b.agent.PostEvent(ctx, "second", "while following", nil)
		out.WaitFor(t, "while following", 30*time.Second)
		cancel()
		if err := <-done; !errors.Is(err, ErrInterrupted) {
			t.Fatalf("follow ended with %v, want ErrInterrupted (exit 130)", err)
		}
		if strings.Count(out.String(), "TIME") != 1 {
			t.Errorf("header printed %d times", strings.Count(out.String(), "TIME"))
		}
	})

	// A real Ctrl-C: SIGINT to this process, which the command has turned
	// into cancellation by the time it prints a followed line; it exits
	// 130, as `docker events` does.
	t.Run("SIGINT", func(t *testing.T) {
		var out, errOut testio.Buffer
		done := make(chan error, 1)
		go func() { done <- runCommandTo(ctx, t, &out, &errOut, "events", "--follow", "--format", "json", b.name) }()
		out.WaitFor(t, "while following", 30*time.Second)
		if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if !errors.Is(err, ErrInterrupted) {
				t.Fatalf("Ctrl-C: %v, want ErrInterrupted (exit 130)", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Ctrl-C did not end the follow")
		}
	})

	t.Run("bundle stops", func(t *testing.T) {
		var out, errOut testio.Buffer
		done := make(chan error, 1)
		go func() { done <- runCommandTo(ctx, t, &out, &errOut, "events", "-f", b.name) }()
		out.WaitFor(t, "while following", 30*time.Second)
		b.sup.Close()
		b.stop()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "ended the stream") {
				t.Fatalf("bundle stopped: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the follow did not end with the bundle")
		}
	})
}
