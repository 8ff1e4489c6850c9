package plugin

import (
	"bufio"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-bottle/docker-bottle/image/progress"
	"github.com/docker-bottle/docker-bottle/pki"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/spec"
)

type buildOptions struct {
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
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			return runBuild(cmd, dockerCli, opts, dir)
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

func runBuild(cmd *cobra.Command, dockerCli command.Cli, o buildOptions, dir string) error {
	if err := checkProgressMode(o.progress); err != nil {
		return err
	}
	tmpl, err := objectFormat(o.format, "")
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	workspace, err := filepath.Abs(dir)
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
	svc, err := newService(dockerCli, progressOut(dockerCli, o.progress))
	if err != nil {
		return err
	}
	// The bottle layer holds the user's CA: make it on first use, as a run
	// would.
	if _, err := pki.LoadOrCreateCA(svc.Dirs.CA()); err != nil {
		return err
	}
	ro, done, err := agentImage(ctx, dockerCli, svc, ls, workspace, o.progress)
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
			tmpl, err := objectFormat(opts.format, "")
			if err != nil {
				return err
			}
			if !opts.force {
				if !confirm(dockerCli, "WARNING! This removes every cached artifact, blob and image of docker bottle that no bottle uses.") {
					return nil
				}
			}
			svc, err := newService(dockerCli, nil)
			if err != nil {
				return err
			}
			pipe, cleanup, err := newPipeline(dockerCli, svc, "quiet")
			if err != nil {
				return err
			}
			defer cleanup()
			rep, err := svc.Prune(cmd.Context(), pipe)
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
				_, err := fmt.Fprintf(out, "Total reclaimed space: %s (%d blobs)\n", progress.Bytes(rep.BytesFreed), rep.Blobs)
				return err
			})
		},
	}
	cmd.Flags().BoolVarP(&opts.force, "force", "f", false, "Do not prompt for confirmation")
	cmd.Flags().StringVar(&opts.format, "format", "", objectFormatUsage("", "what was removed"))
	return cmd
}

// confirm asks as docker's prune commands do; anything but y or yes, or
// no terminal input at all, is a no.
func confirm(dockerCli command.Cli, message string) bool {
	fmt.Fprintf(dockerCli.Out(), "%s\nAre you sure you want to continue? [y/N] ", message)
	answer, _ := bufio.NewReader(dockerCli.In()).ReadString('\n')
	answer = strings.ToLower(strings.TrimSpace(answer))
	return answer == "y" || answer == "yes"
}
