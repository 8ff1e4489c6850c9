package plugin

import (
	"context"
	"errors"
	"fmt"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"
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
	svc, err := newService(dockerCli, nil)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range opts.names {
		if _, err := svc.Start(ctx, name); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintln(dockerCli.Out(), name)
	}
	return errors.Join(errs...)
}
