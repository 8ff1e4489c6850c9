package gitstage

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckWorkTree(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	plain := filepath.Join(f.dir, "plain")
	empty := filepath.Join(f.dir, "empty")
	if err := os.MkdirAll(plain, 0o755); err != nil {
		t.Fatal(err)
	}
	f.git(f.dir, "init", "-q", empty)
	for dir, want := range map[string]string{plain: "is not a git repository", empty: "has no commit yet"} {
		if err := CheckWorkTree(ctx, dir); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckWorkTree(%s) = %v, want %q", filepath.Base(dir), err, want)
		}
	}
	if err := CheckWorkTree(ctx, f.userRepo()); err != nil {
		t.Errorf("a work tree with commits: %v", err)
	}
	t.Setenv("PATH", plain)
	if err := CheckWorkTree(ctx, plain); err == nil || !strings.Contains(err.Error(), "git is not installed") {
		t.Errorf("without git: %v", err)
	}
}

func TestUncommittedAndTopLevel(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	u := f.userRepo()
	if n := Uncommitted(ctx, u); n != 0 {
		t.Errorf("a clean work tree has %d changes", n)
	}
	sub := filepath.Join(u, "sub")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"f.txt", "new.txt", "sub/other.txt"} {
		if err := os.WriteFile(filepath.Join(u, name), []byte("changed"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if n := Uncommitted(ctx, u); n != 3 {
		t.Errorf("Uncommitted = %d, want 3 (one modified, two untracked)", n)
	}
	if _, err := os.Stat(filepath.Join(u, ".git", "index.lock")); err == nil {
		t.Errorf("status left the index locked")
	}
	if top, err := TopLevel(ctx, sub); err != nil || top != u {
		t.Errorf("TopLevel(sub) = %q, %v; want %q", top, err, u)
	}
	if _, err := TopLevel(ctx, f.dir); err == nil {
		t.Errorf("TopLevel outside a work tree succeeded")
	}
}

func TestInit(t *testing.T) {
	f := newFixture(t)
	dir := filepath.Join(f.dir, "made")
	if err := Init(context.Background(), dir, "Checker <check@bottle.invalid>", "first"); err != nil {
		t.Fatal(err)
	}
	if got := f.git(dir, "log", "-1", "--format=%an <%ae> %s %D"); got != "Checker <check@bottle.invalid> first HEAD -> main" {
		t.Errorf("the commit is %q", got)
	}
}

// TestFetchAndResolve: the user's repository gets the bottle's branch
// under TrackingRef, and nothing of what the fetch did is left to run.
func TestFetchAndResolve(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	u := f.userRepo()
	dest := filepath.Join(f.dir, "stage.git")
	if err := Prepare(ctx, u, dest); err != nil {
		t.Fatal(err)
	}
	branch := "bottle/b1/work"
	ref := TrackingRef("b1", branch)
	if ref != "refs/remotes/bottle-b1/work" {
		t.Fatalf("TrackingRef = %s", ref)
	}
	if err := AddRemote(ctx, u, RemoteName("b1"), dest, WithFetchRefspecs(BottleRefspec("b1"))); err != nil {
		t.Fatal(err)
	}
	if err := Fetch(ctx, u, RemoteName("b1")); err != nil {
		t.Fatal(err)
	}
	if _, err := Resolve(ctx, u, ref); err == nil {
		t.Fatalf("%s resolved before the agent pushed", ref)
	}
	want := f.git(dest, "rev-parse", "topic")
	f.git(dest, "update-ref", "refs/heads/"+branch, want)
	if err := Fetch(ctx, u, RemoteName("b1")); err != nil {
		t.Fatal(err)
	}
	if got, err := Resolve(ctx, u, ref); err != nil || got != want {
		t.Errorf("Resolve(%s) = %s, %v; want %s", ref, got, err, want)
	}
	if err := Fetch(ctx, u, "bottle-none"); err == nil {
		t.Errorf("fetching a missing remote succeeded")
	}
}

func TestDiffColorAndPager(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	u := f.userRepo()
	f.git(u, "config", "color.diff", "never")
	if DiffColor(ctx, u) {
		t.Errorf("color.diff=never colors")
	}
	f.git(u, "config", "color.diff", "always")
	if !DiffColor(ctx, u) {
		t.Errorf("color.diff=always does not color")
	}
	f.git(u, "config", "core.pager", "less -S")
	for _, v := range []string{"GIT_PAGER", "PAGER"} {
		t.Setenv(v, "") // restored after the test
		os.Unsetenv(v)
	}
	if got := Pager(ctx, u); got != "less -S" {
		t.Errorf("Pager = %q, want core.pager", got)
	}
	out, err := DiffCommand(ctx, u, "HEAD~1..HEAD", "--stat").Output()
	if err != nil || !strings.Contains(string(out), "f.txt") {
		t.Errorf("DiffCommand: %v\n%s", err, out)
	}
}
