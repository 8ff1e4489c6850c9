package plugin

import (
	"context"
	"fmt"
	"runtime"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	bottle "github.com/docker-bottle/docker-bottle"
)

func versionCmd(dockerCli command.Cli) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Show the plugin version and the smolvm version found",
		Args:  cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runVersion(cmd.Context(), dockerCli)
		},
	}
}

func runVersion(ctx context.Context, dockerCli command.Cli) error {
	m := bottle.Metadata()
	out := dockerCli.Out()
	fmt.Fprintf(out, "docker bottle %s\n", m.Version)
	fmt.Fprintf(out, " commit:  %s\n", bottle.Commit)
	fmt.Fprintf(out, " go:      %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	s := smolvmFacts(ctx)
	switch {
	case !s.Found:
		fmt.Fprintln(out, " smolvm:  not found")
	case s.Version == "":
		fmt.Fprintf(out, " smolvm:  %s (%s)\n", s.Path, s.Error)
	default:
		fmt.Fprintf(out, " smolvm:  %s (%s)\n", s.Version, s.Path)
	}
	return nil
}
