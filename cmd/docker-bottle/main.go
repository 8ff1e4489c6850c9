// Command docker-bottle is the docker CLI plugin behind `docker bottle`.
// main only wires the plugin and maps errors to exit codes.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/docker/cli/cli"
	cliplugin "github.com/docker/cli/cli-plugins/plugin"
	"github.com/docker/cli/cli/command"

	bottle "github.com/docker-bottle/docker-bottle"
	"github.com/docker-bottle/docker-bottle/plugin"
)

func main() {
	dockerCli, err := command.NewDockerCli()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	root := plugin.NewRootCmd(dockerCli)
	err = cliplugin.RunPlugin(dockerCli, root, bottle.Metadata())
	if err == nil {
		return
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintln(dockerCli.Err(), msg)
	}
	os.Exit(exitCode(err))
}

// exitCode follows docker's habits: a StatusError carries its own code, an
// interrupted command exits 130, anything else 1.
func exitCode(err error) int {
	var st cli.StatusError
	switch {
	case errors.As(err, &st) && st.StatusCode != 0:
		return st.StatusCode
	case errors.Is(err, context.Canceled), errors.Is(err, plugin.ErrInterrupted):
		return 130
	default:
		return 1
	}
}
