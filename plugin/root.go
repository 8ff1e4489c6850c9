// Package plugin holds the `docker bottle` commands, one file per command.
// Each command binds its flags into an options struct and calls a run
// function; the logic lives in the packages below.
package plugin

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/docker/cli/cli"
	cliplugin "github.com/docker/cli/cli-plugins/plugin"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"
)

// ErrInterrupted is returned when the user interrupts a command (see
// adaptInterrupt); main turns it into exit code 130.
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
			if cliplugin.PersistentPreRunE != nil {
				return cliplugin.PersistentPreRunE(cmd, args)
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
		dashboardCmd(dockerCli),
		portCmd(dockerCli),
	)
	for _, c := range cmd.Commands() {
		adaptInterrupt(c)
	}
	return cmd
}

// adaptInterrupt is the one place where signals become cancellation, as
// compose's Adapt is: the command runs with a context that SIGINT or
// SIGTERM cancels, and a command so interrupted ends with ErrInterrupted,
// which main turns into exit code 130, as `docker events` exits on Ctrl-C.
// The docker CLI, when not on a terminal, passes its own Ctrl-C on by
// cancelling the plugin's context (through its socket): that is an
// interrupt too.
func adaptInterrupt(cmd *cobra.Command) {
	run := cmd.RunE
	if run == nil {
		return
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		cmd.SetContext(ctx)
		err := run(cmd, args)
		if ctx.Err() == nil || errors.Is(err, ErrInterrupted) {
			return err
		}
		if err == nil {
			return ErrInterrupted
		}
		// A status the command gives (an attached agent's exit code) is
		// kept, as `docker run` exits with the container's code.
		return fmt.Errorf("%w: %w", ErrInterrupted, err)
	}
}
