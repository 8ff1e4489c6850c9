//go:build e2e

package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/charmbracelet/x/vt"

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
	_, p := upBottle(t, cfg, "supervise:\n  approvals: [egress]\n  timeout: 2m\n", testenv.GitRepo(t))
	internet := testenv.NewInternet(t, eng)
	internet.Host(t, "api.dash.test", "")
	internet.Connect(t, p.Bundle.Container)

	d := startDashboard(t, cfg, "NO_COLOR=")
	output, screen, waitFor := d.output, d.screen, d.waitFor
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
	d.press("a")
	select {
	case r := <-got:
		if !strings.HasPrefix(r, "200") || !strings.Contains(r, "hello from api.dash.test") {
			t.Fatalf("after the key press: %s", r)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the request was not let through after the key press; screen:\n%s", screen())
	}
	waitFor("the outcome", func() bool {
		s := screen()
		return strings.Contains(s, "Allowed once.") && strings.Contains(s, "HELD REQUESTS (0)")
	})

	// v shows what the agent pushed; nothing yet, which the dashboard
	// says once it is back.
	d.press("v")
	d.waitFor("why there are no changes to show", func() bool {
		// The line is cut at 80 columns; its start says it.
		return strings.Contains(d.screen(), "The changes of "+p.Slug+" cannot be shown: the agent of bottle "+p.Slug)
	})
	if !colour.MatchString(output()) {
		t.Error("no colours on a terminal that has them")
	}
	d.quit()
}

// dashboardOnPTY is `docker bottle dashboard` running on a terminal of
// 80x24: a pty whose output a terminal emulator draws, and which answers
// the program's queries as a terminal would.
type dashboardOnPTY struct {
	t      *testing.T
	master *os.File
	done   chan error
	// readAll is closed when the terminal's output ended.
	readAll chan struct{}
	mu      sync.Mutex
	raw     bytes.Buffer
	term    *vt.SafeEmulator
}

func startDashboard(t *testing.T, cfg string, env ...string) *dashboardOnPTY {
	t.Helper()
	return startDashboardOn(t, cfg, nil, env)
}

