package session

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/docker-bottle/docker-bottle/internal/testenv/testio"
	"github.com/docker-bottle/docker-bottle/provider/guest"
	"github.com/docker-bottle/docker-bottle/provider/guest/pty"
)

// sessionDir is a session directory short enough for a unix socket path.
func sessionDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "sess")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return filepath.Join(d, "s")
}

type runningSession struct {
	cancel context.CancelFunc
	done   chan struct{}
	code   int
	err    error
}

// runTestSession runs argv as a session in dir and waits until it listens.
func runTestSession(t *testing.T, dir, id string, argv ...string) *runningSession {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rs := &runningSession{cancel: cancel, done: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		defer close(rs.done)
		rs.code, rs.err = runSessionServer(ctx, serverOptions{Dir: dir, ID: id, Argv: argv, Ready: ready})
	}()
	select {
	case <-ready:
	case <-rs.done:
		t.Fatalf("session ended before it was ready: %d %v", rs.code, rs.err)
	case <-time.After(10 * time.Second):
		t.Fatal("session not ready after 10s")
	}
	t.Cleanup(func() {
		cancel()
		<-rs.done
	})
	return rs
}

func (rs *runningSession) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-rs.done:
	case <-time.After(15 * time.Second):
		t.Fatal("the session did not end")
	}
	if rs.err != nil {
		t.Fatalf("session: %v", rs.err)
	}
	return rs.code
}

type attachRun struct {
	done chan struct{}
	res  attachResult
	err  error
}

func startAttach(ctx context.Context, o attachOptions) *attachRun {
	a := &attachRun{done: make(chan struct{})}
	go func() {
		defer close(a.done)
		a.res, a.err = attach(ctx, o)
	}()
	return a
}

func (a *attachRun) wait(t *testing.T) attachResult {
	t.Helper()
	select {
	case <-a.done:
	case <-time.After(15 * time.Second):
		t.Fatal("attach did not return")
	}
	if a.err != nil {
		t.Fatalf("attach: %v", a.err)
	}
	return a.res
}

// TestSessionAttachFromATerminal attaches from a pseudo-terminal the test
// opens, as a user's terminal: keys reach the agent, the terminal is raw
// while attached and restored after, its size and a resize reach the
// agent's terminal, and attach ends with the agent's exit code when the
// agent exits while attached.
func TestSessionAttachFromATerminal(t *testing.T) {
	dir := sessionDir(t)
	rs := runTestSession(t, dir, "s1", "sh", "-c",
		`read a; echo "got:$a"; while read l; do [ "$l" = end ] && exit 3; stty size; done`)

	umaster, uslave, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer umaster.Close()
	defer uslave.Close()
	if err := pty.SetSize(umaster, 30, 100); err != nil {
		t.Fatal(err)
	}
	var screen testio.Buffer
	go io.Copy(&screen, umaster)
	resize := make(chan os.Signal, 1)
	a := startAttach(context.Background(), attachOptions{Dir: dir, ID: "s1", Wait: 5 * time.Second,
		In: uslave, Out: uslave, Err: io.Discard, Term: uslave, Resize: resize})

	// Raw mode: Enter arrives as \r, which the agent's terminal turns into
	// a newline, as from a real terminal.
	waitRaw(t, uslave, true)
	umaster.Write([]byte("hello\r"))
	screen.WaitFor(t, "got:hello", 10*time.Second)
	umaster.Write([]byte("\r"))
	screen.WaitFor(t, "30 100", 10*time.Second)

	if err := pty.SetSize(umaster, 40, 120); err != nil {
		t.Fatal(err)
	}
	resize <- unix.SIGWINCH
	for start := time.Now(); !strings.Contains(screen.String(), "40 120"); time.Sleep(50 * time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("the resize did not reach the agent:\n%q", screen.String())
		}
		umaster.Write([]byte("\r"))
	}

	umaster.Write([]byte("end\r"))
	if res := a.wait(t); res.Code != 3 || res.Detached {
		t.Errorf("attach: %+v, want exit code 3", res)
	}
	waitRaw(t, uslave, false)
	if code := rs.wait(t); code != 3 {
		t.Errorf("session exit code %d", code)
	}
	rec, ok, err := sessionFiles{dir}.readRecord()
	if err != nil || !ok || rec.ExitCode != 3 || rec.ID != "s1" {
		t.Errorf("record %+v %v %v", rec, ok, err)
	}
	log, _ := os.ReadFile(sessionFiles{dir}.log())
	if !strings.Contains(string(log), "got:hello") || !strings.Contains(string(log), "40 120") {
		t.Errorf("log:\n%q", log)
	}
	st, _ := os.Stat(sessionFiles{dir}.log())
	if st.Mode().Perm() != 0o600 {
		t.Errorf("log mode %v", st.Mode())
	}
	if _, err := os.Stat(sessionFiles{dir}.socket()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left after the session: %v", err)
	}
}

