//go:build e2e

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/docker-bottle/docker-bottle/display"
	"github.com/docker-bottle/docker-bottle/display/displaytest"
	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/probe/probeimage"
	"github.com/docker-bottle/docker-bottle/smolvm/smolvmtest"
)

// onPTY runs the docker CLI with a pseudo-terminal of 80 columns as its
// stdin, stdout and stderr, and returns its exit code and all it wrote.
// When waitFor is set, it types keys once the output shows waitFor.
func onPTY(t *testing.T, cfg string, env []string, waitFor, keys string, args ...string) (int, string) {
	t.Helper()
	master, slave := openTestPTY(t)
	defer master.Close()
	cmd := exec.Command(testenv.DockerCLI(t), args...)
	cmd.Env = append(append(os.Environ(), "DOCKER_CONFIG="+cfg, "DOCKER_BOTTLE_CACHE="+filepath.Join(cfg, "cache")), env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	var mu sync.Mutex
	var out bytes.Buffer
	read := make(chan struct{})
	go func() {
		defer close(read)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			mu.Lock()
			out.Write(buf[:n])
			mu.Unlock()
			if err != nil { // EIO once the command's side is closed
				return
			}
		}
	}()
	timer := time.AfterFunc(3*time.Minute, func() { cmd.Process.Kill() })
	defer timer.Stop()
	if waitFor != "" {
		for {
			mu.Lock()
			seen := strings.Contains(out.String(), waitFor)
			mu.Unlock()
			if seen {
				break
			}
			select {
			case <-read:
				cmd.Wait()
				t.Fatalf("%v ended before showing %q:\n%q", args, waitFor, out.String())
			case <-time.After(20 * time.Millisecond):
			}
		}
		if _, err := io.WriteString(master, keys); err != nil {
			t.Fatal(err)
		}
	}
	err := cmd.Wait()
	<-read
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	// The terminal is left as it was found: canonical mode with echo.
	tio, err := unix.IoctlGetTermios(int(master.Fd()), unix.TCGETS)
	if err != nil || tio.Lflag&(unix.ICANON|unix.ECHO) != unix.ICANON|unix.ECHO {
		t.Errorf("%v left the terminal in another mode (%v)", args, err)
	}
	return code, out.String()
}

