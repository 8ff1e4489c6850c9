package testio

import (
	"strings"
	"testing"
	"time"
)

func TestWaitFor(t *testing.T) {
	var b Buffer
	go func() {
		time.Sleep(20 * time.Millisecond) // a writer that comes later, so WaitFor waits
		b.Write([]byte("ready\n"))
	}()
	b.WaitFor(t, "ready", 10*time.Second)

	msg := Failure(t, func(tb testing.TB) { b.WaitFor(tb, "never", 50*time.Millisecond) })
	if !strings.Contains(msg, `no "never" in the output:`) || !strings.Contains(msg, "ready") {
		t.Errorf("WaitFor of what never came: %q", msg)
	}
}
