// Package plugin holds the `docker bottle` commands, one file per command.
// Each command binds its flags into an options struct and calls a run
// function; the logic lives in the packages below.
package plugin

import (
	"errors"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli-plugins/plugin"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"
)

// ErrInterrupted is returned when the user interrupts a command; main turns
// it into exit code 130.
var ErrInterrupted = errors.New("interrupted")

// NewRootCmd returns the `bottle` command with every subcommand attached.
func NewRootCmd(dockerCli command.Cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bottle",
		Short: "Run an AI coding agent in a bottle",
		Long: "Run an AI coding agent in a bottle: a smolvm microVM (or a hardened container)\n" +
			"whose only way out is a per-bottle bundle of egress proxy, git gate and supervisor.",
		SilenceUsage:  true,
		SilenceErrors: true,
		// An unknown subcommand is an error, as with docker's own commands.
		Args: cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			// RunPlugin sets this hook; it is nil when a command runs
			// outside the plugin framework (unit tests).
			if plugin.PersistentPreRunE != nil {
				return plugin.PersistentPreRunE(cmd, args)
			}
			return nil
		},
	}
	cmd.AddCommand(
		runCmd(dockerCli),
		checkCmd(dockerCli),
		lsCmd(dockerCli),
		stopCmd(dockerCli),
		startCmd(dockerCli),
		rmCmd(dockerCli),
		logsCmd(dockerCli),
		execCmd(dockerCli),
		attachCmd(dockerCli),
		diffCmd(dockerCli),
		buildCmd(dockerCli),
		pruneCmd(dockerCli),
		configCmd(dockerCli),
		doctorCmd(dockerCli),
		versionCmd(dockerCli),
		approvalsCmd(dockerCli),
		approveCmd(dockerCli),
		denyCmd(dockerCli),
		eventsCmd(dockerCli),
		auditCmd(dockerCli),
	)
	return cmd
}
