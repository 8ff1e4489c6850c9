package gitstage

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// CheckWorkTree refuses a dir that is not a git work tree with a commit:
// the agent works on a clone of it and hands its work back as branches.
func CheckWorkTree(ctx context.Context, dir string, opts ...Option) error {
	o := collect(opts)
	if _, err := exec.LookPath("git"); err != nil {
		return errors.New("git is not installed: docker bottle needs it to hand the repository to the bottle")
	}
	if out, err := run(ctx, o, dir, "rev-parse", "--is-inside-work-tree"); err != nil || strings.TrimSpace(out) != "true" {
		return fmt.Errorf("%s is not a git repository: the agent works on a clone and hands its work back as branches, so run docker bottle in a git work tree (or `git init` one)", dir)
	}
	if out, err := run(ctx, o, dir, "rev-parse", "--verify", "-q", "HEAD"); err != nil || strings.TrimSpace(out) == "" {
		return fmt.Errorf("%s has no commit yet: commit something first, the bottle starts from HEAD", dir)
	}
	return nil
}

// Uncommitted counts the work tree's changes that a clone does not carry
// (modified, staged and untracked files, not ignored ones); 0 when git
// cannot tell.
func Uncommitted(ctx context.Context, dir string, opts ...Option) int {
	out, err := run(ctx, collect(opts), dir, "status", "--porcelain")
	if err != nil {
		return 0
	}
	return strings.Count(out, "\n")
}

// TopLevel returns the top of the git work tree dir is in.
func TopLevel(ctx context.Context, dir string, opts ...Option) (string, error) {
	out, err := run(ctx, collect(opts), dir, "rev-parse", "--show-toplevel")
	if err != nil {
		return "", err
	}
	if top := strings.TrimSpace(out); top != "" {
		return top, nil
	}
	return "", fmt.Errorf("%s is not in a git work tree", dir)
}

// Init makes dir a repository with one empty commit on main, by author
// ("Name <email>").
func Init(ctx context.Context, dir, author, message string, opts ...Option) error {
	o := collect(opts)
	name, email, _ := strings.Cut(strings.TrimSuffix(author, ">"), " <")
	if _, err := run(ctx, o, "", "init", "-q", "-b", "main", dir); err != nil {
		return err
	}
	_, err := run(ctx, o, dir, "-c", "user.name="+name, "-c", "user.email="+email, "commit", "-q", "--allow-empty", "-m", message)
	return err
}

// TrackingRef is where the remote AddRemote registers with BottleRefspec
// puts the bottle's branch (refs/heads/bottle/NAME/X in the stage
// repository) in the user's repository: refs/remotes/bottle-NAME/X.
func TrackingRef(bottle, branch string) string {
	return "refs/remotes/" + RemoteName(bottle) + "/" + strings.TrimPrefix(branch, "bottle/"+bottle+"/")
}

// Fetch fetches remoteName into userRepo. What it brings is the agent's:
// git checks the objects as fsck would. It starts no maintenance of the
// user's repository, which could hold git's locks while other bottles of
// the same repository fetch or change their remotes.
func Fetch(ctx context.Context, userRepo, remoteName string, opts ...Option) error {
	_, err := run(ctx, collect(opts), userRepo, "-c", "fetch.fsckObjects=true", "-c", "gc.auto=0", "-c", "maintenance.auto=false",
		"fetch", "--quiet", "--no-write-fetch-head", remoteName)
	return err
}

// Resolve returns the commit ref names in repo.
func Resolve(ctx context.Context, repo, ref string, opts ...Option) (string, error) {
	out, err := run(ctx, collect(opts), repo, "rev-parse", "--verify", "-q", ref+"^{commit}")
	if err != nil {
		return "", fmt.Errorf("%s has no commit %s", repo, ref)
	}
	return strings.TrimSpace(out), nil
}

// DiffCommand is `git diff ARGS...` in repo, not started: the caller
// connects its input and output. It runs no external diff program or
// textconv filter that the agent's .gitattributes could select, and
// quotes unusual path names.
func DiffCommand(ctx context.Context, repo string, args ...string) *exec.Cmd {
	// git pages only on a terminal; the caller runs the user's pager
	// itself (after its own filter) when it wants one.
	pre := []string{"--no-pager", "-c", "core.quotePath=true", "diff", "--no-ext-diff", "--no-textconv"}
	return command(ctx, collect(nil), repo, append(pre, args...)...)
}

// DiffColor reports whether the user wants a diff colored on a terminal.
func DiffColor(ctx context.Context, repo string, opts ...Option) bool {
	out, err := run(ctx, collect(opts), repo, "config", "--get-colorbool", "color.diff", "true")
	return err == nil && strings.TrimSpace(out) == "true"
}

// Pager is the pager command line git would run in repo ("" or "cat"
// for none).
func Pager(ctx context.Context, repo string, opts ...Option) string {
	out, err := run(ctx, collect(opts), repo, "var", "GIT_PAGER")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(out)
}
