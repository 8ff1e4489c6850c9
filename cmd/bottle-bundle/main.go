// Command bottle-bundle is the bundle's one static Linux binary: the egress
// proxy, the git gate and the supervisor. Each daemon can also run on its own
// (`bottle-bundle proxy --config FILE`), outside any container, for tests and
// benchmarks. The same binary is the helper in every bottle
// (guest.HelperPath): its subcommands there are implemented in
// provider/guest/..., and this package only dispatches to them. It imports
// nothing of the plugin side.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/docker-bottle/docker-bottle/provider/guest"
	"github.com/docker-bottle/docker-bottle/provider/guest/bootstrap"
	"github.com/docker-bottle/docker-bottle/provider/guest/hook"
	"github.com/docker-bottle/docker-bottle/provider/guest/machine"
	"github.com/docker-bottle/docker-bottle/provider/guest/session"
)

// daemons maps every subcommand to its entry point.
var daemons = map[string]func(ctx context.Context, args []string) error{
	// The bundle's daemons.
	"proxy":      runProxy,
	"gate":       runGate,
	"supervisor": runSupervisor,
	"serve":      runServe,
	"secrets":    runSecrets,
	// The helper in a bottle.
	guest.SubcommandInit:    bootstrap.Init,
	guest.SubcommandExec:    bootstrap.Exec,
	guest.SubcommandHook:    hook.Main,
	guest.SubcommandSession: session.Main,
	guest.SubcommandSleep:   machine.Sleep,
	guest.SubcommandReady:   machine.Ready,
	guest.SubcommandDial:    runDial,
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) < 2 || daemons[os.Args[1]] == nil {
		fmt.Fprintf(os.Stderr, "usage: bottle-bundle {%s} [--config FILE]\n", strings.Join(names(), "|"))
		os.Exit(2)
	}
	if err := daemons[os.Args[1]](ctx, os.Args[2:]); err != nil {
		var code guest.ExitCode
		if errors.As(err, &code) {
			os.Exit(int(code))
		}
		fmt.Fprintf(os.Stderr, "bottle-bundle %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func names() []string {
	var n []string
	for k := range daemons {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// configFlag parses the `--config FILE` a daemon run alone takes.
func configFlag(name string, args []string) (string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	config := fs.String("config", "", name+" configuration file (JSON, written by docker bottle)")
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if *config == "" || fs.NArg() > 0 {
		return "", fmt.Errorf("usage: bottle-bundle %s --config FILE", name)
	}
	return *config, nil
}

// listenAndServe listens on addr, says so on stderr, and serves until ctx
// ends.
func listenAndServe(ctx context.Context, what, addr string, serve func(context.Context, net.Listener) error) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s: listening on %s: %w", what, addr, err)
	}
	fmt.Fprintf(os.Stderr, "%s listening on %s\n", what, ln.Addr())
	return serve(ctx, ln)
}

// closeInto closes c and adds its error to *err; deferred, it makes a
// daemon's failed Close (its last audit lines lost) the command's error.
func closeInto(err *error, c io.Closer) {
	*err = errors.Join(*err, c.Close())
}
