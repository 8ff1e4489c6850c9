package main

import (
	"context"

	"github.com/docker-bottle/docker-bottle/bundle/supervisor"
)

// runSupervisor runs the supervisor alone: `bottle-bundle supervisor
// --config FILE`. Alone it has no proxy or gate to ask it, so it serves
// events, approvals (empty) and health for itself.
func runSupervisor(ctx context.Context, args []string) (err error) {
	file, err := configFlag("supervisor", args)
	if err != nil {
		return err
	}
	cfg, err := supervisor.LoadConfig(file)
	if err != nil {
		return err
	}
	s, err := supervisor.New(cfg)
	if err != nil {
		return err
	}
	defer closeInto(&err, s)
	return listenAndServe(ctx, "supervisor", orDefault(cfg.Listen, supervisor.DefaultListen), s.Serve)
}