// startDashboardOn runs `docker ARGS bottle dashboard` (ARGS name the
// engine, as --context) with env.
func startDashboardOn(t *testing.T, cfg string, args, env []string) *dashboardOnPTY {
	t.Helper()
	master, slave := openTestPTY(t)
	t.Cleanup(func() { master.Close() })
	dash := exec.Command(testenv.DockerCLI(t), append(slices.Clone(args), "bottle", "dashboard", "--interval", "200ms")...)
	dash.Env = append(append(os.Environ(), "DOCKER_CONFIG="+cfg, "DOCKER_BOTTLE_CACHE="+filepath.Join(cfg, "cache"), "TERM=xterm-256color"), env...)
	dash.Stdin, dash.Stdout, dash.Stderr = slave, slave, slave
	dash.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := dash.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	d := &dashboardOnPTY{t: t, master: master, done: make(chan error, 1), readAll: make(chan struct{}), term: vt.NewSafeEmulator(80, 24)}
	go io.Copy(master, d.term)
	go func() { d.done <- dash.Wait() }()
	t.Cleanup(func() { dash.Process.Kill() })
	go func() {
		defer close(d.readAll)
		buf := make([]byte, 32<<10)
		for {
			n, err := master.Read(buf)
			d.mu.Lock()
			d.raw.Write(buf[:n])
			d.mu.Unlock()
			d.term.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	return d
}

// output is everything written to the terminal so far.
func (d *dashboardOnPTY) output() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.raw.String()
}

// screen is the text on the terminal's screen now.
func (d *dashboardOnPTY) screen() string {
	return ansi.ReplaceAllString(d.term.Render(), "")
}

// waitFor waits up to a minute until ok says yes.
func (d *dashboardOnPTY) waitFor(what string, ok func() bool) {
	d.t.Helper()
	for start := time.Now(); !ok(); time.Sleep(100 * time.Millisecond) {
		select {
		case err := <-d.done:
			d.t.Fatalf("the dashboard ended (%v) before %s; output:\n%q", err, what, d.output())
		default:
		}
		if time.Since(start) > time.Minute {
			d.t.Fatalf("never saw %s; screen:\n%s", what, d.screen())
		}
	}
}

func (d *dashboardOnPTY) press(keys string) {
	d.t.Helper()
	if _, err := d.master.WriteString(keys); err != nil {
		d.t.Fatal(err)
	}
}

// quit presses q: the dashboard exits 0 and gives the terminal back as it
// was, the main screen again and the cursor shown after the last frame.
func (d *dashboardOnPTY) quit() {
	d.t.Helper()
	d.press("q")
	select {
	case err := <-d.done:
		if err != nil {
			d.t.Fatalf("q: %v; output:\n%q", err, d.output())
		}
	case <-time.After(30 * time.Second):
		d.t.Fatalf("q did not end the dashboard; screen:\n%s", d.screen())
	}
	select {
	case <-d.readAll:
	case <-time.After(10 * time.Second):
		d.t.Fatal("the terminal's output did not end with the dashboard")
	}
	out := d.output()
	last := strings.LastIndex(out, altScreenOff)
	if end := out[max(0, strings.LastIndex(out, altScreenOn)):]; last < 0 || last < strings.LastIndex(out, altScreenOn) ||
		!strings.Contains(end, "\x1b[?25h") || !strings.Contains(end, "\x1b]2;\x07") {
		d.t.Errorf("the terminal was not given back as it was (main screen, cursor, title); the output ends:\n%q", out[max(0, len(out)-300):])
	}
}

// colour matches a colour of text or background in an SGR sequence.
var colour = regexp.MustCompile(`\x1b\[([0-9]+;)*(3[0-8]|4[0-8]|9[0-7]|10[0-7])(;[0-9]+)*m`)

// The sequences that enter and leave the terminal's alternate screen.
const (
	altScreenOn  = "\x1b[?1049h"
	altScreenOff = "\x1b[?1049l"
)

// TestDashboardAttachesAndShowsTheExitCode: t gives the terminal to a
// running agent (the dashboard leaves its screen), and when the attach
// ends with the agent the dashboard comes back and shows the bottle
// exited with the agent's code.
func TestDashboardAttachesAndShowsTheExitCode(t *testing.T) {
	eng := testenv.Engine(t)
	base := testenv.Debian(t, eng)
	cfg := testenv.DockerConfig(t)
	// The agent waits for the test's go and ends with 3.
	name := dockerBottle(t, cfg, "dx", map[string]string{"bottle.yaml": "agent:\n  provider: shell\n  image: " + base + "\n" +
		`  command: [sh, -c, 'until [ -e /tmp/go ]; do sleep 0.2; done; echo told; exit 3']` + "\n"})
	d := startDashboard(t, cfg, "NO_COLOR=1")
	d.waitFor("the running bottle", func() bool { return regexp.MustCompile(name + `\s+working`).MatchString(d.screen()) })
	d.press("t")
	d.waitFor("the attach", func() bool { return strings.Contains(d.output(), altScreenOff) })
	attached := len(d.output())
	time.Sleep(2 * time.Second)
	select {
	case err := <-d.done:
		t.Fatalf("the dashboard ended while attached: %v", err)
	default:
	}
	if out := d.output()[attached:]; strings.Contains(out, altScreenOn) {
		t.Fatalf("the dashboard came back while the agent runs: %q", out)
	}
	if r := docker(t, cfg, nil, "bottle", "exec", name, "touch", "/tmp/go"); r.code != 0 {
		t.Fatalf("exec: exit %d %s", r.code, r.stderr)
	}
	d.waitFor("the dashboard again", func() bool {
		return strings.Contains(d.output()[attached:], altScreenOn) && strings.Contains(d.screen(), "exited (3)")
	})
	if !strings.Contains(d.screen(), "Back from "+name) {
		t.Errorf("the dashboard does not say the attach ended; screen:\n%s", d.screen())
	}
	if c := colour.FindString(d.output()); c != "" {
		t.Errorf("a colour (%q) with NO_COLOR set", c)
	}
	d.quit()
}

// TestDashboardOnARemoteContext: `docker --context CTX bottle dashboard`
// shows a bottle on the remote engine with the request it holds; a key
// allows it, the request goes through to its upstream, and q quits.
func TestDashboardOnARemoteContext(t *testing.T) {
	remote := testenv.RemoteEngine(t)
	base := remoteBase(t, remote)
	ctx := remote.TLSContext
	name, bottle := remoteBottle(t, remote, ctx, "fdb", "agent:\n  provider: shell\n  image: "+base+"\n"+
		`  command: [sh, -c, 'while [ ! -e /tmp/go ]; do sleep 0.2; done; echo "one:$(curl -s -o /dev/null -w %{http_code} http://api.dash.test/)"; exec sleep 600']`+"\n"+
		"supervise:\n  approvals: [egress]\n  timeout: 2m\n")
	internet := testenv.NewInternet(t, remoteClient(t, remote))
	internet.Host(t, "api.dash.test", "")
	internet.Connect(t, "bottle-"+name+"-bundle")

	d := startDashboardOn(t, remote.Config, []string{"--context", ctx}, append(onPath(remote.Env(), remoteHelper(t)), "NO_COLOR="))
	d.waitFor("the bottle", func() bool {
		return strings.Contains(d.screen(), name) && strings.Contains(d.screen(), "HELD REQUESTS (0)")
	})
	if r := bottle("exec", name, "--", "touch", "/tmp/go"); r.code != 0 {
		t.Fatalf("exec: %d %s", r.code, r.stderr)
	}
	d.waitFor("the held request", func() bool {
		s := d.screen()
		return strings.Contains(s, "HELD REQUESTS (1)") && strings.Contains(s, "api.dash.test") && strings.Contains(s, "1 waiting for you")
	})
	d.press("a")
	d.waitFor("the outcome", func() bool {
		s := d.screen()
		return strings.Contains(s, "Allowed once.") && strings.Contains(s, "HELD REQUESTS (0)")
	})
	if logs := waitLogs(t, remote.Config, append(remote.Env(), "DOCKER_CONTEXT="+ctx), name, "one:"); !strings.Contains(logs, "one:200") {
		t.Errorf("the request allowed from the dashboard did not reach its upstream:\n%s", logs)
	}
	d.quit()
}
