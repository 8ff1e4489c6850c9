package gitstage

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// remotes lists the remotes of repo's config; it fails the test when git
// cannot parse the config.
func (f *fixture) remotes(repo string) []string {
	f.t.Helper()
	out := f.git(repo, "remote")
	if out == "" {
		return nil
	}
	r := strings.Split(out, "\n")
	slices.Sort(r)
	return r
}

func wantRemotes(n int) []string {
	var want []string
	for i := range n {
		want = append(want, RemoteName(fmt.Sprintf("b%02d", i)))
	}
	slices.Sort(want)
	return want
}

// TestRemotesUnderManyGoroutines: many bottles registering and removing
// their remotes in one repository at once all succeed, and no remote is
// lost (git refuses a second writer of .git/config instead of waiting).
func TestRemotesUnderManyGoroutines(t *testing.T) {
	const n = 24
	f := newFixture(t)
	repo := f.userRepo()
	ctx := context.Background()
	each := func(op func(i int) error) {
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := op(i); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	each(func(i int) error {
		b := fmt.Sprintf("b%02d", i)
		return AddRemote(ctx, repo, RemoteName(b), filepath.Join(f.dir, b+".git"), WithFetchRefspecs(BottleRefspec(b)))
	})
	if got, want := f.remotes(repo), wantRemotes(n); !slices.Equal(got, want) {
		t.Fatalf("remotes after adding %d at once:\n got %v\nwant %v", n, got, want)
	}
	for i := range n {
		b := fmt.Sprintf("b%02d", i)
		if got := f.git(repo, "config", "--get-all", "remote."+RemoteName(b)+".fetch"); got != BottleRefspec(b) {
			t.Errorf("fetch refspec of %s: %q", b, got)
		}
	}
	each(func(i int) error { return RemoveRemote(ctx, repo, RemoteName(fmt.Sprintf("b%02d", i))) })
	if got := f.remotes(repo); len(got) != 0 {
		t.Fatalf("remotes left after removing all at once: %v", got)
	}
}

// TestRemotesUnderManyProcesses: the same across processes, as separate
// `docker bottle run` would do it (this test binary, run again as a
// helper that registers one remote).
func TestRemotesUnderManyProcesses(t *testing.T) {
	if b := os.Getenv("GITSTAGE_TEST_ADD_REMOTE"); b != "" {
		if err := AddRemote(context.Background(), os.Getenv("GITSTAGE_TEST_REPO"), RemoteName(b), os.Getenv("GITSTAGE_TEST_DEST")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	const n = 12
	f := newFixture(t)
	repo := f.userRepo()
	var cmds []*exec.Cmd
	var outs []*strings.Builder
	for i := range n {
		b := fmt.Sprintf("b%02d", i)
		cmd := exec.Command(os.Args[0], "-test.run=^TestRemotesUnderManyProcesses$")
		cmd.Env = append(os.Environ(), "GITSTAGE_TEST_ADD_REMOTE="+b, "GITSTAGE_TEST_REPO="+repo,
			"GITSTAGE_TEST_DEST="+filepath.Join(f.dir, b+".git"))
		out := &strings.Builder{}
		cmd.Stdout, cmd.Stderr = out, out
		cmds, outs = append(cmds, cmd), append(outs, out)
	}
	for _, c := range cmds {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Errorf("process %d: %v\n%s", i, err, outs[i])
		}
	}
	if got, want := f.remotes(repo), wantRemotes(n); !slices.Equal(got, want) {
		t.Fatalf("remotes after %d processes added one each:\n got %v\nwant %v", n, got, want)
	}
}

// TestAddRemoteWaitsForTheUsersGit: a config.lock that the user's own git
// holds for a moment (git config, git remote) delays registering the
// remote instead of failing it.
func TestAddRemoteWaitsForTheUsersGit(t *testing.T) {
	f := newFixture(t)
	repo := f.userRepo()
	lock := filepath.Join(repo, ".git", "config.lock")
	if err := os.WriteFile(lock, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	released := make(chan struct{})
	go func() {
		time.Sleep(300 * time.Millisecond)
		os.Remove(lock)
		close(released)
	}()
	if err := AddRemote(context.Background(), repo, "bottle-x", filepath.Join(f.dir, "x.git")); err != nil {
		t.Fatalf("a config lock held for 300ms failed the remote: %v", err)
	}
	<-released
	if got := f.remotes(repo); !slices.Equal(got, []string{"bottle-x"}) {
		t.Fatalf("remotes: %v", got)
	}
}

// TestLockTimesOut: a lock another holder never gives back ends in an
// error that says what to do, when the context ends.
func TestLockTimesOut(t *testing.T) {
	f := newFixture(t)
	repo := f.userRepo()
	ctx := context.Background()
	unlock, err := lockRepo(ctx, options{}, repo)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	tctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	err = AddRemote(tctx, repo, "bottle-y", filepath.Join(f.dir, "y.git"))
	if err == nil || !strings.Contains(err.Error(), "another docker bottle") {
		t.Fatalf("AddRemote under a held lock: %v", err)
	}
}

// TestStaleConfigLockSaysWhatToDo: a config.lock that no git lets go of
// (one left by a git that crashed) ends in an error that says so.
func TestStaleConfigLockSaysWhatToDo(t *testing.T) {
	f := newFixture(t)
	repo := f.userRepo()
	if err := os.WriteFile(filepath.Join(repo, ".git", "config.lock"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	defer func(d time.Duration) { lockWait = d }(lockWait)
	lockWait = 200 * time.Millisecond
	err := AddRemote(context.Background(), repo, "bottle-z", filepath.Join(f.dir, "z.git"))
	if err == nil || !strings.Contains(err.Error(), "remove the lock file git names") {
		t.Fatalf("AddRemote under a stale config.lock: %v", err)
	}
}
