package main

import (
	"context"

	"github.com/docker-bottle/docker-bottle/bundle/proxy"
)

// runProxy runs the egress proxy alone: `bottle-bundle proxy --config FILE`.
func runProxy(ctx context.Context, args []string) (err error) {
	file, err := configFlag("proxy", args)
	if err != nil {
		return err
	}
	cfg, err := proxy.LoadConfig(file)
	if err != nil {
		return err
	}
	p, err := proxy.New(cfg)
	if err != nil {
		return err
	}
	defer closeInto(&err, p)
	return listenAndServe(ctx, "egress proxy", orDefault(cfg.Listen, proxy.DefaultListen), p.Serve)
}
