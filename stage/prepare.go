package stage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/spec"
)

// Options are the inputs of Prepare.
type Options struct {
	Spec      spec.Spec // resolved
	NameFlag  string
	Workspace string
	Prompt    string // text of the prompt, "" for none
	Provider  plan.Provider
	Choice    plan.Choice
	Dirs      Dirs
	Allocator *Allocator
	// DryRun computes the plan and writes nothing.
	DryRun bool
	Now    func() time.Time
	// InUse reports a name that bottles of another state dir (another
	// DOCKER_CONFIG) hold on the same engine or smolvm, whose object names
	// are global; nil checks only this state dir.
	InUse func(slug string) bool

	// UserConfig is the snapshot of the user's agent settings (package
	// agentconf's tar), nil for none.
	UserConfig []byte
}

// Prepare makes the plan: it claims the bottle's name by creating its stage
// dir, writes the prompt and token files, reserves a subnet and saves the
// plan. With DryRun it only computes. On error it removes what it made.
func Prepare(ctx context.Context, o Options) (p plan.Plan, err error) {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	taken := func(slug string) bool {
		return o.Dirs.Stage(slug).Exists() || o.InUse != nil && o.InUse(slug)
	}
	var claim func(string) error
	if !o.DryRun {
		if err := Ensure(o.Dirs.Bottles()); err != nil {
			return plan.Plan{}, fmt.Errorf("making the bottles dir: %w", err)
		}
		claim = func(slug string) error { return o.Dirs.Stage(slug).Claim() }
	}
	slug, err := plan.ClaimSlug(o.NameFlag, o.Spec.Name, o.Workspace, taken, claim)
	if err != nil {
		return plan.Plan{}, err
	}
	dir := o.Dirs.Stage(slug)
	if !o.DryRun {
		defer func() {
			if err != nil {
				_ = dir.Remove() // best effort: err is what to report
			}
		}()
	}

	var sub plan.Subnet
	if o.DryRun {
		sub, err = o.Allocator.Peek(ctx)
	} else {
		sub, err = o.Allocator.Reserve(ctx, slug)
		if err == nil {
			defer func() {
				if err != nil {
					if rerr := o.Allocator.Release(sub.Prefix, slug); rerr != nil {
						err = errors.Join(err, rerr)
					}
				}
			}()
		}
	}
	if err != nil {
		return plan.Plan{}, fmt.Errorf("allocating the bundle subnet: %w", err)
	}

	p, err = plan.New(plan.Options{
		Spec: o.Spec, Slug: slug, Workspace: o.Workspace, Provider: o.Provider, Choice: o.Choice,
		Created: now(), Subnet: sub.Prefix, Files: dir.Files(),
	})
	if err != nil || o.DryRun {
		return p, err
	}
	if err := dir.fill([]byte(o.Prompt), o.UserConfig); err != nil {
		return plan.Plan{}, err
	}
	if err := dir.Save(p); err != nil {
		return plan.Plan{}, err
	}
	return p, nil
}
