//go:build e2e

package bringup

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/bundle/gate/gatetest"
	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/spec"
)

// gitIn runs the real git in dir and returns its output.
func gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.test", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.test")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// maxMemory is the most memory the container's cgroup has recorded (cgroup
// v1 keeps it; 0 where the engine does not say).
func maxMemory(t *testing.T, eng *client.Client, id string) uint64 {
	res, err := eng.ContainerStats(context.Background(), id, client.ContainerStatsOptions{})
	if err != nil {
		t.Logf("container stats: %v", err)
		return 0
	}
	defer res.Body.Close()
	var st container.StatsResponse
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		t.Logf("container stats: %v", err)
		return 0
	}
	return st.MemoryStats.MaxUsage
}

// The review's H1 attacks, pushed at a real bundle in its container with its
// real memory limit: after each the bundle still answers its health check,
// and afterwards a clone and a normal push with the real git work.
func TestBundleSurvivesHostilePushes(t *testing.T) {
	eng := testenv.Engine(t)
	p := up(t, eng, prepare(t, eng, uniqueName("gh"), spec.BackendSmolvm))
	ctx := context.Background()
	res, err := eng.ContainerInspect(ctx, p.Bundle.Container, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	limit := res.Container.HostConfig.Memory
	if limit == 0 || limit > 512<<20 {
		t.Fatalf("the bundle's memory limit is %d: the test needs the real one (512 MiB)", limit)
	}
	if logs := Logs(ctx, eng, p.Bundle.Container, 50); !strings.Contains(logs, "memory limit 512 MiB") || !strings.Contains(logs, "GOMEMLIMIT 460 MiB") {
		t.Errorf("the bundle did not take its memory limit from its cgroup; its log:\n%s", logs)
	}

	tokb, err := os.ReadFile(p.AgentTokenFile)
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(string(tokb))
	base := "http://" + p.Endpoints.HostGitGate + "/repo.git"
	head := gitIn(t, p.GitGate.Repo, "rev-parse", "HEAD")
	own := "refs/heads/bottle/" + p.Slug + "/"
	hc := &http.Client{Timeout: 3 * time.Minute}
	for _, a := range []struct {
		name, ref string
		pack      []byte
	}{
		{"1 KB delta bomb to a forbidden ref", "refs/heads/main", gatetest.DeltaBomb(512 << 20)},
		{"1 KB delta bomb to the bottle's branch", own + "bomb", gatetest.DeltaBomb(512 << 20)},
		{"13 MB of 1.5M tiny entries to a forbidden ref", "refs/heads/main", gatetest.TinyEntries(1_500_000)},
		{"13 MB of 1.5M tiny entries to the bottle's branch", own + "tiny", gatetest.TinyEntries(1_500_000)},
		{"a chain of 400 deltas of 1 MiB", own + "chain", gatetest.DeepChain(400, 1<<20)},
		{"a comb of 400 deltas of 1 MiB", own + "comb", gatetest.DeltaComb(400, 1<<20)},
	} {
		body := gatetest.ReceivePackBody([]gatetest.Command{{Old: gatetest.ZeroID, New: head, Ref: a.ref}}, a.pack)
		status, report, err := gatetest.Push(hc, base, tok, body)
		t.Logf("%s (%d bytes): %d %v\n%s", a.name, len(body), status, err, report)
		hctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		herr := Health(hctx, p)
		cancel()
		if herr != nil {
			t.Fatalf("after %s the bundle is not healthy: %v\nits log:\n%s", a.name, herr, Logs(ctx, eng, p.Bundle.Container, 30))
		}
	}
	peak := maxMemory(t, eng, p.Bundle.Container)
	t.Logf("the bundle's memory peaked at %d MiB of its %d MiB", peak>>20, limit>>20)

	// Fetch and push with the real git through the same bundle.
	url := "http://x:" + tok + "@" + p.Endpoints.HostGitGate + "/repo.git"
	clone := filepath.Join(t.TempDir(), "clone")
	gitIn(t, filepath.Dir(clone), "clone", "-q", url, clone)
	if err := os.WriteFile(filepath.Join(clone, "work.txt"), []byte("after the attacks\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitIn(t, clone, "add", "work.txt")
	gitIn(t, clone, "commit", "-q", "-m", "normal work")
	want := gitIn(t, clone, "rev-parse", "HEAD")
	gitIn(t, clone, "push", "-q", "origin", "HEAD:"+own+"after")
	if got := gitIn(t, p.GitGate.Repo, "rev-parse", own+"after"); got != want {
		t.Errorf("the normal push made %s %s, want %s", own+"after", got, want)
	}
	gitIn(t, clone, "fetch", "-q", "origin")
	if err := Health(ctx, p); err != nil {
		t.Errorf("health at the end: %v", err)
	}
}

// The review's M4 proof through a real bundle: a push whose thin pack
// borrows, and whose tree names, a blob no ref reaches is refused, and the
// real git cannot fetch it back.
func TestBundleRefusesLaunderedObjects(t *testing.T) {
	eng := testenv.Engine(t)
	p := up(t, eng, prepare(t, eng, uniqueName("gl"), spec.BackendSmolvm))
	secret := "TOP SECRET the user deleted\n"
	cmd := exec.Command("git", "hash-object", "-w", "--stdin")
	cmd.Dir, cmd.Stdin = p.GitGate.Repo, strings.NewReader(secret)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	u := strings.TrimSpace(string(out))
	tokb, err := os.ReadFile(p.AgentTokenFile)
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(string(tokb))
	ref := "refs/heads/bottle/" + p.Slug + "/leak"
	commit, pack := gatetest.Leak(gitIn(t, p.GitGate.Repo, "rev-parse", "HEAD"), u, u, len(secret))
	body := gatetest.ReceivePackBody([]gatetest.Command{{Old: gatetest.ZeroID, New: commit, Ref: ref}}, pack)
	status, report, err := gatetest.Push(&http.Client{Timeout: time.Minute}, "http://"+p.Endpoints.HostGitGate+"/repo.git", tok, body)
	if err != nil || status != http.StatusOK || !strings.Contains(report, "ng "+ref) || !strings.Contains(report, "never given") {
		t.Errorf("push of the laundering pack: %d %v %q, want it refused as using an object never given", status, err, report)
	}
	dst := filepath.Join(t.TempDir(), "fetch")
	gitIn(t, filepath.Dir(dst), "init", "-q", dst)
	fetch := exec.Command("git", "fetch", "-q", "http://x:"+tok+"@"+p.Endpoints.HostGitGate+"/repo.git", ref)
	fetch.Dir = dst
	if out, err := fetch.CombinedOutput(); err == nil {
		show := exec.Command("git", "cat-file", "-p", "FETCH_HEAD:leak.txt")
		show.Dir = dst
		leaked, _ := show.Output()
		t.Errorf("the pushed branch could be fetched: leak.txt reads %q", leaked)
	} else if strings.Contains(string(out), "TOP SECRET") {
		t.Errorf("the secret reached the client: %s", out)
	}
}
