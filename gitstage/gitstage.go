// Package gitstage prepares, on the host, the bare repository a bottle's
// git gate serves, and the git remote through which the user fetches the
// agent's work. It uses the host's own git. The gate never writes into the
// user's repository: the user's git fetches from the stage repository like
// from any other remote.
package gitstage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// Option configures a command of this package.
type Option func(*options)

type options struct {
	fetch []string
	env   []string
}

// WithFetchRefspecs sets the fetch refspecs of the remote AddRemote
// registers; see BottleRefspec.
func WithFetchRefspecs(specs ...string) Option {
	return func(o *options) { o.fetch = append(o.fetch, specs...) }
}

// WithDockerEndpoint makes the git a command runs reach the docker engine
// of the context named dockerContext (or, for the "default" context, of
// host: a -H or DOCKER_HOST endpoint) in git-remote-bottle, which a
// bottle::NAME remote runs: the plugin's --context is its own flag, which
// a child does not inherit.
func WithDockerEndpoint(dockerContext, host string) Option {
	return func(o *options) {
		if dockerContext != "" && dockerContext != "default" {
			o.env = append(o.env, "DOCKER_CONTEXT="+dockerContext, "DOCKER_HOST=")
		} else if host != "" {
			o.env = append(o.env, "DOCKER_CONTEXT=", "DOCKER_HOST="+host)
		}
	}
}

func collect(opts []Option) options {
	var o options
	for _, f := range opts {
		f(&o)
	}
	return o
}

// RemoteName is the name of the remote registered in the user's repository
// for a bottle: "bottle-<name>".
func RemoteName(bottle string) string { return "bottle-" + bottle }

// BottleBranchPrefix is the namespace of a bottle's branches in the stage
// repository, matching the gate's default push rule.
func BottleBranchPrefix(bottle string) string { return "refs/heads/bottle/" + bottle + "/" }

// BottleRefspec fetches only the bottle's own branches into
// refs/remotes/bottle-<name>/: `git fetch bottle-x` then shows the agent's
// work as bottle-x/<branch> and nothing else.
func BottleRefspec(bottle string) string {
	return "+" + BottleBranchPrefix(bottle) + "*:refs/remotes/" + RemoteName(bottle) + "/*"
}

// Prepare makes dest a bare repository with every branch and tag of
// userRepo (a work tree, a linked worktree or a bare repository). It is a
// local clone: objects are hard-linked when dest is on the same file
// system, copied otherwise, and never borrowed through alternates (the
// bundle container sees only the stage dir). HEAD follows the branch
// userRepo has checked out.
func Prepare(ctx context.Context, userRepo, dest string, opts ...Option) error {
	o := collect(opts)
	src, err := commonDir(ctx, o, userRepo)
	if err != nil {
		return err
	}
	if ents, err := os.ReadDir(dest); err == nil && len(ents) > 0 {
		return fmt.Errorf("stage repository %s already exists and is not empty", dest)
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o700); err != nil {
		return fmt.Errorf("creating the stage repository: %w", err)
	}
	// --no-local would repack everything; a plain local clone links the
	// packs. Shallow sources make git fall back to a normal clone itself.
	if _, err := run(ctx, o, "", "clone", "--bare", "--quiet", "--", src, dest); err != nil {
		return fmt.Errorf("making the stage repository from %s: %w", userRepo, err)
	}
	// The user repository's origin is no business of the stage repository,
	// and nothing may repack or prune it under the gate.
	if _, err := run(ctx, o, dest, "remote", "remove", "origin"); err != nil {
		return err
	}
	for _, kv := range [][2]string{{"gc.auto", "0"}, {"maintenance.auto", "false"}} {
		if _, err := run(ctx, o, dest, "config", kv[0], kv[1]); err != nil {
			return err
		}
	}
	if _, err := os.Stat(filepath.Join(dest, "objects", "info", "alternates")); err == nil {
		// userRepo borrows objects from elsewhere: copy them in, since the
		// bundle could not follow the alternate path.
		if _, err := run(ctx, o, dest, "repack", "-a", "-d", "-q"); err != nil {
			return fmt.Errorf("copying borrowed objects into the stage repository: %w", err)
		}
		if err := os.Remove(filepath.Join(dest, "objects", "info", "alternates")); err != nil {
			return err
		}
	}
	if head, err := run(ctx, o, userRepo, "symbolic-ref", "-q", "HEAD"); err == nil {
		head = strings.TrimSpace(head)
		if _, err := run(ctx, o, dest, "rev-parse", "--verify", "-q", head); err == nil {
			if _, err := run(ctx, o, dest, "symbolic-ref", "HEAD", head); err != nil {
				return err
			}
		}
	}
	return nil
}

// Start reads where a bottle starts from the stage repository Prepare
// made: the branch HEAD names (the one the user had checked out) and its
// commit. The gate checks pushes against that commit.
func Start(ctx context.Context, stage string, opts ...Option) (ref, commit string, err error) {
	o := collect(opts)
	out, err := run(ctx, o, stage, "rev-parse", "--verify", "-q", "HEAD^{commit}")
	if err != nil {
		return "", "", fmt.Errorf("the stage repository %s has no commit at HEAD: %w", stage, err)
	}
	commit = strings.TrimSpace(out)
	if out, err := run(ctx, o, stage, "symbolic-ref", "-q", "HEAD"); err == nil {
		ref = strings.TrimSpace(out)
	}
	return ref, commit, nil
}

var remoteNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// RemoteHelper is the git remote helper that fetches from a bottle's gate
// through the engine API, for a bottle::NAME remote (cmd/git-remote-bottle,
// installed next to the plugin by `make install`).
const RemoteHelper = "git-remote-bottle"

