//go:build e2e

package main

import (
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/internal/testenv/testio"
)

// ptyRun is the docker CLI running on a pseudo-terminal of 80x24 that the
// test holds, as a user's terminal: what the CLI writes is kept, the test
// types keys to it.
type ptyRun struct {
	t      *testing.T
	args   []string
	master *os.File
	out    testio.Buffer
	done   chan error
	// drained is closed when every process that had the terminal is gone:
	// the output is whole.
	drained chan struct{}
}

// startOnPTY starts `docker ARGS` with DOCKER_CONFIG=cfg and env on a
// terminal of its own (its session's controlling terminal, so the
// terminal's keys and signals are its own).
func startOnPTY(t *testing.T, cfg string, env []string, args ...string) *ptyRun {
	t.Helper()
	master, slave := openTestPTY(t)
	t.Cleanup(func() { master.Close() })
	cmd := exec.Command(testenv.DockerCLI(t), args...)
	cmd.Env = append(append(os.Environ(), "DOCKER_CONFIG="+cfg), env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	r := &ptyRun{t: t, args: args, master: master, done: make(chan error, 1), drained: make(chan struct{})}
	go func() {
		defer close(r.drained)
		io.Copy(&r.out, master)
	}()
	go func() { r.done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	return r
}

// screen is everything the CLI wrote to the terminal so far.
func (r *ptyRun) screen() string { return r.out.String() }

// waitFor waits up to a minute until the terminal shows want.
func (r *ptyRun) waitFor(want string) {
	r.t.Helper()
	r.out.WaitFor(r.t, want, 60*time.Second)
}

// waitRaw waits up to a minute until the CLI put the terminal in raw mode,
// as docker does once it is attached to a container's terminal: from then
// on every key goes to the container as typed (Ctrl-P Ctrl-Q included;
// on a cooked terminal, Ctrl-Q would be the line discipline's).
func (r *ptyRun) waitRaw() {
	r.t.Helper()
	testio.Eventually(r.t, 60*time.Second, func() bool {
		// The master reads the terminal's settings, which are the slave's.
		tio, err := unix.IoctlGetTermios(int(r.master.Fd()), unix.TCGETS)
		return err == nil && tio.Lflag&(unix.ICANON|unix.ECHO) == 0
	}, func() string { return "the terminal is still not raw; it shows:\n" + r.screen() })
}

// press types keys on the terminal.
func (r *ptyRun) press(keys string) {
	r.t.Helper()
	if _, err := io.WriteString(r.master, keys); err != nil {
		r.t.Fatal(err)
	}
}

// exit waits up to a minute until the CLI ends, and returns its exit code
// once its terminal's output is whole.
func (r *ptyRun) exit() int {
	r.t.Helper()
	select {
	case err := <-r.done:
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			r.t.Fatal(err)
		}
		select {
		case <-r.drained:
		case <-time.After(10 * time.Second):
			r.t.Errorf("%v: the terminal stayed open after the CLI ended", r.args)
		}
		return code
	case <-time.After(60 * time.Second):
		r.t.Fatalf("%v did not end; the terminal shows:\n%q", r.args, r.screen())
	}
	return 0
}

// onTerminal runs the docker CLI on a pseudo-terminal the test holds,
// waits for seen on the screen, types keys, and returns the exit code and
// the screen.
func onTerminal(t *testing.T, cfg string, env []string, args []string, seen, keys string) (int, string) {
	t.Helper()
	r := startOnPTY(t, cfg, env, args...)
	r.waitFor(seen)
	r.press(keys)
	code := r.exit()
	return code, r.screen()
}

func openTestPTY(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	_ = unix.IoctlSetWinsize(int(m.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 80})
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return m, s
}

// attachEndsWithTheAgent attaches (`docker ARGS bottle attach NAME`) on a
// terminal to the running agent of bottle name, which prints tick until
// /tmp/go exists, then released, and exits 7; release makes /tmp/go. The
// attach shows the ticks and ends with the agent and its exit code.
func attachEndsWithTheAgent(t *testing.T, cfg string, env, args []string, name string, release func()) {
	t.Helper()
	a := startOnPTY(t, cfg, env, append(args, "bottle", "attach", name)...)
	a.waitFor("tick")
	release()
	if code := a.exit(); code != 7 || !strings.Contains(a.screen(), "released") {
		t.Errorf("attach: exit %d, want 7 after released; the terminal shows:\n%q", code, a.screen())
	}
}
