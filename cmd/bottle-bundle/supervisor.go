package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"

	"github.com/docker-bottle/docker-bottle/bundle/supervisor"
)

func init() { daemons["supervisor"] = runSupervisor }

// runSupervisor runs the supervisor alone: `bottle-bundle supervisor
// --config FILE`. Alone it has no proxy or gate to ask it, so it serves
// events, approvals (empty) and health for itself.
func runSupervisor(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("supervisor", flag.ContinueOnError)
	configFile := fs.String("config", "", "supervisor configuration file (JSON, written by docker bottle)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *configFile == "" || fs.NArg() > 0 {
		return errors.New("usage: bottle-bundle supervisor --config FILE")
	}
	cfg, err := supervisor.LoadConfig(*configFile)
	if err != nil {
		return err
	}
	s, err := supervisor.New(cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	addr := cfg.Listen
	if addr == "" {
		addr = supervisor.DefaultListen
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("supervisor: listening on %s: %w", addr, err)
	}
	fmt.Fprintf(os.Stderr, "supervisor listening on %s\n", ln.Addr())
	return s.Serve(ctx, ln)
}
