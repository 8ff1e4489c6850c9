package plugin

import (
	"context"
	"fmt"
	"io"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-bottle/docker-bottle/bottles"
	"github.com/docker-bottle/docker-bottle/plan"
)

type checkOptions struct {
	backend     string
	networkMode string
	format      string
	progress    string
	keep        bool
}

func checkCmd(dockerCli command.Cli) *cobra.Command {
	var opts checkOptions
	cmd := &cobra.Command{
		Use:   "check [OPTIONS]",
		Short: "Run the probe agent in a real bottle and report which promises hold",
		Long: "Run the probe agent in a real bottle, with stand-in hosts of its own (no internet needed),\n" +
			"and print a report card: each promise of a bottle with PASS, FAIL or WARN and the evidence.\n" +
			"Exits 1 when any promise fails.",
		Args: cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCheck(cmd.Context(), dockerCli, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.backend, "backend", "", `Where the probe runs: "auto", "smolvm" or "docker"`)
	f.StringVar(&opts.networkMode, "network-mode", "", `smolvm network mode: "auto", "bridge" or "loopback"`)
	f.StringVar(&opts.format, "format", "table", objectFormatUsage("table", "the report card as a table"))
	f.StringVar(&opts.progress, "progress", "auto", `Progress output: "auto", "tty", "plain", "quiet" or "json"`)
	f.BoolVar(&opts.keep, "keep", false, "Keep the check's bottle for inspection (cleanup is then not judged)")
	return cmd
}

func runCheck(ctx context.Context, dockerCli command.Cli, o checkOptions) error {
	tmpl, err := objectFormat(o.format, "table")
	if err != nil {
		return err
	}
	if err := checkProgressMode(o.progress); err != nil {
		return err
	}
	choice, err := plan.Choose(gatherFacts(ctx, dockerCli, false), o.backend, o.networkMode)
	if err != nil {
		return err
	}
	svc, err := bottles.New(dockerCli, bottles.WithProgress(o.progress))
	if err != nil {
		return err
	}
	defer svc.Close()
	card, err := svc.Check(ctx, bottles.CheckOptions{Choice: choice, Keep: o.keep,
		Run: bottles.RunOptions{Stderr: dockerCli.Err()}})
	if err != nil {
		return err
	}
	err = writeObject(dockerCli.Out(), tmpl, card, func(out io.Writer) error {
		fmt.Fprintf(out, "docker bottle check: %s backend, %s network mode (%s)\n\n", choice.Backend, choice.NetworkMode, choice.Why)
		return card.WriteTable(out)
	})
	if err != nil {
		return err
	}
	if card.Failed() {
		return cli.StatusError{StatusCode: 1, Status: "docker bottle check: a promise failed (see the report above)"}
	}
	return nil
}
