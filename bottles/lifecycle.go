package bottles

import (
	"context"
	"errors"
	"fmt"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/backend"
	"github.com/docker-bottle/docker-bottle/bringup"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/stage"
)

// States of a bottle's parts, and of the bottle as a whole.
const (
	StateRunning = backend.StateRunning
	StateExited  = "exited"
	StateCreated = "created"
	StateMissing = backend.StateMissing
	// StatePartial: the bundle and the agent disagree (one runs, the
	// other does not).
	StatePartial = "partial"
)

// Status is what a bottle's parts are doing.
type Status struct {
	Plan   plan.Plan `json:"-"`
	Bundle string    `json:"bundle"`
	Agent  string    `json:"agent"`
	State  string    `json:"state"`
}

// Running reports whether any part of the bottle runs.
func (st Status) Running() bool { return st.Bundle == StateRunning || st.Agent == StateRunning }

// Status asks the engine (and smolvm) about the bottle's bundle and agent.
func (s *Service) Status(ctx context.Context, p plan.Plan) Status {
	st := Status{Plan: p, Bundle: s.containerState(ctx, p.Bundle.Container), Agent: StateMissing}
	if p.AgentCreated {
		if b, err := s.Backend(p); err == nil {
			st.Agent = b.Status(ctx, p)
		}
	}
	switch {
	case st.Bundle == st.Agent:
		st.State = st.Bundle
	case !p.AgentCreated:
		st.State = StateCreated
		if st.Bundle == StateRunning {
			st.State = "bundle up"
		}
	case st.Bundle == StateRunning || st.Agent == StateRunning:
		st.State = StatePartial
	default:
		st.State = st.Agent
	}
	return st
}

func (s *Service) containerState(ctx context.Context, name string) string {
	res, err := s.engine.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil || res.Container.State == nil {
		return StateMissing
	}
	return string(res.Container.State.Status)
}

// Stop stops the bottle's agent and bundle; both can be started again.
func (s *Service) Stop(ctx context.Context, name string) error {
	p, err := s.Load(name)
	if err != nil {
		return err
	}
	var errs []error
	if p.AgentCreated {
		b, err := s.Backend(p)
		if err == nil {
			err = b.Stop(ctx, p)
		}
		errs = append(errs, err)
	}
	errs = append(errs, s.stopContainer(ctx, p.Bundle.Container))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("stopping bottle %s: %w", name, err)
	}
	return nil
}

func (s *Service) stopContainer(ctx context.Context, name string) error {
	timeout := 10
	_, err := s.engine.ContainerStop(ctx, name, client.ContainerStopOptions{Timeout: &timeout})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return err
	}
	return nil
}

// Start starts a stopped bottle again: the bundle, on its host ports or,
// when another process took one meanwhile, made again on free ones
// (bringup.Restart), its published ports read back into the saved plan,
// and then the agent, in the background. A smolvm agent runs its command
// again in a new session, as a container does; in loopback mode the
// session gets the bundle's new ports through exec's env, which wins over
// the machine's recorded env. A docker-backend agent reaches the bundle on
// the internal network, whatever its host ports.
func (s *Service) Start(ctx context.Context, name string) (plan.Plan, error) {
	p, err := s.Load(name)
	if err != nil {
		return p, err
	}
	if err := bringup.Restart(ctx, s.engine, p, func(m string) { s.step("bundle: %s", m) }); err != nil {
		return p, err
	}
	if err := s.sendSecrets(ctx, p); err != nil {
		return p, err
	}
	q, err := bringup.Reconnect(ctx, s.engine, p, 30*time.Second, s.health())
	if err != nil {
		return p, err
	}
	if err := stage.Save(q); err != nil {
		return q, err
	}
	if q.AgentCreated {
		b, err := s.Backend(q)
		if err != nil {
			return q, err
		}
		if err := b.Start(ctx, q); err != nil {
			return q, fmt.Errorf("starting the agent of %s: %w", name, err)
		}
	}
	return q, nil
}

// sendSecrets gives p's started bundle its secrets again, with a new
// operator token: its tmpfs starts empty. A bundle made before the secrets
// went to the bundle's memory still reads them from its stage dir, and
// keeps its operator token: the user is told how to move it on.
func (s *Service) sendSecrets(ctx context.Context, p plan.Plan) error {
	onDisk, err := bringup.SecretsOnDisk(ctx, s.engine, p)
	if err != nil {
		return err
	}
	if onDisk {
		s.step("bundle: note: %s was made by an older docker bottle, which keeps its secrets in its stage dir "+
			"and its operator token unchanged: remove it (docker bottle rm %s) and run it again to keep them in memory only", p.Slug, p.Slug)
		return nil
	}
	return bringup.SendSecrets(ctx, s.engine, p, s.dirs.CA(), s.getenv)
}
