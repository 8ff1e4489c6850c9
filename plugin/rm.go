package plugin

import (
	"context"
	"fmt"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-bottle/docker-bottle/bottles"
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
	return forEachBottle(dockerCli, o.names, func(svc *bottles.Service, name string) error {
		p, err := svc.Load(name)
		if err != nil {
			return err
		}
		if st := svc.Status(ctx, p); st.Running() && !o.force {
			return fmt.Errorf("bottle %s is running: stop it with `docker bottle stop %s` or remove it with -f", name, name)
		}
		return svc.Remove(ctx, name, o.keepStage)
	})
}
