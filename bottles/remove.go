package bottles

import (
	"context"
	"errors"
	"fmt"

	"github.com/docker-bottle/docker-bottle/bringup"
)

// Remove removes everything the bottle called name made: its containers
// and networks on the engine, the git remote in the user's repository, its
// subnet reservation and its stage dir (unless keepStage). Removing a
// bottle that is half gone finishes the job.
func (s *Service) Remove(ctx context.Context, name string, keepStage bool) error {
	p, err := s.Load(name)
	if err != nil {
		return err
	}
	var errs []error
	if p.AgentCreated {
		b, err := s.Backend(p)
		if err == nil {
			err = b.Remove(ctx, p)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := bringup.Down(ctx, s.engine, p.Slug); err != nil {
		errs = append(errs, err)
	}
	if keepStage {
		p.StageDir = ""
	}
	if err := s.removeHostSide(ctx, p); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("removing bottle %s: %w", name, err)
	}
	return nil
}
