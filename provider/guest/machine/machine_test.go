package machine

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/docker-bottle/docker-bottle/provider/guest"
)

// TestReady: the line starts with the marker the host's boot check looks
// for, and names this kernel and user.
func TestReady(t *testing.T) {
	var out bytes.Buffer
	if err := ready(&out); err != nil {
		t.Fatal(err)
	}
	release, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%s: kernel %s, uid %d\n", guest.ReadyMarker, strings.TrimSpace(string(release)), os.Getuid())
	if out.String() != want {
		t.Errorf("ready printed %q, want %q", out.String(), want)
	}
	if err := Ready(context.Background(), []string{"x"}); err == nil {
		t.Error("ready took an argument")
	}
}

// TestSleep: sleep lasts until it is stopped.
func TestSleep(t *testing.T) {
	if err := Sleep(context.Background(), []string{"10"}); err == nil {
		t.Error("sleep took an argument")
	}
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- Sleep(ctx, nil) }()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("sleep ended before it was stopped: %v", err)
		default:
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("a stopped sleep: %v", err)
		}
	})
}
