package gate_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/bundle/approval"
	"github.com/docker-bottle/docker-bottle/bundle/gate"
	"github.com/docker-bottle/docker-bottle/bundle/gate/gatetest"
	"github.com/docker-bottle/docker-bottle/internal/testenv/testio"
)

// One push is checked at a time; MaxQueuedPushes more wait their turn, and
// any beyond are refused at once with a message that says to retry.
func TestConcurrentPushesQueueOrAreRefused(t *testing.T) {
	asked := make(chan struct{})
	release := make(chan struct{})
	d := approval.DeciderFunc(func(ctx context.Context, req approval.Request) (approval.Decision, error) {
		close(asked)
		<-release
		return approval.AllowOnce, nil
	})
	e := newEnv(t, func(c *gate.Config) { c.Approvals.Enabled = true }, gate.WithDecider(d))
	tok, err := os.ReadFile(e.tokenFile)
	must(t, err)
	head := e.git(e.user, "rev-parse", "HEAD")

	// A push held for a human holds the push slot.
	c := e.clone("work")
	e.commitFile(c, ".github/workflows/ci.yml", "on: push\n", "workflow")
	held := make(chan error, 1)
	go func() { _, err := e.run(e.home, c, "push", "origin", "HEAD:refs/heads/bottle/b1/held"); held <- err }()
	select {
	case <-asked:
	case <-time.After(30 * time.Second):
		t.Fatal("the protected push never reached the decider")
	}

	const n = gate.MaxQueuedPushes + 3
	empty := gatetest.NewPack().Bytes()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var busy, ok int
	var early []string
	start := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ref := "refs/heads/bottle/b1/q" + string(rune('a'+i))
			body := gatetest.ReceivePackBody([]gatetest.Command{{Old: gatetest.ZeroID, New: head, Ref: ref}}, empty)
			_, report, err := gatetest.Push(&http.Client{Timeout: time.Minute}, e.url, strings.TrimSpace(string(tok)), body)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				t.Errorf("push %d: %v", i, err)
			case strings.Contains(report, "ok "+ref):
				ok++
			case strings.Contains(report, "busy with other pushes") && strings.Contains(report, "try again"):
				busy++
				early = append(early, time.Since(start).String())
			default:
				t.Errorf("push %d: %q", i, report)
			}
		}(i)
	}
	// Those beyond the queue are refused while the held push still holds
	// the slot.
	refused := func() int {
		mu.Lock()
		defer mu.Unlock()
		return busy
	}
	testio.Eventually(t, 30*time.Second, func() bool { return refused() >= n-gate.MaxQueuedPushes },
		func() string {
			return fmt.Sprintf("%d pushes refused as busy while one was held, want %d", refused(), n-gate.MaxQueuedPushes)
		})
	refusedWhileHeld := refused()
	close(release)
	wg.Wait()
	if err := <-held; err != nil {
		t.Errorf("the held push: %v", err)
	}
	if refusedWhileHeld != n-gate.MaxQueuedPushes || busy != refusedWhileHeld || ok != gate.MaxQueuedPushes {
		t.Errorf("%d pushes refused as busy while one was held (after %v), %d in all, %d applied; want %d refused and %d applied",
			refusedWhileHeld, early, busy, ok, n-gate.MaxQueuedPushes, gate.MaxQueuedPushes)
	}
}
