package plugin

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli-plugins/manager"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-bottle/docker-bottle/gitstage"
	"github.com/docker-bottle/docker-bottle/hostcheck"
	"github.com/docker-bottle/docker-bottle/stage"
)

type doctorOptions struct {
	format string
}

func doctorCmd(dockerCli command.Cli) *cobra.Command {
	var opts doctorOptions
	cmd := &cobra.Command{
		Use:   "doctor [OPTIONS]",
		Short: "Check that this host and engine can run bottles, and say which backend would be used",
		Args:  cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDoctor(cmd.Context(), dockerCli, opts)
		},
	}
	cmd.Flags().StringVar(&opts.format, "format", "table", objectFormatUsage("table", "the report as a table"))
	return cmd
}

func runDoctor(ctx context.Context, dockerCli command.Cli, opts doctorOptions) error {
	tmpl, err := objectFormat(opts.format, "table")
	if err != nil {
		return err
	}
	var x hostcheck.Extra
	// GetPlugin checks that a plugin does not shadow one of docker's own
	// commands, which a plugin's command tree does not hold: none to pass.
	if p, err := manager.GetPlugin("buildx", dockerCli, &cobra.Command{}); err == nil {
		x.BuildxPath = p.Path
	} else {
		x.BuildxErr = err
	}
	dirs, err := stage.DefaultDirs()
	if err != nil {
		return err
	}
	x.Dirs = dirs
	x.StateErr = hostcheck.Writable(dirs.State)
	x.CacheErr = hostcheck.Writable(dirs.Cache)
	x.GitHelper, x.GitHelperErr = gitstage.FindRemoteHelper(ctx)

	r := hostcheck.Diagnose(gatherFacts(ctx, dockerCli, true), x)
	if err := writeObject(dockerCli.Out(), tmpl, r, func(out io.Writer) error { return printDoctor(out, r) }); err != nil {
		return err
	}
	if !r.CanRun {
		// The report says why; the exit code tells scripts.
		return cli.StatusError{StatusCode: 1}
	}
	return nil
}

func printDoctor(out io.Writer, r hostcheck.Report) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "CHECK\tSTATUS\tDETAIL")
	for _, c := range r.Checks {
		fmt.Fprintf(w, "%s\t%s\t%s\n", c.Name, c.Status, c.Detail)
		if c.Remedy != "" {
			fmt.Fprintf(w, "\t\t→ %s\n", c.Remedy)
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if r.CanRun {
		fmt.Fprintf(out, "\nBottles can run here: %s backend", r.Choice.Backend)
		if r.Choice.NetworkMode != "" {
			fmt.Fprintf(out, ", %s network mode", r.Choice.NetworkMode)
		}
		fmt.Fprintln(out, ".")
	} else {
		fmt.Fprintf(out, "\nBottles cannot run here: %s\n", r.Reason)
	}
	return nil
}
