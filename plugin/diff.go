package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-bottle/docker-bottle/gitstage"
	"github.com/docker-bottle/docker-bottle/internal/dockercli"
	"github.com/docker-bottle/docker-bottle/plan"
)

type diffOptions struct {
	name    string
	base    string
	gitArgs []string // after --, for git diff
	// pagerEnv sets variables of the pager's environment the user has
	// not set, over those git sets.
	pagerEnv map[string]string
}

// diffCmd shows the agent's work as git shows it: the bottle's branch,
// fetched through the remote `run` registered, against where it left the
// user's branch. `docker diff` shows a container's changes; this shows a
// bottle's.
func diffCmd(dockerCli command.Cli) *cobra.Command {
	var opts diffOptions
	cmd := &cobra.Command{
		Use:   "diff [OPTIONS] BOTTLE [-- GIT-DIFF-OPTIONS]",
		Short: "Show the changes the agent pushed to its branch",
		Long: "Fetch the bottle's branches into your repository and show the agent's branch against BASE (default\n" +
			"HEAD) with `git diff BASE...BRANCH`: what the agent changed since the two parted. Options after --\n" +
			"go to git diff (for example -- --stat).",
		Args:              cli.RequiresMinArgs(1),
		ValidArgsFunction: completeBottles(dockerCli),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.name, opts.gitArgs = args[0], args[1:]
			if len(opts.gitArgs) > 0 && opts.gitArgs[0] == "--" {
				opts.gitArgs = opts.gitArgs[1:]
			}
			return runDiff(cmd.Context(), dockerCli, opts)
		},
	}
	cmd.Flags().StringVar(&opts.base, "base", "HEAD", "What to compare the agent's branch with")
	cmd.Flags().SetInterspersed(false)
	return cmd
}

func runDiff(ctx context.Context, dockerCli command.Cli, opts diffOptions) error {
	p, err := loadPlan(opts.name)
	if err != nil {
		return err
	}
	return showDiff(ctx, dockerCli, p, opts)
}

// showDiff fetches the bottle's branches and runs git diff. The branch and
// its objects are the agent's: the fetch checks them as git fsck would,
// the diff runs no external diff program or textconv filter that the
// agent's .gitattributes could select, and on a terminal what could take
// the terminal over is shown escaped before the user's pager shows it.
func showDiff(ctx context.Context, dockerCli command.Cli, p plan.Plan, opts diffOptions) error {
	g := p.GitGate
	// A bottle::NAME remote (an engine reached through its API) runs
	// git-remote-bottle, which must reach this command's engine.
	endpoint := gitstage.WithDockerEndpoint(dockerCli.CurrentContext(), dockerCli.DockerEndpoint().Host)
	if err := gitstage.Fetch(ctx, p.Workspace, g.Remote, endpoint); err != nil {
		return fmt.Errorf("fetching the branches of bottle %s from its remote %s in %s: %w", p.Slug, g.Remote, p.Workspace, err)
	}
	branch := gitstage.TrackingRef(p.Slug, g.Branch)
	if _, err := gitstage.Resolve(ctx, p.Workspace, branch); err != nil {
		return fmt.Errorf("the agent of bottle %s has pushed nothing to %s yet", p.Slug, g.Branch)
	}
	out := dockercli.OutFile(dockerCli.Out())
	terminal := dockerCli.Out().IsTerminal()
	var args []string
	if terminal && gitstage.DiffColor(ctx, p.Workspace) {
		// git writes to the filter, so it neither colors nor pages by
		// itself: it is told to color as it would on this terminal, and
		// the user's pager runs after the filter.
		args = append(args, "--color=always")
	}
	c := gitstage.DiffCommand(ctx, p.Workspace, append(append(args, opts.gitArgs...), opts.base+"..."+branch)...)
	c.Stdin, c.Stderr = dockercli.InFile(dockerCli.In()), dockercli.OutFile(dockerCli.Err())
	if !terminal {
		c.Stdout = out
		return gitStatus(c.Run())
	}
	pager, err := startPager(ctx, p.Workspace, out, pagerEnv(os.Environ(), opts.pagerEnv))
	if err != nil {
		return err
	}
	filter := newTerminalFilter(pager.in)
	c.Stdout = filter
	err = c.Run()
	// The filter's last bytes go to the pager; a pager the user left early
	// is told by git's exit status below, so its Close says nothing more.
	_ = filter.Close()
	if quitEarly(err) {
		// The user left the pager before the end, as with git's own.
		err = nil
	}
	return errors.Join(gitStatus(err), pager.wait())
}

// quitEarly reports whether git stopped because its reader went away.
func quitEarly(err error) bool {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGPIPE {
			return true
		}
	}
	return errors.Is(err, syscall.EPIPE)
}

func gitStatus(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return cli.StatusError{StatusCode: ee.ExitCode()}
	}
	return err
}

// pager is the user's pager (as git would choose it) reading what the
// diff writes; with none ("cat"), the diff goes straight to the terminal.
type pager struct {
	in   io.Writer
	wait func() error
}

// pagerEnv is the pager's environment: environ with, where it does not
// set them, the variables git sets for its pager, and over those set.
func pagerEnv(environ []string, set map[string]string) []string {
	env := slices.Clone(environ)
	have := map[string]bool{}
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		have[k] = true
	}
	defaults := map[string]string{"LESS": "FRX", "LV": "-c"}
	maps.Copy(defaults, set)
	for _, k := range slices.Sorted(maps.Keys(defaults)) {
		if !have[k] {
			env = append(env, k+"="+defaults[k])
		}
	}
	return env
}

// startPager starts the user's pager with the environment env.
func startPager(ctx context.Context, dir string, out io.Writer, env []string) (pager, error) {
	pc := gitstage.Pager(ctx, dir)
	if pc == "" || pc == "cat" {
		return pager{in: out, wait: func() error { return nil }}, nil
	}
	c := exec.CommandContext(ctx, "sh", "-c", pc)
	c.Dir = dir
	c.Stdout, c.Stderr = out, out
	c.Env = env
	in, err := c.StdinPipe()
	if err != nil {
		return pager{}, err
	}
	if err := c.Start(); err != nil {
		return pager{}, fmt.Errorf("starting the pager %q: %w", pc, err)
	}
	return pager{in: in, wait: func() error {
		in.Close()
		if err := c.Wait(); err != nil {
			return fmt.Errorf("the pager %q: %w", pc, err)
		}
		return nil
	}}, nil
}
