package plugin

import (
	"context"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-bottle/docker-bottle/backend"
)

type attachOptions struct {
	name string
}

func attachCmd(dockerCli command.Cli) *cobra.Command {
	var opts attachOptions
	return &cobra.Command{
		Use:   "attach BOTTLE",
		Short: "Attach your terminal to a bottle's running agent",
		Long: "Attach your terminal to a bottle's running agent. Detach with Ctrl-P Ctrl-Q: the agent keeps running.\n" +
			"The exit code is the agent's when it ends while attached.",
		Args:              cli.ExactArgs(1),
		ValidArgsFunction: completeBottles(dockerCli),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.name = args[0]
			return runAttach(cmd.Context(), dockerCli, opts)
		},
	}
}

func runAttach(ctx context.Context, dockerCli command.Cli, opts attachOptions) error {
	p, b, err := agentOf(dockerCli, opts.name)
	if err != nil {
		return err
	}
	tty := dockerCli.In().IsTerminal() && dockerCli.Out().IsTerminal()
	// Ctrl-C belongs to the agent (the terminal is raw, or the CLI passes
	// it on); the attach ends when the agent does or on Ctrl-P Ctrl-Q.
	ex, err := b.Attach(context.WithoutCancel(ctx), p, backend.AttachOptions{TTY: tty,
		Streams: backend.Streams{Stdin: dockerCli.In(), Stdout: dockerCli.Out(), Stderr: dockerCli.Err()}})
	return exitStatus(ex.Code, err)
}