// waitRaw waits until the terminal's echo is off (raw) or on (restored).
func waitRaw(t *testing.T, f *os.File, raw bool) {
	t.Helper()
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(10 * time.Millisecond) {
		var lflag uint32
		if rc, err := f.SyscallConn(); err == nil {
			_ = rc.Control(func(fd uintptr) {
				if tio, err := unix.IoctlGetTermios(int(fd), unix.TCGETS); err == nil {
					lflag = tio.Lflag
				}
			})
		}
		if (lflag&unix.ICANON == 0) == raw {
			return
		}
	}
	t.Fatalf("terminal raw=%v not reached", raw)
}

// TestSessionDetachAndAttachAgain detaches with Ctrl-P Ctrl-Q (the agent
// keeps running), attaches again (the latest output is replayed), and ends
// the agent while attached; a late attach gets the recorded exit code.
func TestSessionDetachAndAttachAgain(t *testing.T) {
	dir := sessionDir(t)
	rs := runTestSession(t, dir, "s2", "sh", "-c",
		`stty -echo; while read l; do echo "echo:$l"; [ "$l" = end ] && exit 5; done`)

	inR, inW := io.Pipe()
	var out testio.Buffer
	a := startAttach(context.Background(), attachOptions{Dir: dir, In: inR, Out: &out, Err: io.Discard})
	inW.Write([]byte("one\n"))
	out.WaitFor(t, "echo:one", 10*time.Second)
	// A Ctrl-P alone is the agent's; Ctrl-P Ctrl-Q, even split, detaches.
	inW.Write([]byte("a\x10b\n"))
	out.WaitFor(t, "echo:a\x10b", 10*time.Second)
	inW.Write([]byte("\x10"))
	inW.Write([]byte("\x11"))
	if res := a.wait(t); !res.Detached {
		t.Fatalf("Ctrl-P Ctrl-Q did not detach: %+v", res)
	}
	st, err := sessionStatus(dir)
	if err != nil || !st.Running || st.ID != "s2" {
		t.Fatalf("after detaching: %+v %v", st, err)
	}

	inR2, inW2 := io.Pipe()
	var out2 testio.Buffer
	a2 := startAttach(context.Background(), attachOptions{Dir: dir, In: inR2, Out: &out2, Err: io.Discard})
	out2.WaitFor(t, "echo:one", 10*time.Second) // replayed
	inW2.Write([]byte("two\n"))
	out2.WaitFor(t, "echo:two", 10*time.Second)
	inW2.Write([]byte("end\n"))
	if res := a2.wait(t); res.Code != 5 || res.Detached {
		t.Errorf("second attach: %+v, want exit code 5", res)
	}
	if code := rs.wait(t); code != 5 {
		t.Errorf("session exit code %d", code)
	}

	var msg testio.Buffer
	res, err := attach(context.Background(), attachOptions{Dir: dir, In: strings.NewReader(""), Out: io.Discard, Err: &msg})
	if err != nil || res.Code != 5 || !strings.Contains(msg.String(), "ended with exit code 5") {
		t.Errorf("attach after the end: %+v %v %q", res, err, msg.String())
	}
	st, err = sessionStatus(dir)
	if err != nil || st.Running || st.ExitCode == nil || *st.ExitCode != 5 {
		t.Errorf("status after the end: %+v %v", st, err)
	}
}

