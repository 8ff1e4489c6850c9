package plugin

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/cli/cli/command"
	"golang.org/x/sys/unix"

	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/stage"
)

// diffBottle is a bottle as diff sees it: the user's workspace with the
// bottle's remote, and the gate's repository holding what the agent
// pushed.
type diffBottle struct {
	name, workspace, gate string
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	c := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.test"}, args...)...)
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func newDiffBottle(t *testing.T, name string) *diffBottle {
	t.Helper()
	dirs := useStateDir(t)
	ws := testenv.GitRepo(t)
	gate := filepath.Join(t.TempDir(), "gate.git")
	git(t, ws, "clone", "-q", "--bare", ws, gate)
	remote := "bottle-" + name
	git(t, ws, "remote", "add", remote, gate)
	git(t, ws, "config", "remote."+remote+".fetch", "+refs/heads/bottle/"+name+"/*:refs/remotes/"+remote+"/*")
	dir := dirs.Stage(name)
	if err := os.MkdirAll(dir.Path(), 0o700); err != nil {
		t.Fatal(err)
	}
	p := plan.Plan{Slug: name, StageDir: dir.Path(), Workspace: ws,
		GitGate: plan.GitGatePlan{Branch: "bottle/" + name + "/work", Remote: remote, Repo: gate}}
	if err := stage.Save(p); err != nil {
		t.Fatal(err)
	}
	return &diffBottle{name: name, workspace: ws, gate: gate}
}

// push makes a commit as the agent would and puts it on the bottle's
// branch in the gate.
func (b *diffBottle) push(t *testing.T, files map[string]string) {
	t.Helper()
	agent := filepath.Join(t.TempDir(), "agent")
	git(t, b.gate, "clone", "-q", b.gate, agent)
	for f, content := range files {
		if err := os.WriteFile(filepath.Join(agent, f), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git(t, agent, "add", ".")
	git(t, agent, "commit", "-qm", "agent work")
	git(t, agent, "push", "-q", "origin", "HEAD:refs/heads/bottle/"+b.name+"/work")
}

// TestDiffRunsNoDiffProgram: the agent's files are shown as git's own
// diff shows bytes, never handed to an external diff or a textconv filter
// (which the agent's .gitattributes, once merged, would choose).
func TestDiffRunsNoDiffProgram(t *testing.T) {
	b := newDiffBottle(t, "dx")
	marker := filepath.Join(t.TempDir(), "ran")
	script := filepath.Join(t.TempDir(), "driver.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$0 $*\" >> "+marker+"\ncat \"$1\" 2>/dev/null\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	git(t, b.workspace, "config", "diff.conv.textconv", script)
	git(t, b.workspace, "config", "diff.ext.command", script)
	if err := os.WriteFile(filepath.Join(b.workspace, ".gitattributes"), []byte("*.txt diff=conv\n*.md diff=ext\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b.push(t, map[string]string{"a.txt": "text\n", "b.md": "doc\n"})

	out, errOut, err := runCommand(context.Background(), t, "diff", b.name)
	if err != nil {
		t.Fatalf("diff: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, "+text") || !strings.Contains(out, "+doc") {
		t.Errorf("diff output:\n%s", out)
	}
	if ran, err := os.ReadFile(marker); err == nil {
		t.Errorf("diff ran a program the agent's .gitattributes chose: %s", ran)
	}
}

// TestDiffFetchChecksTheAgentsObjects: a malformed commit (which git fsck
// refuses) is not fetched into the user's repository.
func TestDiffFetchChecksTheAgentsObjects(t *testing.T) {
	b := newDiffBottle(t, "dy")
	tree := git(t, b.gate, "rev-parse", "HEAD^{tree}")
	bad := "tree " + tree + "\nauthor A <a@example.test> yesterday +0000\ncommitter A <a@example.test> 0 +0000\n\nbad date\n"
	c := exec.Command("git", "-C", b.gate, "hash-object", "-t", "commit", "--literally", "-w", "--stdin")
	c.Stdin = strings.NewReader(bad)
	id, err := c.Output()
	if err != nil {
		t.Fatal(err)
	}
	git(t, b.gate, "update-ref", "refs/heads/bottle/"+b.name+"/work", strings.TrimSpace(string(id)))

	_, _, err = runCommand(context.Background(), t, "diff", b.name)
	if err == nil || !strings.Contains(err.Error(), "fetching the branches") {
		t.Fatalf("diff of a malformed commit: %v", err)
	}
	if _, err := exec.Command("git", "-C", b.workspace, "cat-file", "-e", strings.TrimSpace(string(id))).CombinedOutput(); err == nil {
		t.Error("the malformed commit reached the user's repository")
	}
}

// TestDiffOnATerminalEscapesTheAgentsSequences: on a terminal, git's own
// colors pass, the escape sequences and format characters in the agent's
// files are shown escaped.
func TestDiffOnATerminalEscapesTheAgentsSequences(t *testing.T) {
	b := newDiffBottle(t, "dz")
	b.push(t, map[string]string{"a.txt": "copy \x1b]52;c;cGF5bG9hZA==\x07 and \u202eevil\n"})
	t.Setenv("GIT_PAGER", "cat")
	master, slave := pty(t)
	cli, err := command.NewDockerCli(command.WithOutputStream(slave), command.WithErrorStream(slave))
	if err != nil {
		t.Fatal(err)
	}
	root := NewRootCmd(cli)
	root.SetArgs([]string{"diff", b.name, "--", "--color=always"})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(context.Background()) }()
	var screen bytes.Buffer
	read := make(chan struct{})
	go func() {
		io.Copy(&screen, master)
		close(read)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("diff did not end")
	}
	slave.Close()
	<-read
	s := screen.String()
	if !strings.Contains(s, `\x1b]52;c;cGF5bG9hZA==\x07`) || !strings.Contains(s, `\u202eevil`) {
		t.Errorf("the agent's sequences are not shown escaped:\n%q", s)
	}
	if strings.Contains(s, "\x1b]52") || strings.Contains(s, "\u202e") {
		t.Errorf("the agent's sequences reached the terminal:\n%q", s)
	}
	if !strings.Contains(s, "\x1b[32m") {
		t.Errorf("git's colors were lost:\n%q", s)
	}
}

// pty opens a pseudo-terminal: the test reads the master, the command
// writes to the slave.
func pty(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return m, s
}

// TestPagerEnv: the pager gets git's defaults and what its caller sets,
// each only where the user has set nothing, without the process's own
// environment being changed.
func TestPagerEnv(t *testing.T) {
	got := pagerEnv([]string{"PATH=/bin", "LV=-x"}, map[string]string{"LESS": "RX"})
	want := []string{"PATH=/bin", "LV=-x", "LESS=RX"}
	if !slices.Equal(got, want) {
		t.Errorf("pagerEnv = %q, want %q", got, want)
	}
	got = pagerEnv([]string{"LESS=S"}, map[string]string{"LESS": "RX"})
	if want := []string{"LESS=S", "LV=-c"}; !slices.Equal(got, want) {
		t.Errorf("with the user's LESS: %q, want %q", got, want)
	}
	if got := pagerEnv(nil, nil); !slices.Equal(got, []string{"LESS=FRX", "LV=-c"}) {
		t.Errorf("git's defaults: %q", got)
	}
}
