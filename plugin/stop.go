package plugin

import (
	"context"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-bottle/docker-bottle/bottles"
)

type stopOptions struct {
	names []string
}

func stopCmd(dockerCli command.Cli) *cobra.Command {
	var opts stopOptions
	return &cobra.Command{
		Use:               "stop BOTTLE [BOTTLE...]",
		Short:             "Stop the agent and the bundle of bottles",
		Args:              cli.RequiresMinArgs(1),
		ValidArgsFunction: completeBottles(dockerCli),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.names = args
			return runStop(cmd.Context(), dockerCli, opts)
		},
	}
}

func runStop(ctx context.Context, dockerCli command.Cli, opts stopOptions) error {
	return forEachBottle(dockerCli, opts.names, func(svc *bottles.Service, name string) error {
		return svc.Stop(ctx, name)
	})
}
