package plugin

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/goccy/go-yaml"
	"github.com/spf13/cobra"

	"github.com/docker-bottle/docker-bottle/spec"
)

type configOptions struct {
	spec   specOptions
	format string
}

func configCmd(dockerCli command.Cli) *cobra.Command {
	var opts configOptions
	cmd := &cobra.Command{
		Use:   "config [OPTIONS]",
		Short: "Validate bottle.yaml and print the resolved spec, defaults filled in",
		Args:  cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runConfig(dockerCli, opts)
		},
	}
	cmd.Flags().StringVarP(&opts.spec.file, "file", "f", "", "Bottle spec file (default: ./bottle.yaml when present)")
	cmd.Flags().StringVar(&opts.format, "format", "yaml", `Output format: "yaml" or "json"`)
	return cmd
}

func runConfig(dockerCli command.Cli, opts configOptions) error {
	dir, err := os.Getwd()
	if err != nil {
		return err
	}
	ls, err := loadSpec(opts.spec, dir, spec.Overrides{})
	if err != nil {
		return err
	}
	switch opts.format {
	case "yaml":
		out, err := yaml.MarshalWithOptions(ls.spec, yaml.IndentSequence(true))
		if err != nil {
			return err
		}
		_, err = dockerCli.Out().Write(out)
		return err
	case "json":
		enc := json.NewEncoder(dockerCli.Out())
		enc.SetIndent("", "  ")
		return enc.Encode(ls.spec)
	default:
		return fmt.Errorf(`--format %q is not supported: use "yaml" or "json"`, opts.format)
	}
}
