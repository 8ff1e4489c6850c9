package bottles

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/docker/cli/cli/command"
	"github.com/moby/moby/client"

	bottle "github.com/docker-bottle/docker-bottle"
	"github.com/docker-bottle/docker-bottle/display"
	"github.com/docker-bottle/docker-bottle/image"
	"github.com/docker-bottle/docker-bottle/image/build"
	"github.com/docker-bottle/docker-bottle/image/pack"
	"github.com/docker-bottle/docker-bottle/image/push"
	"github.com/docker-bottle/docker-bottle/pki"
	"github.com/docker-bottle/docker-bottle/smolvm"
	"github.com/docker-bottle/docker-bottle/stage"
)

// Option tunes a Service that New makes.
type Option func(*Service)

// WithProgress shows the operations' progress on the docker CLI's stderr
// in mode ("auto", "tty", "plain", "json" or "quiet", the default).
func WithProgress(mode string) Option {
	return func(s *Service) { s.mode = mode }
}

// WithDirs puts the service's state and cache in dirs instead of the
// user's.
func WithDirs(dirs stage.Dirs) Option {
	return func(s *Service) { s.dirs = dirs }
}

// WithEngine makes the service talk to eng instead of the docker CLI's
// client: for a service made without a docker CLI (nothing attaches or
// builds then), as tests make one.
func WithEngine(eng Engine) Option {
	return func(s *Service) { s.engine = eng }
}

// WithSmolvm makes the service use cli as the smolvm CLI instead of the
// one installed; nil means none.
func WithSmolvm(cli *smolvm.CLI) Option {
	return func(s *Service) { s.smolvm = cli }
}

// WithSteps sends one line per step to w (instead of the docker CLI's
// stderr, or nowhere when quiet).
func WithSteps(w io.Writer) Option {
	return func(s *Service) { s.progress = w }
}

// New makes the service for the docker CLI's current context, as
// compose's NewComposeService does: the engine is the CLI's client, the
// smolvm CLI is found when installed, and the image pipeline is made when
// an operation first needs one. Close ends the display. dockerCli may be
// nil when WithEngine gives the engine and nothing attaches or builds.
func New(dockerCli command.Cli, opts ...Option) (*Service, error) {
	s := &Service{version: bottle.Metadata().Version, cli: dockerCli, mode: display.ModeQuiet}
	if dockerCli != nil {
		s.engine = dockerCli.Client()
	}
	if path, err := smolvm.Lookup(); err == nil {
		s.smolvm = smolvm.New(path)
	}
	for _, o := range opts {
		o(s)
	}
	if s.engine == nil {
		return nil, errors.New("bottles.New: no engine: give a docker CLI or WithEngine")
	}
	if s.mode == "" {
		s.mode = display.ModeQuiet
	}
	if s.dirs == (stage.Dirs{}) {
		dirs, err := stage.DefaultDirs()
		if err != nil {
			return nil, err
		}
		s.dirs = dirs
	}
	switch {
	case s.mode == display.ModeQuiet || s.progress != nil:
	case dockerCli == nil:
		return nil, fmt.Errorf("bottles.New: --progress %s needs a docker CLI to show it on", s.mode)
	case s.mode == display.ModeJSON:
		// Step lines become JSON events, so that stderr carries nothing
		// but JSON.
		d, err := display.NewWriter(s.mode, dockerCli.Err())
		if err != nil {
			return nil, err
		}
		s.display, s.progress = d, d
	default:
		s.progress = dockerCli.Err()
	}
	return s, nil
}

// EnsureCA makes the user's bottle CA on first use (a run does it when it
// prepares a bottle; a build needs it for the bottle layer).
func (s *Service) EnsureCA() error {
	_, err := pki.LoadOrCreateCA(s.dirs.CA())
	return err
}

// Close closes the progress display (its final frame, the cursor below
// it) and lets go of the pipeline; call it before printing
// anything else on the terminal. Like the step lines, the display's last
// writes to the terminal are not the operation's to fail on.
func (s *Service) Close() {
	if s.display != nil {
		_ = s.display.Close()
		s.display = nil
	}
	s.pipe = nil
}

// pipeline is the image pipeline: the one an operation's options give,
// else the service's own, made on first use: buildx when installed, the
// keychain of the docker CLI's credentials, smolvm when installed, and
// the image cache of the context's engine (image.EngineCacheDir).
func (s *Service) pipeline(ctx context.Context, given *image.Pipeline) (*image.Pipeline, error) {
	if given != nil {
		return given, nil
	}
	if s.pipe != nil {
		return s.pipe, nil
	}
	if s.cli == nil {
		return nil, errors.New("no image pipeline: the service was made without a docker CLI (use bottles.New)")
	}
	errOut := s.cli.Err()
	if s.display == nil {
		d, err := display.NewWriter(s.mode, errOut)
		if err != nil {
			return nil, err
		}
		s.display = d
	}
	// buildx gets a pipe, not the terminal, so it cannot draw there itself
	// (`--progress tty` fails on a pipe); under the live display it prints
	// plain lines, which scroll above the display's own lines.
	buildxMode := build.BuildxProgress(s.mode, errOut.IsTerminal())
	if display.UsesTTY(s.mode, errOut) {
		buildxMode = display.ModePlain
	}
	b, err := build.New(s.cli, s.cli.Client(), buildxMode)
	if err != nil {
		return nil, err
	}
	var packer pack.Packer
	if s.smolvm != nil {
		packer = pack.NewSmolvm(s.smolvm.Path())
	}
	info, err := s.cli.Client().Info(ctx, client.InfoOptions{})
	if err != nil {
		return nil, fmt.Errorf("asking the engine its ID, which keys its image cache: %w", err)
	}
	cache, err := image.EngineCacheDir(s.dirs.Cache, info.Info.ID)
	if err != nil {
		return nil, err
	}
	p, err := image.New(s.cli.Client(), packer, cache, image.WithBuilder(b),
		image.WithKeychain(push.Keychain(s.cli.ConfigFile())), image.WithProgress(s.display))
	if err != nil {
		return nil, err
	}
	s.pipe = p
	return p, nil
}

// arch is the engine's architecture, which the bottle's binaries must
// match: given, else asked of the engine.
func (s *Service) arch(ctx context.Context, given string) (string, error) {
	if given != "" {
		return given, nil
	}
	v, err := s.engine.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return "", err
	}
	return v.Arch, nil
}

// stepOut is where step lines go: through the display while there is one
// (which prints them above its live lines), else to Progress; nil
// discards.
func (s *Service) stepOut() io.Writer {
	if s.progress == nil {
		return nil
	}
	if s.display != nil {
		return s.display
	}
	return s.progress
}
