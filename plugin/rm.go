package plugin

import (
	"context"
	"errors"
	"fmt"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"
)

type rmOptions struct {
	names     []string
	force     bool
	keepStage bool
}

func rmCmd(dockerCli command.Cli) *cobra.Command {
	var opts rmOptions
	cmd := &cobra.Command{
		Use:               "rm [OPTIONS] BOTTLE [BOTTLE...]",
		Aliases:           []string{"remove"},
		Short:             "Remove bottles: machine or container, bundle, networks, volumes, git remote and stage dir",
		Args:              cli.RequiresMinArgs(1),
		ValidArgsFunction: completeBottles(dockerCli),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.names = args
			return runRm(cmd.Context(), dockerCli, opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.force, "force", "f", false, "Remove running bottles too")
	cmd.Flags().BoolVar(&opts.keepStage, "keep-stage", false, "Keep the stage dir (audit files, gate repository)")
	return cmd
}

func runRm(ctx context.Context, dockerCli command.Cli, o rmOptions) error {
	svc, err := newService(dockerCli, nil)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range o.names {
		p, err := svc.Load(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if st := svc.Status(ctx, p); st.Running() && !o.force {
			errs = append(errs, fmt.Errorf("bottle %s is running: stop it with `docker bottle stop %s` or remove it with -f", name, name))
			continue
		}
		if err := svc.Remove(ctx, name, o.keepStage); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintln(dockerCli.Out(), name)
	}
	return errors.Join(errs...)
}
