//go:build e2e

package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/internal/testenv"
)

// TestDashboardDecidesAHeldRequest runs `docker bottle dashboard` through
// the real docker CLI on a terminal of 80x24, over a real bundle: a
// request the proxy holds appears with the bell and the title's count, a
// key press lets it through and the request succeeds; q quits with exit
// 0 and gives the terminal back as it was.
func TestDashboardDecidesAHeldRequest(t *testing.T) {
	eng := testenv.Engine(t)
	cfg := testenv.DockerConfig(t)
	_, p := preparedBottle(t, eng, cfg, "supervise:\n  approvals: [egress]\n  timeout: 2m\n")
	internet := testenv.NewInternet(t, eng)
	internet.Host(t, "api.dash.test", "")
	internet.Connect(t, p.Bundle.Container)

	master, slave := openTestPTY(t)
	defer master.Close()
	dash := exec.Command(testenv.DockerCLI(t), "bottle", "dashboard", "--interval", "200ms")
	dash.Env = append(os.Environ(), "DOCKER_CONFIG="+cfg, "DOCKER_BOTTLE_CACHE="+filepath.Join(cfg, "cache"), "TERM=xterm-256color")
	dash.Stdin, dash.Stdout, dash.Stderr = slave, slave, slave
	dash.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := dash.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	done := make(chan error, 1)
	go func() { done <- dash.Wait() }()
	defer dash.Process.Kill()

	var mu sync.Mutex
	var raw bytes.Buffer
	readAll := make(chan struct{})
	go func() {
		defer close(readAll)
		buf := make([]byte, 32<<10)
		for {
			n, err := master.Read(buf)
			mu.Lock()
			raw.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	output := func() string {
		mu.Lock()
		defer mu.Unlock()
		return raw.String()
	}
	// The screen as text, from where the dashboard last drew it whole.
	screen := func() string { return ansi.ReplaceAllString(cursorForward.ReplaceAllString(output(), " "), "") }
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for start := time.Now(); !ok(); time.Sleep(100 * time.Millisecond) {
			select {
			case err := <-done:
				t.Fatalf("the dashboard ended (%v) before %s; output:\n%q", err, what, output())
			default:
			}
			if time.Since(start) > time.Minute {
				t.Fatalf("never saw %s; screen:\n%s", what, screen())
			}
		}
	}
	waitFor("the bottle", func() bool {
		return strings.Contains(screen(), p.Slug) && strings.Contains(screen(), "HELD REQUESTS (0)")
	})
	shown := len(output())

	got := make(chan string, 1)
	go func() { got <- proxyGet(t, p, "http://api.dash.test/") }()
	waitFor("the held request", func() bool {
		s := screen()
		return strings.Contains(s, "HELD REQUESTS (1)") && strings.Contains(s, "api.dash.test") && strings.Contains(s, "1 waiting for you")
	})
	held := len(screen())
	select {
	case r := <-got:
		t.Fatalf("the request went through before anyone decided: %s", r)
	default:
	}
	// The terminal's title counts the waiting bottles, and the bell rang
	// (a BEL outside the title's own sequence).
	waitFor("the title", func() bool { return strings.Contains(output(), "(1 waiting) docker bottle dashboard") })
	osc := regexp.MustCompile(`\x1b\][^\x07\x1b]*(\x07|\x1b\\)`)
	if !strings.Contains(osc.ReplaceAllString(output()[shown:], ""), "\a") {
		t.Error("the bell did not ring when the bottle started waiting")
	}

	// The only bottle is selected: a allows its oldest request once.
	if _, err := master.WriteString("a"); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-got:
		if !strings.HasPrefix(r, "200") || !strings.Contains(r, "hello from api.dash.test") {
			t.Fatalf("after the key press: %s", r)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the request was not let through after the key press; screen:\n%s", screen())
	}
	waitFor("the outcome", func() bool {
		s := screen()[held:]
		return strings.Contains(s, "Allowed once.") && strings.Contains(s, "HELD REQUESTS (0)")
	})

	if _, err := master.WriteString("q"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) || err != nil {
			t.Fatalf("q: %v; output:\n%q", err, output())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("q did not end the dashboard; screen:\n%s", screen())
	}
	// The terminal is given back: the main screen again and the cursor
	// shown, after the last frame.
	select {
	case <-readAll:
	case <-time.After(10 * time.Second):
		t.Fatal("the terminal's output did not end with the dashboard")
	}
	out := output()
	last := strings.LastIndex(out, "\x1b[?1049l")
	if last < 0 || last < strings.LastIndex(out, "\x1b[?1049h") || !strings.Contains(out[last:]+out[max(0, last-64):last], "\x1b[?25h") {
		t.Errorf("the terminal was not given back as it was; the output ends:\n%q", out[max(0, len(out)-300):])
	}
}
