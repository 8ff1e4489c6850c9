package plugin

import (
	"context"
	"fmt"

	"github.com/docker-bottle/docker-bottle/gitstage"
	"github.com/docker-bottle/docker-bottle/hostcheck"
	"github.com/docker-bottle/docker-bottle/spec"
)

// checkTransport refuses, before anything is made, a run that could not
// be reached from here on the engine at endpoint when the bottle goes
// through the engine (hostcheck.ThroughEngine): published ports
// (refusePorts), and a git that cannot find git-remote-bottle, which the
// bottle's registered remote needs.
func checkTransport(ctx context.Context, endpoint string, ports []spec.Port) error {
	if !hostcheck.ThroughEngine(endpoint) {
		return nil
	}
	if len(ports) > 0 {
		err := refusePorts(endpoint)
		if err == nil {
			// The test switch, on a local engine: the bottle goes
			// through the engine as on a remote one, publishing nothing.
			err = fmt.Errorf("%s=1 takes the bottle through the engine as on a remote engine, so ports are not published", hostcheck.EnvThroughEngine)
		}
		return fmt.Errorf("%w; or leave out -p and the ports of bottle.yaml", err)
	}
	_, err := gitstage.FindRemoteHelper(ctx)
	return err
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
