package gitstage

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

type fixture struct {
	t    *testing.T
	dir  string
	home string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatalf("gitstage uses the host's git, which is not installed: %v", err)
	}
	dir := t.TempDir()
	f := &fixture{t: t, dir: dir, home: filepath.Join(dir, "home")}
	if err := os.MkdirAll(f.home, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := "[user]\n\tname = T\n\temail = t@example.com\n[init]\n\tdefaultBranch = main\n"
	if err := os.WriteFile(filepath.Join(f.home, ".gitconfig"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// gitstage runs git with the process environment: point it at the
	// fixture's HOME for the whole test.
	t.Setenv("HOME", f.home)
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	return f
}

func (f *fixture) git(dir string, args ...string) string {
	f.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		f.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func (f *fixture) userRepo() string {
	u := filepath.Join(f.dir, "user")
	if err := os.MkdirAll(u, 0o755); err != nil {
		f.t.Fatal(err)
	}
	f.git(u, "init", "-q")
	for i := 0; i < 5; i++ {
		if err := os.WriteFile(filepath.Join(u, "f.txt"), []byte(strings.Repeat("x", i+1)), 0o644); err != nil {
			f.t.Fatal(err)
		}
		f.git(u, "add", "-A")
		f.git(u, "commit", "-q", "-m", "c")
	}
	f.git(u, "tag", "-a", "v1", "-m", "v1", "HEAD~1")
	f.git(u, "branch", "topic", "HEAD~2")
	f.git(u, "gc", "-q")
	return u
}

func TestPrepare(t *testing.T) {
	f := newFixture(t)
	u := f.userRepo()
	f.git(u, "checkout", "-q", "topic")
	dest := filepath.Join(f.dir, "stage", "repo.git")
	if err := Prepare(context.Background(), u, dest); err != nil {
		t.Fatal(err)
	}
	want := f.git(u, "for-each-ref", "--format=%(objectname) %(refname)", "refs/heads", "refs/tags")
	if got := f.git(dest, "for-each-ref", "--format=%(objectname) %(refname)"); got != want {
		t.Errorf("stage refs:\n%s\nwant:\n%s", got, want)
	}
	if got := f.git(dest, "symbolic-ref", "HEAD"); got != "refs/heads/topic" {
		t.Errorf("stage HEAD = %s, want the checked-out branch refs/heads/topic", got)
	}
	if got := f.git(dest, "rev-parse", "--is-bare-repository"); got != "true" {
		t.Errorf("stage repository is not bare")
	}
	if out := f.git(dest, "remote"); out != "" {
		t.Errorf("stage repository has remotes: %q", out)
	}
	if got := f.git(dest, "config", "gc.auto"); got != "0" {
		t.Errorf("gc.auto = %q", got)
	}
	// Same file system: the packs are hard links, not copies.
	packs, _ := filepath.Glob(filepath.Join(dest, "objects", "pack", "*.pack"))
	if len(packs) == 0 {
		t.Fatal("no pack in the stage repository")
	}
	var st syscall.Stat_t
	if err := syscall.Stat(packs[0], &st); err != nil {
		t.Fatal(err)
	}
	if st.Nlink < 2 {
		t.Errorf("%s has %d links: the local clone copied instead of linking", packs[0], st.Nlink)
	}
	if _, err := os.Stat(filepath.Join(dest, "objects", "info", "alternates")); err == nil {
		t.Errorf("stage repository borrows objects through alternates")
	}
	f.git(dest, "fsck", "--strict")

	if err := Prepare(context.Background(), u, dest); err == nil {
		t.Errorf("Prepare over an existing stage repository succeeded")
	}
	if err := Prepare(context.Background(), filepath.Join(f.dir, "nothing"), filepath.Join(f.dir, "s2")); err == nil ||
		!strings.Contains(err.Error(), "not a git repository") {
		t.Errorf("Prepare from a non-repository: %v", err)
	}
}

func TestPrepareFromWorktree(t *testing.T) {
	f := newFixture(t)
	u := f.userRepo()
	wt := filepath.Join(f.dir, "wt")
	f.git(u, "worktree", "add", "-q", "-b", "wt-branch", wt, "HEAD~3")
	dest := filepath.Join(f.dir, "stage.git")
	if err := Prepare(context.Background(), wt, dest); err != nil {
		t.Fatal(err)
	}
	if got := f.git(dest, "symbolic-ref", "HEAD"); got != "refs/heads/wt-branch" {
		t.Errorf("HEAD = %s, want the worktree's branch", got)
	}
	if got, want := f.git(dest, "rev-parse", "main"), f.git(u, "rev-parse", "main"); got != want {
		t.Errorf("main = %s, want %s", got, want)
	}
}

func TestRemotes(t *testing.T) {
	f := newFixture(t)
	u := f.userRepo()
	ctx := context.Background()
	dest := filepath.Join(f.dir, "stage.git")
	if err := Prepare(ctx, u, dest); err != nil {
		t.Fatal(err)
	}
	f.git(dest, "update-ref", "refs/heads/bottle/b1/fix", f.git(dest, "rev-parse", "topic"))
	f.git(dest, "tag", "agent-tag", "main")
	name := RemoteName("b1")
	if name != "bottle-b1" {
		t.Fatalf("RemoteName = %s", name)
	}
	for i := 0; i < 2; i++ { // idempotent
		if err := AddRemote(ctx, u, name, dest, WithFetchRefspecs(BottleRefspec("b1"))); err != nil {
			t.Fatal(err)
		}
	}
	f.git(u, "fetch", "-q", name)
	if got, want := f.git(u, "rev-parse", name+"/fix"), f.git(dest, "rev-parse", "bottle/b1/fix"); got != want {
		t.Errorf("%s/fix = %s, want %s", name, got, want)
	}
	if out := f.git(u, "tag", "-l", "agent-tag"); out != "" {
		t.Errorf("the bottle's tag reached the user's repository")
	}
	if out := f.git(u, "branch", "-r"); strings.Contains(out, name+"/main") {
		t.Errorf("remote brought more than the bottle's branches:\n%s", out)
	}
	if err := RemoveRemote(ctx, u, name); err != nil {
		t.Fatal(err)
	}
	if out := f.git(u, "remote"); strings.Contains(out, name) {
		t.Errorf("remote still there: %s", out)
	}
	if err := RemoveRemote(ctx, u, name); err != nil {
		t.Errorf("removing a missing remote: %v", err)
	}
	if err := AddRemote(ctx, u, "bad name", dest); err == nil {
		t.Errorf("AddRemote accepted an invalid name")
	}
}
