package plugin

import (
	"context"
	"io"
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
			return runConfig(cmd.Context(), dockerCli, opts)
		},
	}
	cmd.Flags().StringVarP(&opts.spec.file, "file", "f", "", "Bottle spec file (default: ./bottle.yaml when present)")
	cmd.Flags().StringVar(&opts.format, "format", "yaml", objectFormatUsage("yaml", "the spec as YAML, then as comments what a bottle carries of your agent settings (in JSON: UserConfig)"))
	return cmd
}

// runConfig asks nothing of the engine; it takes ctx as every command does.
func runConfig(_ context.Context, dockerCli command.Cli, opts configOptions) error {
	dir, err := os.Getwd()
	if err != nil {
		return err
	}
	tmpl, err := objectFormat(opts.format, "yaml")
	if err != nil {
		return err
	}
	ls, err := loadSpec(opts.spec, dir, spec.Overrides{})
	if err != nil {
		return err
	}
	// Warnings go to stderr: the output is the spec (YAML or a template's).
	writeSpecWarnings(dockerCli.Err(), &ls.spec)
	// A secret in the user's settings is said in the output, then is the
	// command's error.
	report, refused := userConfigReportOf(ls)
	if report == nil {
		return refused
	}
	err = writeObject(dockerCli.Out(), tmpl, configView{Spec: ls.spec, UserConfig: report}, func(out io.Writer) error {
		b, err := yaml.MarshalWithOptions(ls.spec, yaml.IndentSequence(true))
		if err != nil {
			return err
		}
		if _, err := out.Write(b); err != nil {
			return err
		}
		report.writeText(out)
		return nil
	})
	if err != nil {
		return err
	}
	return refused
}

// configView is what config's --format sees: the spec (its JSON keys are
// bottle.yaml's), and UserConfig, the report of the user's agent settings.
type configView struct {
	spec.Spec
	UserConfig *userConfigReport
}