// HelperURL is the URL of bottle's gate for RemoteHelper, which git runs
// for it: bottle::NAME.
func HelperURL(bottle string) string { return "bottle::" + bottle }

// FindRemoteHelper returns where git finds RemoteHelper: on PATH, or in
// git's exec-path, where git also looks for helpers. Its error says how to
// install it.
func FindRemoteHelper(ctx context.Context) (string, error) {
	if path, err := exec.LookPath(RemoteHelper); err == nil {
		return path, nil
	}
	if out, err := run(ctx, options{}, "", "--exec-path"); err == nil {
		path := filepath.Join(strings.TrimSpace(out), RemoteHelper)
		if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return path, nil
		}
	}
	return "", fmt.Errorf("git cannot find %s, which fetches a bottle's branches from an engine on another host "+
		"(the remote bottle::NAME): install it with `make install` (next to the plugin), or put the dir that holds it on PATH", RemoteHelper)
}

// AddRemote registers remoteName in userRepo, pointing at the stage
// repository (a path, or a HelperURL for a gate reached through the
// engine), so that `git fetch <remoteName>` brings the agent's branches.
// Tags are not fetched from it (--no-tags): the agent cannot put tags into
// the user's namespace. An existing remote of that name is repointed. Many
// bottles may register their remotes in one repository at once.
func AddRemote(ctx context.Context, userRepo, remoteName, gateRepoPath string, opts ...Option) error {
	o := collect(opts)
	if !remoteNameRE.MatchString(remoteName) || strings.HasSuffix(remoteName, ".lock") {
		return fmt.Errorf("invalid remote name %q", remoteName)
	}
	abs := gateRepoPath
	if !strings.HasPrefix(gateRepoPath, HelperURL("")) {
		var err error
		if abs, err = filepath.Abs(gateRepoPath); err != nil {
			return err
		}
	}
	fetch := o.fetch
	if len(fetch) == 0 {
		fetch = []string{"+refs/heads/*:refs/remotes/" + remoteName + "/*"}
	}
	unlock, err := lockRepo(ctx, o, userRepo)
	if err != nil {
		return err
	}
	defer unlock()
	// Each `git config` writes the whole setting or nothing, so a write
	// that waited for the user's git can simply be made again (`git
	// remote add` writes several settings and is not so).
	key := "remote." + remoteName + "."
	steps := [][]string{
		{"config", key + "url", abs},
		{"config", "--replace-all", key + "fetch", fetch[0]},
	}
	for _, f := range fetch[1:] {
		steps = append(steps, []string{"config", "--add", key + "fetch", f})
	}
	steps = append(steps, []string{"config", key + "tagOpt", "--no-tags"})
	for _, args := range steps {
		if err := write(ctx, o, userRepo, args...); err != nil {
			return fmt.Errorf("registering remote %s in %s: %w", remoteName, userRepo, err)
		}
	}
	return nil
}

// RemoveRemote removes remoteName (and its remote-tracking branches) from
// userRepo; a missing remote is not an error.
func RemoveRemote(ctx context.Context, userRepo, remoteName string, opts ...Option) error {
	o := collect(opts)
	// A repository that is gone, or has no such remote, has nothing to
	// remove; a concurrent RemoveRemote may have removed it meanwhile.
	exists := func() bool {
		_, err := run(ctx, o, userRepo, "config", "--get", "remote."+remoteName+".url")
		return err == nil
	}
	if !exists() {
		return nil
	}
	unlock, err := lockRepo(ctx, o, userRepo)
	if err != nil {
		return err
	}
	defer unlock()
	if !exists() {
		return nil
	}
	if err := write(ctx, o, userRepo, "remote", "remove", remoteName); err != nil {
		return fmt.Errorf("removing remote %s from %s: %w", remoteName, userRepo, err)
	}
	return nil
}

// commonDir returns the repository that holds userRepo's objects and refs
// (for a linked worktree, the main repository's git dir).
func commonDir(ctx context.Context, o options, userRepo string) (string, error) {
	out, err := run(ctx, o, userRepo, "rev-parse", "--path-format=absolute", "--git-common-dir")
	if err != nil {
		return "", fmt.Errorf("%s is not a git repository: %w", userRepo, err)
	}
	return strings.TrimSpace(out), nil
}

// command is git ARGS in dir (none for ""), as every git of this package
// runs: the user's prompts have no place here, and a read (status) never
// takes the index lock from the user's own git running at the same
// moment (GIT_OPTIONAL_LOCKS=0).
func command(ctx context.Context, o options, dir string, args ...string) *exec.Cmd {
	if dir != "" {
		args = append([]string{"-C", dir}, args...)
	}
	cmd := exec.CommandContext(ctx, "git", args...) //nolint:gosec // G702: git's argument vector, no shell; callers pass git's options and paths
	cmd.Env = append(append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=", "GIT_PROTOCOL=", "GIT_OPTIONAL_LOCKS=0"), o.env...)
	return cmd
}

func run(ctx context.Context, o options, dir string, args ...string) (string, error) {
	cmd := command(ctx, o, dir, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		msg := strings.TrimSpace(stderr.String())
		if errors.As(err, &ee) && msg != "" {
			return stdout.String(), fmt.Errorf("git %s: %s", strings.Join(cmd.Args[1:], " "), msg)
		}
		if errors.Is(err, exec.ErrNotFound) {
			return "", fmt.Errorf("git is not installed or not on PATH: %w", err)
		}
		return stdout.String(), fmt.Errorf("git %s: %w", strings.Join(cmd.Args[1:], " "), err)
	}
	return stdout.String(), nil
}
