package bringup

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/docker-bottle/docker-bottle/bundle/supervisor/client"
	"github.com/docker-bottle/docker-bottle/plan"
)

// Health asks the bundle's supervisor, at its published port, whether all
// three daemons are healthy. It asks with the agent's token, which the
// health route takes: the operator's token goes only where it must.
func Health(ctx context.Context, p plan.Plan) error {
	if p.Endpoints == nil || p.Endpoints.HostSupervise == "" {
		return fmt.Errorf("the bundle of %s has no published supervisor port", p.Slug)
	}
	return health(ctx, p, p.Endpoints.HostSupervise)
}

// DialFunc connects to the bundle's supervisor whatever address is asked,
// as a net/http transport's DialContext (backend/docker's DialContext: an
// exec in the bundle through the engine API).
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// HealthThrough is Health for a bundle reached through the engine API, as
// on a remote engine, whose published ports are on a loopback the client
// cannot reach: dial gives a connection to p's supervisor.
func HealthThrough(dial func(p plan.Plan) DialFunc) func(ctx context.Context, p plan.Plan) error {
	return func(ctx context.Context, p plan.Plan) error {
		// Each connection is an exec: this one is for this answer only.
		hc := &http.Client{Transport: &http.Transport{Proxy: nil, DialContext: dial(p), DisableKeepAlives: true}}
		// The address names the bundle in messages; dial ignores it.
		return health(ctx, p, net.JoinHostPort(p.Bundle.Container, strconv.Itoa(plan.SupervisePort)), client.WithHTTPClient(hc))
	}
}

func health(ctx context.Context, p plan.Plan, addr string, opts ...client.Option) error {
	tok, err := os.ReadFile(p.AgentTokenFile)
	if err != nil {
		return fmt.Errorf("reading the agent token: %w", err)
	}
	c, err := client.New(addr, strings.TrimSpace(string(tok)), opts...)
	if err != nil {
		return err
	}
	h, err := c.Health(ctx)
	if err != nil {
		return err
	}
	if h.OK {
		return nil
	}
	var bad []string
	for name, d := range h.Daemons {
		if !d.OK {
			bad = append(bad, name+": "+d.Error)
		}
	}
	sort.Strings(bad)
	return fmt.Errorf("not healthy: %s", strings.Join(bad, "; "))
}
