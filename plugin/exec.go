package plugin

import (
	"context"
	"fmt"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/opts"
	"github.com/spf13/cobra"

	"github.com/docker-bottle/docker-bottle/backend"
)

type execOptions struct {
	name        string
	command     []string
	interactive bool
	tty         bool
	env         opts.ListOpts
	workdir     string
}

func execCmd(dockerCli command.Cli) *cobra.Command {
	o := execOptions{env: opts.NewListOpts(opts.ValidateEnv)}
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] BOTTLE -- COMMAND [ARG...]",
		Short: "Run a command in a bottle, next to its agent",
		Long: "Run a command in a bottle, next to its agent, with the agent's network: its proxy (and the proxy's token), " +
			"CA and git settings.",
		Args:              cli.RequiresMinArgs(2),
		ValidArgsFunction: completeBottles(dockerCli),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.name, o.command = args[0], args[1:]
			return runExec(cmd.Context(), dockerCli, o)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.interactive, "interactive", "i", false, "Keep STDIN open")
	f.BoolVarP(&o.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	f.VarP(&o.env, "env", "e", "Set an environment variable for the command")
	f.StringVarP(&o.workdir, "workdir", "w", "", "Working directory of the command")
	f.SetInterspersed(false)
	return cmd
}

func runExec(ctx context.Context, dockerCli command.Cli, o execOptions) error {
	name, command := o.name, o.command
	if command[0] == "--" {
		command = command[1:]
	}
	if len(command) == 0 {
		return fmt.Errorf("exec needs a command after the bottle's name: docker bottle exec %s -- COMMAND", name)
	}
	p, b, err := agentOf(dockerCli, name)
	if err != nil {
		return err
	}
	// Ctrl-C belongs to the command, as with `docker exec`: the exec ends
	// when the command does.
	code, err := b.Exec(context.WithoutCancel(ctx), p, backend.ExecOptions{Command: command, Env: o.env.GetSlice(), Workdir: o.workdir,
		TTY: o.tty, Interactive: o.interactive, Streams: backend.Streams{Stdin: dockerCli.In(), Stdout: dockerCli.Out(), Stderr: dockerCli.Err()}})
	return exitStatus(code, err)
}
