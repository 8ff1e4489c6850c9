// Package protect is the one list of paths a bottle's pushes may not change
// without a human: what runs on the user's machine or in CI once the agent's
// branch is merged, checked out or opened. The spec fills it in as the
// default of git.protected_paths and the gate applies it when its
// configuration names none, so both sides read the same list. It lives under
// bundle/ because the bundle imports nothing of the plugin side, while the
// plugin side may import the bundle's packages; it imports nothing itself.
package protect

import (
	"fmt"
	"path"
	"strings"
)

// defaults are slash-separated globs relative to the repository root: "*"
// matches within one path component, "**" any number of components. The
// gate matches them case-insensitively and through the spellings that
// macOS and Windows checkouts fold together.
var defaults = []string{
	// docker bottle's own spec: the next `docker bottle run` in the
	// merged repository reads it (secrets, allow rules, push rules).
	"**/bottle.yaml",

	// CI: GitHub (workflows, composite actions, dependabot, CODEOWNERS),
	// GitLab, Gitea and Forgejo, CircleCI, Jenkins, Azure Pipelines,
	// Buildkite, Bitbucket, Travis, Drone, Woodpecker, AppVeyor.
	".github/**",
	".gitlab-ci.yml",
	".gitlab/**",
	".gitea/**",
	".forgejo/**",
	".circleci/**",
	"Jenkinsfile",
	"azure-pipelines.yml",
	"azure-pipelines.yaml",
	".azure-pipelines/**",
	".buildkite/**",
	"bitbucket-pipelines.yml",
	".travis.yml",
	".drone.yml",
	".woodpecker.yml",
	".woodpecker.yaml",
	".woodpecker/**",
	"appveyor.yml",
	".appveyor.yml",

	// Git hooks and the hook managers whose configuration names commands
	// that unchanged hooks run: husky, lefthook, pre-commit, lint-staged,
	// commitlint.
	".githooks/**",
	".husky/**",
	"lefthook.*",
	".lefthook.*",
	"lefthook-local.*",
	".lefthook-local.*",
	".lefthook/**",
	".lefthook-local/**",
	".pre-commit-config.yaml",
	".pre-commit-config.yml",
	"lint-staged.config.*",
	".lintstagedrc",
	".lintstagedrc.*",
	"commitlint.config.*",
	".commitlintrc",
	".commitlintrc.*",

	// Git's own configuration in the tree: submodule URLs, filters and
	// LFS endpoints that checkouts and fetches follow.
	".gitmodules",
	".gitattributes",
	".lfsconfig",

	// What shells, editors and dev containers run on their own.
	".envrc",
	".vscode/tasks.json",
	".vscode/settings.json",
	".vscode/mcp.json",
	"*.code-workspace",
	".devcontainer/**",
	".devcontainer.json",

	// Agent settings that run commands or servers on the host.
	".claude/settings*.json",
	".claude/hooks/**",
	".mcp.json",
	".cursor/mcp.json",
	".gemini/settings.json",
}

// Defaults returns the default protected paths, a fresh copy each time.
func Defaults() []string { return append([]string(nil), defaults...) }

// IsDefault reports whether pattern is one of the defaults, as written.
func IsDefault(pattern string) bool {
	for _, d := range defaults {
		if d == pattern {
			return true
		}
	}
	return false
}

// Check reports whether pattern is a valid protected-path glob: relative,
// slash-separated, without empty, "." or ".." components (which no
// repository path has, so such a pattern would protect nothing), and valid
// for path.Match in each component.
func Check(pattern string) error {
	if pattern == "" {
		return fmt.Errorf("a protected path must not be empty")
	}
	if strings.HasPrefix(pattern, "/") {
		return fmt.Errorf("protected path %q must be relative to the repository root (no leading /)", pattern)
	}
	if strings.HasSuffix(pattern, "/") {
		return fmt.Errorf("protected path %q ends with /: write %s** to protect a folder and everything in it", pattern, pattern)
	}
	for _, seg := range strings.Split(pattern, "/") {
		switch seg {
		case "", ".", "..":
			return fmt.Errorf("protected path %q has an empty, . or .. component: write it as a plain relative path such as .github/**", pattern)
		case "**":
			continue
		}
		if _, err := path.Match(seg, ""); err != nil {
			return fmt.Errorf("protected path %q is not a valid pattern: %w", pattern, err)
		}
	}
	return nil
}

// Literal turns a file path into a glob that matches just that path,
// escaping the characters globs treat specially.
func Literal(p string) string {
	var b strings.Builder
	for _, r := range p {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
