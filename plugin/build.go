package plugin

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-bottle/docker-bottle/bottles"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/spec"
)

type buildOptions struct {
	dir      string // PATH
	spec     specOptions
	backend  string
	registry string
	progress string
	format   string
}

func buildCmd(dockerCli command.Cli) *cobra.Command {
	var opts buildOptions
	cmd := &cobra.Command{
		Use:   "build [OPTIONS] [PATH]",
		Short: "Build the agent image of the repository at PATH and cache it for its backend",
		Args:  cli.RequiresMaxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.dir = "."
			if len(args) == 1 {
				opts.dir = args[0]
			}
			return runBuild(cmd.Context(), dockerCli, opts)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.spec.file, "file", "f", "", "Bottle spec file (default: PATH/bottle.yaml when present)")
	f.StringVar(&opts.backend, "backend", "", `Backend to build for: "auto", "smolvm" or "docker"`)
	f.StringVar(&opts.registry, "registry", "", "Push the agent image to this repository instead of the embedded registry")
	f.StringVar(&opts.progress, "progress", "auto", `Progress output: "auto", "tty", "plain", "quiet" or "json"`)
	f.StringVar(&opts.format, "format", "", objectFormatUsage("", "the image or artifact built"))
	return cmd
}

func runBuild(ctx context.Context, dockerCli command.Cli, o buildOptions) error {
	if err := checkProgressMode(o.progress); err != nil {
		return err
	}
	tmpl, err := objectFormat(o.format, "")
	if err != nil {
		return err
	}
	workspace, err := filepath.Abs(o.dir)
	if err != nil {
		return err
	}
	ls, err := loadSpec(o.spec, workspace, spec.Overrides{Backend: o.backend, Registry: o.registry})
	if err != nil {
		return err
	}
	choice, err := plan.Choose(gatherFacts(ctx, dockerCli, false), ls.spec.Backend, ls.spec.NetworkMode)
	if err != nil {
		return err
	}
	svc, err := bottles.New(dockerCli, bottles.WithProgress(o.progress))
	if err != nil {
		return err
	}
	defer svc.Close()
	// The bottle layer holds the user's CA: make it on first use, as a run
	// would.
	if err := svc.EnsureCA(); err != nil {
		return err
	}
	ro, done, err := svc.WithAgentImage(agentImage(ls, workspace), bottles.RunOptions{})
	if err != nil {
		return err
	}
	defer done()
	built, err := svc.Build(ctx, choice.Backend, ro)
	if err != nil {
		return err
	}
	return writeObject(dockerCli.Out(), tmpl, built, func(out io.Writer) error {
		what := built.Tag
		if what == "" {
			what = built.Artifact
		}
		cached := ""
		if built.CacheHit {
			cached = " (from the cache)"
		}
		_, err := fmt.Fprintf(out, "%s%s\n", what, cached)
		return err
	})
}
