package plugin

import (
	"context"
	"errors"
	"fmt"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"
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
	svc, err := newService(dockerCli, nil)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range opts.names {
		if err := svc.Stop(ctx, name); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintln(dockerCli.Out(), name)
	}
	return errors.Join(errs...)
}
