package main

import (
	"context"
	"flag"
	"fmt"
	"net"

	"github.com/docker-bottle/docker-bottle/bundle/gate"
)

func init() { daemons["gate"] = runGate }

// runGate runs the git gate alone: `bottle-bundle gate --config FILE`.
func runGate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gate", flag.ContinueOnError)
	config := fs.String("config", "", "path of the gate's JSON configuration")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *config == "" || fs.NArg() > 0 {
		return fmt.Errorf("usage: bottle-bundle gate --config FILE")
	}
	cfg, err := gate.LoadConfig(*config)
	if err != nil {
		return err
	}
	g, err := gate.New(cfg)
	if err != nil {
		return err
	}
	defer g.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("git gate: %w", err)
	}
	return g.Serve(ctx, ln)
}