// TestBuildProgressOnATerminal: `docker bottle build` on a terminal with
// `--progress tty` updates its lines in place and leaves the finished ones
// on screen, each within the terminal's width, followed by the result;
// `auto` on a terminal does the same; `--progress plain` prints the plain
// lines it always did, with no escape sequence, even on a terminal.
func TestBuildProgressOnATerminal(t *testing.T) {
	eng := testenv.Engine(t)
	tag, err := probeimage.Ensure(context.Background(), eng)
	if err != nil {
		t.Fatal(err)
	}
	fake, err := smolvmtest.BuildFake(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	repo := testenv.GitRepo(t)
	if err := os.WriteFile(filepath.Join(repo, "bottle.yaml"), []byte("agent:\n  provider: shell\n  image: "+tag+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"DOCKER_BOTTLE_SMOLVM=" + fake, "SMOLVM_FAKE_STATE=" + t.TempDir()}
	spinners := regexp.MustCompile("[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]")

	// A cold build on its own cache, with the live display.
	cfg := testenv.DockerConfig(t)
	code, out := onPTY(t, cfg, env, "", "", "bottle", "build", "--backend", "smolvm", "--progress", "tty", repo)
	if code != 0 {
		t.Fatalf("build --progress tty: exit %d\n%q", code, out)
	}
	if !regexp.MustCompile(`\r\x1b\[[0-9]+A\x1b\[2K`).MatchString(out) {
		t.Errorf("no line updated in place:\n%q", out)
	}
	for _, frame := range strings.Split(out, "\n") {
		if i := strings.LastIndex(frame, "\x1b[2K"); i >= 0 {
			if line := strings.TrimRight(frame[i+4:], "\r"); utf8.RuneCountInString(line) > 79 {
				t.Errorf("live line %q is wider than the terminal allows", line)
			}
		}
	}
	screen := displaytest.Replay(out, 80)
	if len(screen.Unhandled) > 0 {
		t.Errorf("escape sequences the display does not use: %q", screen.Unhandled)
	}
	lines := screen.Lines()
	text := strings.Join(lines, "\n")
	for _, want := range []string{
		`(?m)^image: building, packing and caching the agent's artifact$`,
		`(?m)^✔ \[export\] [0-9a-f]{12} +exported \(`,
		`(?m)^✔ \[layer\] [0-9a-f]{12} +bottle layer \(`,
		`(?m)^✔ \[push\] 127\.0\.0\.1:[0-9]+/bottle/agent +pushed `,
		`(?m)^Pulling image 127\.0\.0\.1:[0-9]+/bottle/agent@sha256:[0-9a-f]+`,
		`(?m)^✔ \[pack\] smolvm +artifact /`,
	} {
		if !regexp.MustCompile(want).MatchString(text) {
			t.Errorf("the final screen has no line matching %s:\n%s", want, text)
		}
	}
	// The artifact's path is printed whole and the terminal wraps it at
	// 80 columns, wherever its length (the temp dir's) puts the break.
	if len(lines) == 0 || !strings.HasSuffix(strings.Join(lines, ""), ".smolmachine") {
		t.Errorf("the screen does not end with the artifact:\n%s", text)
	}
	if spinners.MatchString(text) {
		t.Errorf("a spinner is left on the final screen:\n%s", text)
	}

	// auto on a terminal: the same display (here a cache hit).
	code, out = onPTY(t, cfg, env, "", "", "bottle", "build", "--backend", "smolvm", repo)
	lines = displaytest.Replay(out, 80).Lines()
	if code != 0 || !strings.Contains(out, "\x1b[2K") || !anyMatches(lines, `^✔ \[cache\] [0-9a-f]{12} +artifact in cache: `) {
		t.Errorf("build --progress auto on a terminal: exit %d\n%q", code, out)
	}

	// plain, cold on another cache, on the same kind of terminal.
	code, out = onPTY(t, testenv.DockerConfig(t), env, "", "", "bottle", "build", "--backend", "smolvm", "--progress", "plain", repo)
	if code != 0 || strings.Contains(out, "\x1b") {
		t.Fatalf("build --progress plain: exit %d\n%q", code, out)
	}
	plain := regexp.MustCompile(`^(\[(build|export|layer|push|pack|cache)\] .*|image: .*|Pulling image .*|/.*\.smolmachine)$`)
	var push, pack bool
	for _, l := range strings.Split(strings.TrimRight(out, "\r\n"), "\r\n") {
		if !plain.MatchString(l) {
			t.Errorf("not a plain progress line: %q", l)
		}
		push = push || regexp.MustCompile(`^\[push\] 127\.0\.0\.1:[0-9]+/bottle/agent: pushed `).MatchString(l)
		pack = pack || strings.HasPrefix(l, "[pack] smolvm: artifact /")
	}
	if !push || !pack {
		t.Errorf("plain output lacks the push or pack line:\n%s", out)
	}
}

func anyMatches(lines []string, pattern string) bool {
	re := regexp.MustCompile(pattern)
	for _, l := range lines {
		if re.MatchString(l) {
			return true
		}
	}
	return false
}

// TestBuildProgressOnATerminalEndsCleanly: when the pipeline fails, and
// when the user presses Ctrl-C during it, the live display draws its
// final frame (no spinner left) before the error, which is the last
// thing on screen, and the terminal keeps its mode.
func TestBuildProgressOnATerminalEndsCleanly(t *testing.T) {
	eng := testenv.Engine(t)
	tag, err := probeimage.Ensure(context.Background(), eng)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	fake, err := smolvmtest.BuildFake(dir)
	if err != nil {
		t.Fatal(err)
	}
	// smolvm as the fake, but its pack fails (PACK=fail) or hangs until
	// interrupted (PACK=hang).
	wrapper := filepath.Join(dir, "smolvm-wrapper")
	script := "#!/bin/sh\nif [ \"$1 $2\" = \"pack create\" ]; then\n" +
		"  echo 'Pulling image...' >&2\n" +
		"  if [ \"$PACK\" = hang ]; then exec sleep 120; fi\n" +
		"  echo 'Error: agent operation failed: no space left on device' >&2; exit 1\nfi\nexec " + fake + " \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	repo := testenv.GitRepo(t)
	if err := os.WriteFile(filepath.Join(repo, "bottle.yaml"), []byte("agent:\n  provider: shell\n  image: "+tag+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	spinners := regexp.MustCompile("[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]")
	for _, c := range []struct {
		pack, waitFor, keys string
		code                int
		last                string
	}{
		{"fail", "", "", 1, "no space left on device"},
		{"hang", "Pulling image...", "\x03", 130, ""},
	} {
		cfg := testenv.DockerConfig(t)
		env := []string{"DOCKER_BOTTLE_SMOLVM=" + wrapper, "SMOLVM_FAKE_STATE=" + t.TempDir(), "PACK=" + c.pack}
		code, out := onPTY(t, cfg, env, c.waitFor, c.keys, "bottle", "build", "--backend", "smolvm", "--progress", "tty", repo)
		lines := displaytest.Replay(out, 80).Lines()
		text := strings.Join(lines, "\n")
		if code != c.code {
			t.Errorf("pack %s: exit %d, want %d\n%s", c.pack, code, c.code, text)
		}
		if spinners.MatchString(text) {
			t.Errorf("pack %s: a spinner is left on screen:\n%s", c.pack, text)
		}
		if !anyMatches(lines, `^- \[pack\] smolvm +smolvm pack create`) || !anyMatches(lines, `^✔ \[push\] `) {
			t.Errorf("pack %s: the final frame is not on screen:\n%s", c.pack, text)
		}
		// After the final frame nothing is redrawn: the error comes last.
		pack := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "- [pack]") })
		if pack < 0 || pack == len(lines)-1 || !strings.Contains(strings.Join(lines[pack+1:], " "), c.last) {
			t.Errorf("pack %s: no error below the display:\n%s", c.pack, text)
		}
	}
}

// TestProgressJSONIsOnlyJSON: with `--progress json`, everything `run`
// writes to stderr is JSON, one event a line, the bottle's own steps
// included (a script reading it must not meet a line of prose).
func TestProgressJSONIsOnlyJSON(t *testing.T) {
	eng := testenv.Engine(t)
	base := testenv.Debian(t, eng)
	cfg := testenv.DockerConfig(t)
	repo := testenv.GitRepoWith(t, map[string]string{"bottle.yaml": "agent:\n  provider: shell\n  image: " + base + "\n  command: [sleep, '600']\n"})
	env := []string{"DOCKER_BOTTLE_SMOLVM="}
	name := "pj-" + strconv.Itoa(os.Getpid())
	removedAtEnd(t, cfg, env, name, repo)
	r := docker(t, cfg, env, "bottle", "run", "-d", "--backend", "docker", "--name", name, "--progress", "json", repo)
	if r.code != 0 {
		t.Fatalf("run -d: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	stages := map[display.Stage]int{}
	for _, line := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		var e display.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil || e.Stage == "" {
			t.Fatalf("stderr line is not a progress event: %q (%v)\nall of stderr:\n%s", line, err, r.stderr)
		}
		stages[e.Stage]++
	}
	if stages[display.StageBottle] == 0 {
		t.Errorf("no step of the bottle among the events: %v\n%s", stages, r.stderr)
	}
}
