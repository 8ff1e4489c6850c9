package bottles

import (
	"context"
	"fmt"

	dockerbackend "github.com/docker-bottle/docker-bottle/backend/docker"
	"github.com/docker-bottle/docker-bottle/bringup"
	"github.com/docker-bottle/docker-bottle/hostcheck"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/stage"
)

// BringUpOptions tune the bundle's bring-up.
type BringUpOptions struct {
	// ExtraCAFile is trusted by the proxy in addition to the host's roots.
	ExtraCAFile string
}

// BringUp writes the bundle's configuration and brings the bundle up,
// then saves and returns the plan completed with the bundle's endpoints.
// On error nothing of the bundle is left on the engine.
func (s *Service) BringUp(ctx context.Context, p plan.Plan, o BringUpOptions) (plan.Plan, error) {
	mounts, err := bringup.WriteConfig(p, bringup.ConfigOptions{CADir: s.dirs.CA(), ExtraCAFile: o.ExtraCAFile, Getenv: s.getenv})
	if err != nil {
		return p, err
	}
	alloc, err := s.allocator()
	if err != nil {
		return p, err
	}
	q, err := bringup.Up(ctx, s.engine, bringup.Options{
		Plan: p, Mounts: mounts, Health: s.health(), Version: s.version, Progress: s.progress, Allocator: alloc,
		Getenv: s.getenv, CADir: s.dirs.CA(),
	})
	if err != nil {
		// Bring-up may have moved the bottle to another subnet before it
		// failed: the plan on disk must say so, or removing the bottle
		// releases the planned subnet and leaves the one it holds.
		if q.Bundle.Reserved != p.Bundle.Reserved {
			if serr := stage.Save(q); serr != nil {
				err = fmt.Errorf("%w (and saving the plan failed: %v)", err, serr)
			}
		}
		return q, err
	}
	if err := stage.Save(q); err != nil {
		return q, fmt.Errorf("saving the plan: %w", err)
	}
	return q, nil
}

// throughEngine says whether a bottle this service makes goes through
// the engine API (hostcheck.ThroughEngine); one made without a docker CLI
// talks to the local engine. The plan records it (plan.Plan.ThroughEngine)
// for the bottle's later commands.
func (s *Service) throughEngine() bool {
	return s.cli != nil && hostcheck.ThroughEngine(s.cli.DockerEndpoint().Host)
}

// health is how bring-up asks the bundle whether it is healthy: at its
// published supervisor port, or through the engine API when the plan goes
// through the engine (plan.Plan.ThroughEngine).
func (s *Service) health() func(context.Context, plan.Plan) error {
	e, ok := s.engine.(dockerbackend.ExecEngine)
	if !ok {
		return bringup.Health
	}
	through := bringup.HealthThrough(func(p plan.Plan) bringup.DialFunc {
		return dockerbackend.DialContext(e, p.Bundle.Container, bringup.BinaryPath, plan.SupervisePort)
	})
	return func(ctx context.Context, p plan.Plan) error {
		if p.ThroughEngine() {
			return through(ctx, p)
		}
		return bringup.Health(ctx, p)
	}
}
