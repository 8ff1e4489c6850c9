package main

import (
	"context"
	"errors"
)

// runSleep waits until it is stopped: the workload that keeps a smolvm
// machine up while the agent runs through `machine exec`, without needing a
// sleep binary in the agent's image.
func runSleep(ctx context.Context, args []string) error {
	if len(args) > 0 {
		return errors.New("usage: bottle-bundle sleep")
	}
	<-ctx.Done()
	return nil
}