// TestSessionLogs prints the log whole and by its last lines, and follows
// it until the agent ends.
func TestSessionLogs(t *testing.T) {
	dir := sessionDir(t)
	var none bytes.Buffer
	if err := sessionLogs(context.Background(), logsOptions{Dir: dir, Tail: -1, Out: &none}); err != nil || none.Len() != 0 {
		t.Errorf("logs before any session: %q %v", none.String(), err)
	}
	rs := runTestSession(t, dir, "s3", "sh", "-c",
		`stty -echo; for i in 1 2 3 4 5; do echo line$i; done; read x; echo line6; exit 0`)
	for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		b, _ := os.ReadFile(sessionFiles{dir}.log())
		if strings.Contains(string(b), "line5") {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("log: %q", b)
		}
	}
	logs := func(tail int) string {
		var b bytes.Buffer
		if err := sessionLogs(context.Background(), logsOptions{Dir: dir, Tail: tail, Out: &b}); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	if got := logs(2); got != "line4\r\nline5\r\n" {
		t.Errorf("--tail 2: %q", got)
	}
	if got := logs(0); got != "" {
		t.Errorf("--tail 0: %q", got)
	}
	if got := logs(-1); got != "line1\r\nline2\r\nline3\r\nline4\r\nline5\r\n" {
		t.Errorf("all: %q", got)
	}

	var followed testio.Buffer
	done := make(chan error, 1)
	go func() {
		done <- sessionLogs(context.Background(), logsOptions{Dir: dir, Follow: true, Tail: 1, Out: &followed, Poll: 20 * time.Millisecond})
	}()
	followed.WaitFor(t, "line5", 10*time.Second)
	select {
	case err := <-done:
		t.Fatalf("logs -f ended while the agent runs: %v", err)
	default:
	}
	inR, inW := io.Pipe()
	a := startAttach(context.Background(), attachOptions{Dir: dir, In: inR, Out: io.Discard, Err: io.Discard})
	inW.Write([]byte("go\n"))
	if res := a.wait(t); res.Code != 0 {
		t.Errorf("attach: %+v", res)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("logs -f did not end with the agent")
	}
	if got := followed.String(); got != "line5\r\nline6\r\n" {
		t.Errorf("logs -f --tail 1: %q", got)
	}
	rs.wait(t)

	// A second session appends to the same log.
	rs2 := runTestSession(t, dir, "s4", "sh", "-c", "echo again")
	rs2.wait(t)
	if got := logs(2); got != "line6\r\nagain\r\n" {
		t.Errorf("log after a second session: %q", got)
	}
}

// TestSessionStartAndWait: one session at a time; a socket left by a
// stopped machine does not block the next; wait knows a session by its
// id; an agent that cannot start is recorded as 127; a stopped session
// stops its agent.
func TestSessionStartAndWait(t *testing.T) {
	dir := sessionDir(t)
	rs := runTestSession(t, dir, "a", "sleep", "600")
	if _, err := runSessionServer(context.Background(), serverOptions{Dir: dir, ID: "b", Argv: []string{"true"}}); err == nil ||
		!strings.Contains(err.Error(), "already runs") {
		t.Errorf("a second session: %v", err)
	}
	if err := waitSession(context.Background(), dir, "a", time.Second); err != nil {
		t.Errorf("wait a: %v", err)
	}
	if err := waitSession(context.Background(), dir, "other", 200*time.Millisecond); err == nil || !strings.Contains(err.Error(), "another session (id a)") {
		t.Errorf("wait for another id: %v", err)
	}
	rs.cancel()
	if code := rs.wait(t); code != 128+15 {
		t.Errorf("stopped session: exit %d, want 143", code)
	}

	// A machine that stopped leaves its socket file behind.
	if err := os.WriteFile(sessionFiles{dir}.socket(), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if st, err := sessionStatus(dir); err != nil || st.Running {
		t.Errorf("status with a stale socket: %+v %v", st, err)
	}
	code, err := runSessionServer(context.Background(), serverOptions{Dir: dir, ID: "c", Argv: []string{"/nonexistent/agent"}})
	if err != nil || code != 127 {
		t.Errorf("missing agent: %d %v", code, err)
	}
	if err := waitSession(context.Background(), dir, "c", time.Second); err != nil {
		t.Errorf("wait for an ended session: %v", err)
	}
	log, _ := os.ReadFile(sessionFiles{dir}.log())
	if !strings.Contains(string(log), "could not start") {
		t.Errorf("log: %q", log)
	}
	var out bytes.Buffer
	res, err := attach(context.Background(), attachOptions{Dir: dir, ID: "c", Wait: time.Second, In: strings.NewReader(""), Out: &out, Err: io.Discard})
	if err != nil || res.Code != 127 || !strings.Contains(out.String(), "could not start") {
		t.Errorf("attach to an ended session by id: %+v %v %q", res, err, out.String())
	}
	if _, err := attach(context.Background(), attachOptions{Dir: dir, ID: "d", Wait: 100 * time.Millisecond, In: strings.NewReader(""), Out: io.Discard, Err: io.Discard}); err == nil {
		t.Error("attach to a session that never starts did not fail")
	}
}

// TestMainPassesTheAgentsExitCode: `session attach` ends with the agent's
// exit code, which main passes on as the helper's own.
func TestMainPassesTheAgentsExitCode(t *testing.T) {
	dir := sessionDir(t)
	code, err := runSessionServer(context.Background(), serverOptions{Dir: dir, ID: "x", Argv: []string{"sh", "-c", "exit 5"}})
	if err != nil || code != 5 {
		t.Fatalf("session: %d %v", code, err)
	}
	var exit guest.ExitCode
	if err := Main(context.Background(), []string{"attach", "--dir", dir}); !errors.As(err, &exit) || exit != 5 {
		t.Errorf("session attach: %v, want exit code 5", err)
	}
	if err := Main(context.Background(), []string{"nosuch"}); err == nil || errors.As(err, &exit) {
		t.Errorf("an unknown session command: %v", err)
	}
}

func TestDetachKeys(t *testing.T) {
	var d detachKeys
	cases := []struct {
		in     string
		out    string
		detach bool
	}{
		{"abc", "abc", false},
		{"a\x10", "a", false},
		{"b", "\x10b", false},
		{"\x10\x10", "\x10", false},
		{"\x11rest", "", true},
	}
	for _, c := range cases {
		out, detach := d.filter([]byte(c.in))
		if string(out) != c.out || detach != c.detach {
			t.Errorf("filter(%q) = %q %v, want %q %v", c.in, out, detach, c.out, c.detach)
		}
	}
}

func TestTailOffset(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		content string
		n       int
		want    string
	}{
		{"a\nb\nc\n", 1, "c\n"},
		{"a\nb\nc\n", 2, "b\nc\n"},
		{"a\nb\nc", 1, "c"},
		{"a\nb\nc\n", 5, "a\nb\nc\n"},
		{"", 3, ""},
		{strings.Repeat("x", 70000) + "\nlast\n", 1, "last\n"},
	} {
		p := filepath.Join(dir, "log")
		os.WriteFile(p, []byte(c.content), 0o600)
		f, _ := os.Open(p)
		off, err := tailOffset(f, c.n)
		f.Close()
		if err != nil || c.content[off:] != c.want {
			t.Errorf("tail %d of %.20q: %q %v", c.n, c.content, c.content[off:], err)
		}
	}
}

