package plugin

import (
	"encoding/json"
	"fmt"

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
			return runCheck(cmd, dockerCli, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.backend, "backend", "", `Where the probe runs: "auto", "smolvm" or "docker"`)
	f.StringVar(&opts.networkMode, "network-mode", "", `smolvm network mode: "auto", "bridge" or "loopback"`)
	f.StringVar(&opts.format, "format", "table", `Output format: "table" or "json"`)
	f.StringVar(&opts.progress, "progress", "auto", `Progress output: "auto", "tty", "plain", "quiet" or "json"`)
	f.BoolVar(&opts.keep, "keep", false, "Keep the check's bottle for inspection (cleanup is then not judged)")
	return cmd
}

func runCheck(cmd *cobra.Command, dockerCli command.Cli, o checkOptions) error {
	if o.format != "table" && o.format != "json" {
		return fmt.Errorf(`--format %q is not supported: use "table" or "json"`, o.format)
	}
	if err := checkProgressMode(o.progress); err != nil {
		return err
	}
	ctx, stop := interruptible(cmd.Context())
	defer stop()
	choice, err := plan.Choose(gatherFacts(ctx, dockerCli, false), o.backend, o.networkMode)
	if err != nil {
		return err
	}
	svc, err := newService(dockerCli, progressOut(dockerCli, o.progress))
	if err != nil {
		return err
	}
	pipe, cleanup, err := newPipeline(dockerCli, svc, o.progress)
	if err != nil {
		return err
	}
	defer cleanup()
	dk, err := dockerBackend(dockerCli)
	if err != nil {
		return err
	}
	arch, err := engineArch(ctx, dockerCli)
	if err != nil {
		return err
	}
	card, err := svc.Check(ctx, bottles.CheckOptions{Choice: choice, Arch: arch, Pipeline: pipe, Keep: o.keep,
		Run: bottles.RunOptions{Docker: dk, Stderr: dockerCli.Err()}})
	if err != nil {
		return interrupted(ctx, err)
	}
	if o.format == "json" {
		enc := json.NewEncoder(dockerCli.Out())
		enc.SetIndent("", "  ")
		if err := enc.Encode(card); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(dockerCli.Out(), "docker bottle check: %s backend, %s network mode (%s)\n\n", choice.Backend, choice.NetworkMode, choice.Why)
		if err := card.WriteTable(dockerCli.Out()); err != nil {
			return err
		}
	}
	if card.Failed() {
		return cli.StatusError{StatusCode: 1, Status: "docker bottle check: a promise failed (see the report above)"}
	}
	return nil
}
