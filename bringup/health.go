package bringup

import (
	"context"
	"fmt"
	"os"
	"sort"
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
	tok, err := os.ReadFile(p.AgentTokenFile)
	if err != nil {
		return fmt.Errorf("reading the agent token: %w", err)
	}
	c, err := client.New(p.Endpoints.HostSupervise, strings.TrimSpace(string(tok)))
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
