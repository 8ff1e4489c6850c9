package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/docker/cli/cli/command"
	"github.com/moby/moby/client"

	bottle "github.com/docker-bottle/docker-bottle"
	"github.com/docker-bottle/docker-bottle/bottles"
	"github.com/docker-bottle/docker-bottle/image"
	"github.com/docker-bottle/docker-bottle/image/build"
	"github.com/docker-bottle/docker-bottle/image/pack"
	"github.com/docker-bottle/docker-bottle/image/progress"
	"github.com/docker-bottle/docker-bottle/image/push"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/smolvm"
)

// engine is the docker CLI's engine client. run.go still calls it; the
// rest of the package uses dockerCli.Client() directly.
func engine(dockerCli command.Cli) (client.APIClient, error) {
	return dockerCli.Client(), nil
}

// newService makes the bottles service for the current context; progress
// lines go to out (nil: none). The engine is the docker CLI's client, as
// it is: a mocked command.Cli serves as well.
func newService(dockerCli command.Cli, out io.Writer) (*bottles.Service, error) {
	dirs, err := plan.DefaultDirs()
	if err != nil {
		return nil, err
	}
	s := &bottles.Service{Engine: dockerCli.Client(), Dirs: dirs, Version: bottle.Metadata().Version, Progress: out, CLI: dockerCli}
	if path, err := smolvm.Lookup(); err == nil {
		s.Smolvm = smolvm.New(path)
	}
	return s, nil
}

// newPipeline makes the image pipeline: buildx when installed, the
// keychain of the docker CLI's credentials, smolvm when installed. Its
// progress display also carries the service's step lines; the returned
// cleanup closes the display (its final frame, the cursor below it), so
// call it before printing anything else on the terminal.
func newPipeline(dockerCli command.Cli, s *bottles.Service, mode string) (*image.Pipeline, func(), error) {
	eng := dockerCli.Client()
	pw, err := progress.NewWriter(mode, dockerCli.Err())
	if err != nil {
		return nil, func() {}, err
	}
	// buildx gets a pipe, not the terminal, so it cannot draw there itself
	// (`--progress tty` fails on a pipe); under the live display it prints
	// plain lines, which scroll above the display's own lines.
	buildxMode := build.BuildxProgress(mode, dockerCli.Err().IsTerminal())
	if progress.UsesTTY(mode, dockerCli.Err()) {
		buildxMode = progress.ModePlain
	}
	b, cleanup, err := build.New(dockerCli, eng, buildxMode)
	if err != nil {
		pw.Close()
		return nil, func() {}, err
	}
	// Step lines must not be printed over the live area: they go through
	// the display, which prints them above it.
	stepOut := s.Progress
	if stepOut != nil {
		s.Progress = pw
	}
	done := func() {
		pw.Close()
		s.Progress = stepOut
		cleanup()
	}
	var packer pack.Packer
	if s.Smolvm != nil {
		packer = pack.NewSmolvm(s.Smolvm.Path())
	}
	p, err := image.New(eng, packer, s.Dirs.Cache, image.WithBuilder(b), image.WithKeychain(push.Keychain(dockerCli.ConfigFile())), image.WithProgress(pw))
	if err != nil {
		done()
		return nil, func() {}, err
	}
	return p, done, nil
}

// progressOut is where step lines go for a --progress mode: with json,
// each becomes a JSON event, so that stderr carries nothing but JSON.
func progressOut(dockerCli command.Cli, mode string) io.Writer {
	switch mode {
	case progress.ModeQuiet:
		return nil
	case progress.ModeJSON:
		w, _ := progress.NewWriter(mode, dockerCli.Err())
		return w
	}
	return dockerCli.Err()
}

// checkProgressMode refuses an unknown --progress value.
func checkProgressMode(mode string) error {
	switch mode {
	case "auto", "tty", "plain", "quiet", "json":
		return nil
	}
	return fmt.Errorf(`--progress %q is not one of auto, tty, plain, quiet, json`, mode)
}

// engineArch is the engine's architecture, which the bottle's binaries
// must match.
func engineArch(ctx context.Context, dockerCli command.Cli) (string, error) {
	v, err := dockerCli.Client().ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return "", err
	}
	return v.Arch, nil
}

// forEachBottle does fn to each named bottle and prints the name of each
// it was done to, as `docker stop` prints container names; it goes on
// after a failure and returns every error.
func forEachBottle(dockerCli command.Cli, names []string, fn func(svc *bottles.Service, name string) error) error {
	svc, err := newService(dockerCli, nil)
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
