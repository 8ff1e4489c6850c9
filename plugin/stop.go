package plugin

import (
	"errors"
	"fmt"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"
)

func stopCmd(dockerCli command.Cli) *cobra.Command {
	return &cobra.Command{
		Use:               "stop BOTTLE [BOTTLE...]",
		Short:             "Stop the agent and the bundle of bottles",
		Args:              cli.RequiresMinArgs(1),
		ValidArgsFunction: completeBottles(dockerCli),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := newService(dockerCli, nil)
			if err != nil {
				return err
			}
			var errs []error
			for _, name := range args {
				if err := svc.Stop(cmd.Context(), name); err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintln(dockerCli.Out(), name)
			}
			return errors.Join(errs...)
		},
	}
}

func startCmd(dockerCli command.Cli) *cobra.Command {
	return &cobra.Command{
		Use:               "start BOTTLE [BOTTLE...]",
		Short:             "Start stopped bottles again, in the background",
		Args:              cli.RequiresMinArgs(1),
		ValidArgsFunction: completeBottles(dockerCli),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := newService(dockerCli, nil)
			if err != nil {
				return err
			}
			var errs []error
			for _, name := range args {
				if _, err := svc.Start(cmd.Context(), name); err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintln(dockerCli.Out(), name)
			}
			return errors.Join(errs...)
		},
	}
}
