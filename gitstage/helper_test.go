package gitstage

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A bottle::NAME remote is registered as it is, not as a path, and runs
// git-remote-bottle for `git fetch`, reaching the engine the plugin was
// told (WithDockerEndpoint: the plugin's --context is its own flag).
func TestHelperRemoteRunsTheHelperWithTheEndpoint(t *testing.T) {
	f := newFixture(t)
	u := f.userRepo()
	ctx := context.Background()
	if err := AddRemote(ctx, u, RemoteName("b2"), HelperURL("b2"), WithFetchRefspecs(BottleRefspec("b2"))); err != nil {
		t.Fatal(err)
	}
	if got := f.git(u, "config", "--get", "remote.bottle-b2.url"); got != "bottle::b2" {
		t.Fatalf("remote url %q, want bottle::b2", got)
	}
	// A helper that records what git ran it with, and fails.
	bin := t.TempDir()
	seen := filepath.Join(t.TempDir(), "seen")
	script := "#!/bin/sh\necho \"$1 $2 context=$DOCKER_CONTEXT host=$DOCKER_HOST\" > " + seen + "\nexit 1\n"
	if err := os.WriteFile(filepath.Join(bin, RemoteHelper), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	for _, tc := range []struct{ context, host, want string }{
		{"big", "ssh://me@box", "context=big host="},
		{"default", "tcp://10.0.0.9:2376", "context= host=tcp://10.0.0.9:2376"},
	} {
		if err := Fetch(ctx, u, RemoteName("b2"), WithDockerEndpoint(tc.context, tc.host)); err == nil {
			t.Errorf("Fetch succeeded though the helper failed")
		}
		data, err := os.ReadFile(seen)
		if err != nil {
			t.Fatalf("git did not run %s: %v", RemoteHelper, err)
		}
		if got := strings.TrimSpace(string(data)); got != "bottle-b2 b2 "+tc.want {
			t.Errorf("the helper ran as %q, want %q", got, "bottle-b2 b2 "+tc.want)
		}
	}
}

// FindRemoteHelper finds the helper where git looks for it, on PATH or in
// git's exec-path, and says how to install it when it is in neither.
func TestFindRemoteHelper(t *testing.T) {
	ctx := context.Background()
	git, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	t.Setenv("PATH", filepath.Dir(git))
	if _, err := exec.LookPath(RemoteHelper); err == nil {
		t.Fatalf("%s is installed next to git: this test needs a PATH without it", RemoteHelper)
	}
	t.Setenv("GIT_EXEC_PATH", empty)
	if _, err := FindRemoteHelper(ctx); err == nil || !strings.Contains(err.Error(), "make install") {
		t.Errorf("FindRemoteHelper without the helper: %v, want the remedy", err)
	}
	execPath := t.TempDir()
	helper := filepath.Join(execPath, RemoteHelper)
	if err := os.WriteFile(helper, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GIT_EXEC_PATH", execPath)
	if got, err := FindRemoteHelper(ctx); err != nil || got != helper {
		t.Errorf("FindRemoteHelper with the helper in git's exec-path: %q, %v", got, err)
	}
	onPath := t.TempDir()
	if err := os.WriteFile(filepath.Join(onPath, RemoteHelper), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GIT_EXEC_PATH", empty)
	t.Setenv("PATH", onPath+string(os.PathListSeparator)+filepath.Dir(git))
	if got, err := FindRemoteHelper(ctx); err != nil || got != filepath.Join(onPath, RemoteHelper) {
		t.Errorf("FindRemoteHelper with the helper on PATH: %q, %v", got, err)
	}
}
