// Package reference generates the reference documentation of `docker
// bottle` from its cobra tree.
package reference

import (
	"io"
	"log"

	clidocstool "github.com/docker/cli-docs-tool"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-bottle/docker-bottle/plugin"
)

// Generate writes (or refreshes) the Markdown and YAML reference of every
// command into dir. Text a maintainer adds to a Markdown file outside the
// generated tables is kept, as cli-docs-tool does for docker's own docs.
func Generate(dir string) error {
	log.SetOutput(io.Discard) // cli-docs-tool reports each file it writes
	dockerCli, err := command.NewDockerCli()
	if err != nil {
		return err
	}
	// The plugin's commands appear as docker's, under `docker bottle`.
	root := &cobra.Command{Use: "docker [OPTIONS] COMMAND [ARG...]", Short: "A self-sufficient runtime for containers"}
	root.AddCommand(plugin.NewRootCmd(dockerCli))
	root.DisableAutoGenTag = true
	c, err := clidocstool.New(clidocstool.Options{Root: root, SourceDir: dir, Plugin: true})
	if err != nil {
		return err
	}
	if err := c.GenMarkdownTree(root); err != nil {
		return err
	}
	return c.GenYamlTree(root)
}
