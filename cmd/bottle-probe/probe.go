package main

import (
	"context"
	"os"

	"github.com/docker-bottle/docker-bottle/probe/agent"
)

// runProbe plays the agent: `bottle-probe probe [flags]` tries every way
// out of the bottle and prints one JSON report on stdout (see probe/agent).
func runProbe(ctx context.Context, args []string) error {
	return agent.Main(ctx, args, os.Stdout, os.Stderr)
}
