package plugin

import (
	"context"
	"fmt"

	"github.com/docker-bottle/docker-bottle/gitstage"
	"github.com/docker-bottle/docker-bottle/hostcheck"
	"github.com/docker-bottle/docker-bottle/spec"
)

// checkTransport refuses, before anything is made, a run that could not
// be reached from here on the engine at endpoint: published ports on a
// remote engine (refusePorts), and, when bundles are reached through the
// engine API, a git that cannot find git-remote-bottle, which the
// bottle's registered remote needs.
func checkTransport(ctx context.Context, endpoint string, ports []spec.Port) error {
	if len(ports) > 0 {
		if err := refusePorts(endpoint); err != nil {
			return fmt.Errorf("%w; or leave out -p and the ports of bottle.yaml", err)
		}
	}
	if hostcheck.ThroughEngine(endpoint) {
		if _, err := gitstage.FindRemoteHelper(ctx); err != nil {
			return err
		}
	}
	return nil
}

// refusePorts refuses the agent's published ports on a remote engine: the
// engine publishes them on its own host's loopback, which this machine
// cannot reach, and binding them anywhere else would open them to that
// host's network. Refused, they are not listed where nothing answers.
func refusePorts(endpoint string) error {
	if !hostcheck.IsRemote(endpoint) {
		return nil
	}
	return fmt.Errorf("the engine at %s is on another host: it would publish the agent's ports on that host's loopback, "+
		"which this machine cannot reach, so ports are not published on a remote engine; "+
		"run the bottle on a local context (`docker --context default bottle run`) to reach its ports", endpoint)
}
