package plugin

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-bottle/docker-bottle/bottles"
)

type pruneOptions struct {
	force  bool
	format string
}

func pruneCmd(dockerCli command.Cli) *cobra.Command {
	var opts pruneOptions
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove cached artifacts, blobs and images no bottle uses",
		Args:  cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPrune(cmd.Context(), dockerCli, opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.force, "force", "f", false, "Do not prompt for confirmation")
	cmd.Flags().StringVar(&opts.format, "format", "", objectFormatUsage("", "what was removed"))
	return cmd
}

func runPrune(ctx context.Context, dockerCli command.Cli, opts pruneOptions) error {
	tmpl, err := objectFormat(opts.format, "")
	if err != nil {
		return err
	}
	if !opts.force {
		if !confirm(dockerCli, "WARNING! This removes every cached artifact, blob and image of docker bottle that no bottle uses.") {
			return nil
		}
	}
	svc, err := bottles.New(dockerCli)
	if err != nil {
		return err
	}
	defer svc.Close()
	rep, err := svc.Prune(ctx)
	if err != nil {
		return err
	}
	return writeObject(dockerCli.Out(), tmpl, rep, func(out io.Writer) error {
		for _, a := range rep.Artifacts {
			fmt.Fprintln(out, "Deleted artifact:", a)
		}
		for _, i := range rep.Images {
			fmt.Fprintln(out, "Deleted image:", i)
		}
		_, err := fmt.Fprintf(out, "Total reclaimed space: %s (%d blobs)\n", rep.Freed(), rep.Blobs)
		return err
	})
}

// confirm asks as docker's prune commands do; anything but y or yes, or
// no terminal input at all, is a no.
func confirm(dockerCli command.Cli, message string) bool {
	fmt.Fprintf(dockerCli.Out(), "%s\nAre you sure you want to continue? [y/N] ", message)
	answer, _ := bufio.NewReader(dockerCli.In()).ReadString('\n')
	answer = strings.ToLower(strings.TrimSpace(answer))
	return answer == "y" || answer == "yes"
}
