package plugin

import (
	"context"
	"errors"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-bottle/docker-bottle/backend"
)

type logsOptions struct {
	name       string
	follow     bool
	tail       string
	timestamps bool
	since      string
	until      string
}

func logsCmd(dockerCli command.Cli) *cobra.Command {
	var opts logsOptions
	cmd := &cobra.Command{
		Use:               "logs [OPTIONS] BOTTLE",
		Short:             "Show the agent's output",
		Args:              cli.ExactArgs(1),
		ValidArgsFunction: completeBottles(dockerCli),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.name = args[0]
			return runLogs(cmd.Context(), dockerCli, opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.follow, "follow", "f", false, "Follow the output")
	cmd.Flags().StringVarP(&opts.tail, "tail", "n", "all", "Number of lines to show from the end")
	cmd.Flags().BoolVarP(&opts.timestamps, "timestamps", "t", false, "Show timestamps (docker backend)")
	cmd.Flags().StringVar(&opts.since, "since", "", `Show logs since a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m"), as docker logs (docker backend)`)
	cmd.Flags().StringVar(&opts.until, "until", "", `Show logs before a timestamp or relative time, as docker logs (docker backend)`)
	return cmd
}

func runLogs(ctx context.Context, dockerCli command.Cli, opts logsOptions) error {
	p, b, err := agentOf(dockerCli, opts.name)
	if err != nil {
		return err
	}
	// The agent's output is the agent's: on a terminal, what could take
	// the terminal over is shown escaped (an attached session stays raw:
	// it is the agent's terminal).
	stdout, closeOut := agentOutput(dockerCli.Out())
	stderr, closeErr := agentOutput(dockerCli.Err())
	code, err := b.Logs(ctx, p, backend.LogsOptions{Follow: opts.follow, Tail: opts.tail, Timestamps: opts.timestamps,
		Since: opts.since, Until: opts.until, Stdout: stdout, Stderr: stderr})
	// Closing flushes what the filters hold back.
	if cerr := errors.Join(closeOut(), closeErr()); err == nil {
		err = cerr
	}
	return exitStatus(code, err)
}