// TestSessionStartAgainRunsTheLastCommand: `session start` without a
// command runs the last session's command again, appending to the log; with
// none recorded it says so in the log.
func TestSessionStartAgainRunsTheLastCommand(t *testing.T) {
	dir := sessionDir(t)
	if _, err := startSession(context.Background(), dir, "x", nil); err == nil || !strings.Contains(err.Error(), "no command given") {
		t.Errorf("start again with no earlier session: %v", err)
	}
	if code, err := startSession(context.Background(), dir, "a", []string{"sh", "-c", "echo run; exit 4"}); err != nil || code != 4 {
		t.Fatalf("first: %d %v", code, err)
	}
	if code, err := startSession(context.Background(), dir, "b", nil); err != nil || code != 4 {
		t.Fatalf("again: %d %v", code, err)
	}
	log, _ := os.ReadFile(sessionFiles{dir}.log())
	if string(log) != "run\r\nrun\r\n" {
		t.Errorf("log %q", log)
	}
	if st, _ := sessionStatus(dir); st.ID != "b" || st.ExitCode == nil || *st.ExitCode != 4 {
		t.Errorf("status %+v", st)
	}
}

// TestSessionLogBound: a log past its bound becomes agent.log.1 when the
// next session starts; a log within it is appended to.
func TestSessionLogBound(t *testing.T) {
	dir := sessionDir(t)
	f := sessionFiles{dir}
	run := func(id, word string) {
		t.Helper()
		code, err := runSessionServer(context.Background(), serverOptions{Dir: dir, ID: id, Argv: []string{"echo", word}, MaxLog: 64})
		if err != nil || code != 0 {
			t.Fatalf("session %s: %d %v", id, code, err)
		}
	}
	run("a", "first")
	run("b", "second")
	if log, _ := os.ReadFile(f.log()); !strings.Contains(string(log), "first") || !strings.Contains(string(log), "second") {
		t.Fatalf("log within its bound: %q", log)
	}
	if err := os.WriteFile(f.log(), []byte(strings.Repeat("old output\n", 10)), 0o600); err != nil {
		t.Fatal(err)
	}
	run("c", "third")
	log, _ := os.ReadFile(f.log())
	old, _ := os.ReadFile(f.log() + ".1")
	if strings.Contains(string(log), "old output") || !strings.Contains(string(log), "third") || !strings.Contains(string(old), "old output") {
		t.Errorf("after rotation: log %q, agent.log.1 %q", log, old)
	}
}
