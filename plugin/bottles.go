package plugin

import (
	"errors"
	"fmt"

	"github.com/docker/cli/cli/command"

	"github.com/docker-bottle/docker-bottle/bottles"
)

// checkProgressMode refuses an unknown --progress value.
func checkProgressMode(mode string) error {
	switch mode {
	case "auto", "tty", "plain", "quiet", "json":
		return nil
	}
	return fmt.Errorf(`--progress %q is not one of auto, tty, plain, quiet, json`, mode)
}

// forEachBottle does fn to each named bottle and prints the name of each
// it was done to, as `docker stop` prints container names; it goes on
// after a failure and returns every error.
func forEachBottle(dockerCli command.Cli, names []string, fn func(svc *bottles.Service, name string) error, opts ...bottles.Option) error {
	svc, err := bottles.New(dockerCli, opts...)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range names {
		if err := fn(svc, name); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintln(dockerCli.Out(), name)
	}
	return errors.Join(errs...)
}
