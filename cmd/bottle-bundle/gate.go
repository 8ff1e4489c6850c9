package main

import (
	"context"

	"github.com/docker-bottle/docker-bottle/bundle/gate"
)

// runGate runs the git gate alone: `bottle-bundle gate --config FILE`.
func runGate(ctx context.Context, args []string) (err error) {
	file, err := configFlag("gate", args)
	if err != nil {
		return err
	}
	cfg, err := gate.LoadConfig(file)
	if err != nil {
		return err
	}
	g, err := gate.New(cfg, gate.WithMemoryLimit(applyMemoryLimit()))
	if err != nil {
		return err
	}
	defer closeInto(&err, g)
	return listenAndServe(ctx, "git gate", cfg.Listen, g.Serve)
}
