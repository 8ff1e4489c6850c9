package gate_test

import (
	"fmt"
	"testing"
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
