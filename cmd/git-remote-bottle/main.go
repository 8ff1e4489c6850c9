// Command git-remote-bottle is git's remote helper for a bottle's git gate:
// `git fetch bottle::NAME` fetches from the gate of bottle NAME wherever
// its engine is, through the engine API (an exec of the bundle binary's
// dial per connection, as the plugin reaches the bundle), never through a
// port published on a loopback. The bottle's plan is found as the plugin
// finds it (DOCKER_CONFIG); its engine is the one the bottle was made on,
// as the plan records it (a context, or a host), not the shell's current
// context.
//
// It speaks git's remote-helper protocol with the stateless-connect
// capability (protocol version 2, which the gate serves over smart HTTP):
// git's requests go to the gate as HTTP requests, each answer back as it
// came. The gate's token is read from the bottle's stage dir into this
// process and sent only to the bottle's own bundle container: it is never
// on a command line or in an environment. Pushing to a gate is not served:
// the agent pushes, the user fetches.
package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/flags"
	"github.com/docker/go-connections/tlsconfig"
	"github.com/spf13/pflag"

	dockerbackend "github.com/docker-bottle/docker-bottle/backend/docker"
	"github.com/docker-bottle/docker-bottle/bringup"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/spec"
	"github.com/docker-bottle/docker-bottle/stage"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "git-remote-bottle: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	// git runs `git-remote-bottle REMOTE URL`, URL being what follows
	// "bottle::" (for `git fetch bottle::NAME`, REMOTE is the whole URL).
	if len(args) != 2 {
		return fmt.Errorf("git runs this helper for a bottle::NAME remote (`git fetch bottle::NAME`); it was run with %q", args)
	}
	name := strings.TrimPrefix(args[1], "bottle://")
	if err := spec.ValidateName(name); err != nil {
		return fmt.Errorf("remote bottle::%s: %w", args[1], err)
	}
	g, err := open(ctx, name)
	if err != nil {
		return err
	}
	return speak(ctx, bufio.NewReader(os.Stdin), bufio.NewWriter(os.Stdout), g)
}

// engineOf is how the docker CLI reaches the engine the bottle was made
// on, as its plan records it: git runs this helper in the user's shell,
// whose current context may be another engine's, and whose environment
// may lack the TLS settings the run was given on its command line. A plan
// that records none leaves the choice to the environment, as the
// plugin's.
func engineOf(p plan.Plan) *flags.ClientOptions {
	opts := flags.NewClientOptions()
	// No flag is parsed: this only reads DOCKER_TLS_VERIFY and
	// DOCKER_CERT_PATH, as the docker CLI does for a host.
	fs := pflag.NewFlagSet("git-remote-bottle", pflag.ContinueOnError)
	opts.InstallFlags(fs)
	opts.SetDefaultOptions(fs)
	switch e := p.Engine; {
	case e.Context != "" && e.Context != "default":
		opts.Context = e.Context
	case e.Host != "":
		opts.Hosts = []string{e.Host}
		if t := e.TLS; t != nil {
			opts.TLS, opts.TLSVerify = true, t.Verify
			opts.TLSOptions = &tlsconfig.Options{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile, InsecureSkipVerify: !t.Verify}
		}
	}
	return opts
}

// open finds bottle name's plan and engine, checks that its bundle runs,
// and returns a client of its gate through the engine.
func open(ctx context.Context, name string) (*gate, error) {
	dirs, err := stage.DefaultDirs()
	if err != nil {
		return nil, err
	}
	p, err := dirs.Stage(name).Load()
	if err != nil {
		return nil, fmt.Errorf("no bottle %q here (%w): `docker bottle ls` lists them", name, err)
	}
	dockerCli, err := command.NewDockerCli()
	if err != nil {
		return nil, err
	}
	if err := dockerCli.Initialize(engineOf(p)); err != nil {
		return nil, fmt.Errorf("reaching the docker engine of bottle %s: %w", name, err)
	}
	eng := dockerCli.Client()
	st, err := bringup.Inspect(ctx, eng, p)
	if err != nil {
		return nil, err
	}
	switch {
	case st.Status != "missing" && !st.Ours:
		return nil, fmt.Errorf("the container %s on the engine of context %q is not the bundle of bottle %s, so its gate was not asked",
			p.Bundle.Container, dockerCli.CurrentContext(), name)
	case !st.Serving:
		return nil, fmt.Errorf("the bundle of bottle %s is not running on the engine of context %q (%s): start it with `docker bottle start %s`",
			name, dockerCli.CurrentContext(), st.Reason(), name)
	}
	tok, err := os.ReadFile(p.AgentTokenFile)
	if err != nil {
		return nil, fmt.Errorf("reading the gate token of bottle %s: %w", name, err)
	}
	return newGate(strings.TrimSpace(string(tok)), dockerbackend.DialContext(eng, p.Bundle.Container, bringup.BinaryPath, plan.GatePort)), nil
}
