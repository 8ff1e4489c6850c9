//go:build e2e

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/internal/testenv"
)

// TestRunPreflight runs `docker bottle run --preflight` through the real
// docker CLI on a terminal: it shows what the bottle will be allowed
// (hosts and ports, the secret by name and host but never its value, push
// refs, protected paths, approvals, backend and why) and asks; n and
// Ctrl-C leave nothing, y starts the bottle. Without a terminal it refuses
// unless --yes.
func TestRunPreflight(t *testing.T) {
	eng := testenv.Engine(t)
	cfg := testenv.DockerConfig(t)
	repo := agentRepo(t, testenv.Debian(t, eng))
	const secretValue = "preflight-secret-value-4711"
	spec, err := os.ReadFile(filepath.Join(repo, "bottle.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	spec = append(spec, []byte("egress:\n  allow:\n    - host: api.preflight.test\n      ports: [8443]\n"+
		"  secrets:\n    - host: api.preflight.test\n      header: X-Preflight-Key\n      from_env: PREFLIGHT_TEST_KEY\n"+
		"supervise:\n  approvals: [push]\n  timeout: 90s\n")...)
	if err := os.WriteFile(filepath.Join(repo, "bottle.yaml"), spec, 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"PREFLIGHT_TEST_KEY=" + secretValue}
	name := func(prefix string) string { return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()%1e6) }
	const question = "Start this bottle? [y/N]"

	// Without a terminal on stdin: refused, with what to do.
	n := name("pfs")
	r := docker(t, cfg, env, "bottle", "run", "--preflight", "--backend", "docker", "--name", n, repo)
	if r.code == 0 || !strings.Contains(r.stderr, "add --yes") {
		t.Errorf("--preflight without a terminal: exit %d, stderr %q", r.code, r.stderr)
	}
	testenv.NothingLeft(t, eng, bottleIn(cfg, env, n, repo))

	// n: nothing is made.
	n = name("pfn")
	code, out := onPTY(t, cfg, env, question, "n\r", "bottle", "run", "--preflight", "--backend", "docker", "--name", n, repo)
	if code != 1 || !strings.Contains(out, "Nothing was created") {
		t.Errorf("answering n: exit %d\n%s", code, out)
	}
	for _, want := range []string{
		`Bottle ` + n + ` on ` + regexp.QuoteMeta(repo),
		`runs +docker \(network mode [a-z]+\): .+`,
		`may connect to +api\.preflight\.test ports 8443`,
		`secrets +X-Preflight-Key to api\.preflight\.test, from \$PREFLIGHT_TEST_KEY`,
		`may push +refs/heads/bottle/` + n + `/\*`,
		`protected paths +\S+`,
		`approvals +push; denied after 1m30s`,
		`published ports +none`,
		`agent\.user_config: `,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("the preflight has no line matching %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, secretValue) {
		t.Errorf("the preflight shows the secret's value:\n%s", out)
	}
	testenv.NothingLeft(t, eng, bottleIn(cfg, env, n, repo))

	// Ctrl-C at the question: exit 130, nothing made.
	n = name("pfc")
	code, out = onPTY(t, cfg, env, question, "\x03", "bottle", "run", "--preflight", "--backend", "docker", "--name", n, repo)
	if code != 130 {
		t.Errorf("Ctrl-C at the question: exit %d, want 130\n%s", code, out)
	}
	testenv.NothingLeft(t, eng, bottleIn(cfg, env, n, repo))

	// y: the bottle runs.
	n = name("pfy")
	removedAtEnd(t, cfg, env, n, repo)
	code, out = onPTY(t, cfg, env, question, "y\r", "bottle", "run", "--preflight", "-d", "--backend", "docker", "--name", n, repo)
	if code != 0 {
		t.Fatalf("answering y: exit %d\n%s", code, out)
	}
	if got := lsOf(t, cfg, n); got.State != "running" {
		t.Errorf("after y the bottle is %q, want running", got.State)
	}
}

// TestDashboardStartsANewBottle: in `docker bottle dashboard` on a
// terminal, n asks for a repository, shows the bottle's preflight, and y
// starts it in the dashboard's own process, detached; the list then shows
// it working, with its CPU and memory.
func TestDashboardStartsANewBottle(t *testing.T) {
	eng := testenv.Engine(t)
	base := testenv.Debian(t, eng)
	cfg := testenv.DockerConfig(t)
	name := fmt.Sprintf("dnew-%d", time.Now().UnixNano()%1e6)
	repo := testenv.GitRepoWith(t, map[string]string{"bottle.yaml": "name: " + name + "\nagent:\n  provider: shell\n  image: " + base + "\n" +
		"  command: [sleep, '600']\n"})
	removedAtEnd(t, cfg, nil, name, repo)

	d := startDashboard(t, cfg, "NO_COLOR=")
	d.waitFor("the empty list", func() bool { return strings.Contains(d.screen(), "No bottles") })
	d.press("n")
	d.waitFor("the question for the repository", func() bool { return strings.Contains(d.screen(), "New bottle of the repository:") })
	d.press("\x15" + repo + "\r") // Ctrl-U clears the directory offered
	d.waitFor("the preflight", func() bool {
		s := d.screen()
		return strings.Contains(s, "NEW BOTTLE") && strings.Contains(s, "Bottle "+name+" on") && strings.Contains(s, "Start this bottle? [y/N]")
	})
	testenv.NothingLeft(t, eng, bottleIn(cfg, nil, name, repo))
	d.press("y")
	d.waitFor("the bottle started and listed", func() bool {
		s := d.screen()
		return strings.Contains(s, "Started bottle "+name+".") && regexp.MustCompile(name+` +working `).MatchString(s)
	})
	// Its CPU and memory (agent and bundle) come from the engine's stats,
	// read in the background: the CPU from the second sample on.
	d.waitFor("the bottle's CPU and memory", func() bool {
		return regexp.MustCompile(name + ` +working +0 +[0-9]+[smh] +[0-9]+\.[0-9]% +[0-9.]+[KMG] `).MatchString(d.screen())
	})
	d.quit()
}
