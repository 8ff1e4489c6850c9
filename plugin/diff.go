package plugin

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-bottle/docker-bottle/internal/dockercli"
)

type diffOptions struct {
	base string
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
			svc, err := newService(dockerCli, nil)
			if err != nil {
				return err
			}
			p, err := svc.Load(args[0])
			if err != nil {
				return err
			}
			gitArgs := args[1:]
			if len(gitArgs) > 0 && gitArgs[0] == "--" {
				gitArgs = gitArgs[1:]
			}
			g := p.GitGate
			if out, err := exec.CommandContext(cmd.Context(), "git", "-C", p.Workspace, "fetch", "--quiet", g.Remote).CombinedOutput(); err != nil {
				return fmt.Errorf("fetching the branches of bottle %s from its remote %s in %s: %v: %s",
					p.Slug, g.Remote, p.Workspace, err, strings.TrimSpace(string(out)))
			}
			// The remote maps refs/heads/bottle/NAME/X to refs/remotes/REMOTE/X.
			branch := "refs/remotes/" + g.Remote + "/" + strings.TrimPrefix(g.Branch, "bottle/"+p.Slug+"/")
			if err := exec.CommandContext(cmd.Context(), "git", "-C", p.Workspace, "rev-parse", "--verify", "--quiet", branch).Run(); err != nil {
				return fmt.Errorf("the agent of bottle %s has pushed nothing to %s yet", p.Slug, g.Branch)
			}
			c := exec.CommandContext(cmd.Context(), "git", append(append([]string{"-C", p.Workspace, "diff"}, gitArgs...), opts.base+"..."+branch)...)
			c.Stdin, c.Stdout, c.Stderr = dockercli.InFile(dockerCli.In()), dockercli.OutFile(dockerCli.Out()), dockercli.OutFile(dockerCli.Err())
			err = c.Run()
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return cli.StatusError{StatusCode: ee.ExitCode()}
			}
			return err
		},
	}
	cmd.Flags().StringVar(&opts.base, "base", "HEAD", "What to compare the agent's branch with")
	cmd.Flags().SetInterspersed(false)
	return cmd
}
