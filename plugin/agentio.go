package plugin

import (
	"context"
	"fmt"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-bottle/docker-bottle/backend"
	"github.com/docker-bottle/docker-bottle/plan"
)

// agentOf loads a bottle whose agent exists, and its backend.
func agentOf(dockerCli command.Cli, name string) (plan.Plan, backend.Backend, error) {
	svc, err := newService(dockerCli, nil)
	if err != nil {
		return plan.Plan{}, nil, err
	}
	p, err := svc.Load(name)
	if err != nil {
		return p, nil, err
	}
	if !p.AgentCreated {
		return p, nil, fmt.Errorf("bottle %s has no agent yet (its run did not get that far): `docker bottle rm %s`", name, name)
	}
	b, err := svc.Backend(p)
	return p, b, err
}

type logsOptions struct {
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
			p, b, err := agentOf(dockerCli, args[0])
			if err != nil {
				return err
			}
			// The agent's output is the agent's: on a terminal, what could
			// take the terminal over is shown escaped (an attached
			// session stays raw: it is the agent's terminal).
			stdout, closeOut := agentOutput(dockerCli.Out())
			stderr, closeErr := agentOutput(dockerCli.Err())
			defer closeErr()
			defer closeOut()
			code, err := b.Logs(cmd.Context(), p, backend.LogsOptions{Follow: opts.follow, Tail: opts.tail, Timestamps: opts.timestamps,
				Since: opts.since, Until: opts.until, Stdout: stdout, Stderr: stderr})
			return exitStatus(code, err)
		},
	}
	cmd.Flags().BoolVarP(&opts.follow, "follow", "f", false, "Follow the output")
	cmd.Flags().StringVarP(&opts.tail, "tail", "n", "all", "Number of lines to show from the end")
	cmd.Flags().BoolVarP(&opts.timestamps, "timestamps", "t", false, "Show timestamps (docker backend)")
	cmd.Flags().StringVar(&opts.since, "since", "", `Show logs since a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m"), as docker logs (docker backend)`)
	cmd.Flags().StringVar(&opts.until, "until", "", `Show logs before a timestamp or relative time, as docker logs (docker backend)`)
	return cmd
}

func attachCmd(dockerCli command.Cli) *cobra.Command {
	return &cobra.Command{
		Use:   "attach BOTTLE",
		Short: "Attach your terminal to a bottle's running agent",
		Long: "Attach your terminal to a bottle's running agent. Detach with Ctrl-P Ctrl-Q: the agent keeps running.\n" +
			"The exit code is the agent's when it ends while attached.",
		Args:              cli.ExactArgs(1),
		ValidArgsFunction: completeBottles(dockerCli),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, b, err := agentOf(dockerCli, args[0])
			if err != nil {
				return err
			}
			tty := dockerCli.In().IsTerminal() && dockerCli.Out().IsTerminal()
			// Ctrl-C belongs to the agent (the terminal is raw, or the CLI
			// passes it on); the attach ends when the agent does or on
			// Ctrl-P Ctrl-Q.
			ex, err := b.Attach(context.WithoutCancel(cmd.Context()), p, backend.AttachOptions{TTY: tty,
				Streams: backend.Streams{Stdin: dockerCli.In(), Stdout: dockerCli.Out(), Stderr: dockerCli.Err()}})
			return exitStatus(ex.Code, err)
		},
	}
}

// exitStatus turns a command's exit code in a bottle into ours.
func exitStatus(code int, err error) error {
	if err != nil {
		return err
	}
	if code != 0 {
		return cli.StatusError{StatusCode: code}
	}
	return nil
}
