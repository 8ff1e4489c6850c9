package main

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/docker/cli/cli"

	"github.com/docker-bottle/docker-bottle/plugin"
)

func TestExitCode(t *testing.T) {
	cases := []struct {
		err  error
		want int
	}{
		{errors.New("boom"), 1},
		{cli.StatusError{StatusCode: 125, Status: "bad flag"}, 125},
		{fmt.Errorf("wrapped: %w", cli.StatusError{StatusCode: 3}), 3},
		{cli.StatusError{}, 1},
		{fmt.Errorf("bring-up: %w", context.Canceled), 130},
		{fmt.Errorf("%w: waiting for the bundle", plugin.ErrInterrupted), 130},
	}
	for _, c := range cases {
		if got := exitCode(c.err); got != c.want {
			t.Errorf("exitCode(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}
