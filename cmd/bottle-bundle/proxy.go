package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"

	"github.com/docker-bottle/docker-bottle/bundle/proxy"
)

func init() { daemons["proxy"] = runProxy }

// runProxy runs the egress proxy alone: `bottle-bundle proxy --config FILE`.
func runProxy(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	configFile := fs.String("config", "", "proxy configuration file (JSON, written by docker bottle)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *configFile == "" || fs.NArg() > 0 {
		return errors.New("usage: bottle-bundle proxy --config FILE")
	}
	cfg, err := proxy.LoadConfig(*configFile)
	if err != nil {
		return err
	}
	p, err := proxy.New(cfg)
	if err != nil {
		return err
	}
	defer p.Close()
	addr := cfg.Listen
	if addr == "" {
		addr = proxy.DefaultListen
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("egress proxy: listening on %s: %w", addr, err)
	}
	fmt.Fprintf(os.Stderr, "egress proxy listening on %s\n", ln.Addr())
	return p.Serve(ctx, ln)
}
