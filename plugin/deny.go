package plugin

import (
	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-bottle/docker-bottle/bundle/approval"
)

func denyCmd(dockerCli command.Cli) *cobra.Command {
	var opts decideOptions
	cmd := &cobra.Command{
		Use:   "deny NAME ID",
		Short: "Refuse a held request of a bottle",
		Long:  "Refuse a held request of a bottle. ID is any unique prefix of an ID that `docker bottle approvals` lists.",
		Args:  cli.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.name, opts.id, opts.decision = args[0], args[1], approval.Deny
			return runDecide(cmd.Context(), dockerCli, opts)
		},
	}
	return cmd
}
