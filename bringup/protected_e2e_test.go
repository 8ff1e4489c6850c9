//go:build e2e

package bringup

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/spec"
)

// agentClone is a clone of a running bundle's gate, as the agent has one,
// driven by the real git.
type agentClone struct {
	t   *testing.T
	dir string
}

func cloneGate(t *testing.T, p plan.Plan) agentClone {
	t.Helper()
	tok, err := os.ReadFile(p.AgentTokenFile)
	if err != nil {
		t.Fatal(err)
	}
	c := agentClone{t: t, dir: filepath.Join(t.TempDir(), "clone")}
	c.git("clone", "-q", "http://x:"+strings.TrimSpace(string(tok))+"@"+p.Endpoints.HostGitGate+"/repo.git", c.dir)
	return c
}

func (c agentClone) run(args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	if c.dir != "" {
		if _, err := os.Stat(c.dir); err == nil {
			cmd.Dir = c.dir
		}
	}
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=agent", "GIT_AUTHOR_EMAIL=agent@example.test",
		"GIT_COMMITTER_NAME=agent", "GIT_COMMITTER_EMAIL=agent@example.test")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (c agentClone) git(args ...string) string {
	c.t.Helper()
	out, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(out)
}

// commit writes name (a slash path) with content and commits it.
func (c agentClone) commit(name, content string) {
	c.t.Helper()
	full := filepath.Join(c.dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
		c.t.Fatal(err)
	}
	c.git("add", "-A")
	c.git("commit", "-q", "-m", "agent: "+name)
}

// pushRefused pushes HEAD to ref and wants the gate to refuse it with want
// in its message.
func (c agentClone) pushRefused(ref, want string) {
	c.t.Helper()
	out, err := c.run("push", "origin", "HEAD:"+ref)
	if err == nil {
		c.t.Errorf("push to %s was accepted, want it refused (%s):\n%s", ref, want, out)
		return
	}
	if !strings.Contains(out, want) {
		c.t.Errorf("push to %s refused without %q:\n%s", ref, want, out)
	}
}

// TestBundleProtectsPlantedFiles brings up a real bundle for a bottle whose
// bottle.yaml says nothing of protected paths, and pushes files the host or
// CI runs after a merge (review H2, attack 5) with the real git, some
// spelled as another file system would read them (M1): the spec's defaults
// reach the gate, and hold each one.
func TestBundleProtectsPlantedFiles(t *testing.T) {
	eng := testenv.Engine(t)
	repo := testenv.GitRepo(t)
	p := up(t, eng, prepareSpec(t, eng, uniqueName("bp"), spec.BackendSmolvm,
		"egress:\n  allow:\n    - host: example.test\n", repo))
	c := cloneGate(t, p)
	prefix := "refs/heads/bottle/" + p.Slug + "/"
	for i, f := range []string{"bottle.yaml", ".github/actions/build/action.yml", ".pre-commit-config.yaml",
		"lint-staged.config.js", ".claude/settings.json", ".vscode/tasks.json", ".gitmodules", ".husky/pre-commit",
		// Spellings a macOS or Windows checkout writes over .husky (M1).
		".huſky/pre-commit", ".hus\u200cky/pre-commit", "HUSKY~1/pre-commit", ".husky./pre-commit"} {
		c.git("reset", "-q", "--hard", "origin/main")
		c.commit(f, "# payload\n")
		c.pushRefused(fmt.Sprint(prefix, "plant-", i), "touches protected path "+f)
	}
	c.git("reset", "-q", "--hard", "origin/main")
	c.commit("src/fix.go", "package fix\n")
	c.git("push", "-q", "origin", "HEAD:"+prefix+"work")
}
