// Command bottle-probe holds the tools of `docker bottle check` and of the
// end-to-end tests: the probe agent, which plays a hostile agent and tries
// every way out of its bottle, and the stand-in upstream hosts. They live
// apart from the bundle's binary, so that neither the sidecar nor the
// helper in every agent image carries the probe's git, ssh and openpgp
// code.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
)

var tools = map[string]func(ctx context.Context, args []string) error{
	"probe":    runProbe,
	"upstream": runUpstream,
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) < 2 || tools[os.Args[1]] == nil {
		names := make([]string, 0, len(tools))
		for n := range tools {
			names = append(names, n)
		}
		slices.Sort(names)
		fmt.Fprintf(os.Stderr, "usage: bottle-probe {%s} [flags]\n", strings.Join(names, "|"))
		os.Exit(2)
	}
	if err := tools[os.Args[1]](ctx, os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "bottle-probe %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
