package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-bottle/docker-bottle/backend"
	"github.com/docker-bottle/docker-bottle/internal/dockercli"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/smolvm"
)

// dockerCLI runs the docker CLI on the current context with the user's
// terminal, as the user would type it; its exit code becomes ours.
func dockerCLI(dockerCli command.Cli, args ...string) error {
	return dockerCLITo(dockerCli, dockercli.OutFile(dockerCli.Out()), dockercli.OutFile(dockerCli.Err()), args...)
}

// dockerCLITo is dockerCLI with its output going to stdout and stderr.
func dockerCLITo(dockerCli command.Cli, stdout, stderr io.Writer, args ...string) error {
	docker, err := dockercli.Path()
	if err != nil {
		return err
	}
	env, cleanup, err := dockercli.EndpointEnv(dockerCli)
	if err != nil {
		return err
	}
	defer cleanup()
	c := exec.Command(docker, args...)
	c.Env = env
	c.Stdin, c.Stdout, c.Stderr = dockercli.InFile(dockerCli.In()), stdout, stderr
	err = c.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return cli.StatusError{StatusCode: ee.ExitCode()}
	}
	return err
}

// agentOf loads a bottle whose agent exists.
func agentOf(dockerCli command.Cli, name string) (plan.Plan, *smolvm.CLI, error) {
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
	if p.Smolvm != nil && svc.Smolvm == nil {
		return p, nil, fmt.Errorf("bottle %s runs in smolvm, which is not installed here", name)
	}
	return p, svc.Smolvm, nil
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
			p, sm, err := agentOf(dockerCli, args[0])
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
			if p.Docker == nil {
				if opts.timestamps || opts.since != "" || opts.until != "" {
					return fmt.Errorf("bottle %s runs in smolvm, whose agent log is its terminal's output as it came, without times: --timestamps, --since and --until work with the docker backend only", p.Slug)
				}
				// The agent's session in the machine keeps its output.
				code, err := backend.Smolvm{CLI: sm}.Logs(cmd.Context(), p, opts.follow, opts.tail, stdout, stderr)
				return exitStatus(code, err)
			}
			a := []string{"logs", "--tail", opts.tail}
			if opts.follow {
				a = append(a, "-f")
			}
			if opts.timestamps {
				a = append(a, "-t")
			}
			if opts.since != "" {
				a = append(a, "--since", opts.since)
			}
			if opts.until != "" {
				a = append(a, "--until", opts.until)
			}
			return dockerCLITo(dockerCli, stdout, stderr, append(a, p.Docker.Container)...)
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
			p, sm, err := agentOf(dockerCli, args[0])
			if err != nil {
				return err
			}
			if p.Docker == nil {
				tty := dockerCli.In().IsTerminal() && dockerCli.Out().IsTerminal()
				// Ctrl-C belongs to the agent (the terminal is raw); the
				// attach ends when the agent does or on Ctrl-P Ctrl-Q.
				code, err := backend.Smolvm{CLI: sm}.Attach(context.WithoutCancel(cmd.Context()), p, "", tty, true,
					dockerCli.In(), dockerCli.Out(), dockerCli.Err())
				return exitStatus(code, err)
			}
			return dockerCLI(dockerCli, "attach", p.Docker.Container)
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
