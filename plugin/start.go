package plugin

import (
	"context"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-bottle/docker-bottle/bottles"
)

type startOptions struct {
	names []string
}

func startCmd(dockerCli command.Cli) *cobra.Command {
	var opts startOptions
	return &cobra.Command{
		Use:               "start BOTTLE [BOTTLE...]",
		Short:             "Start stopped bottles again, in the background",
		Args:              cli.RequiresMinArgs(1),
		ValidArgsFunction: completeBottles(dockerCli),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.names = args
			return runStart(cmd.Context(), dockerCli, opts)
		},
	}
}

func runStart(ctx context.Context, dockerCli command.Cli, opts startOptions) error {
	return forEachBottle(dockerCli, opts.names, func(svc *bottles.Service, name string) error {
		_, err := svc.Start(ctx, name)
		return err
	}, bottles.WithSteps(dockerCli.Err())) // what start had to change (a bundle made again on free ports)
}
