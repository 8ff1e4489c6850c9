package bottles

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker-bottle/docker-bottle/backend"
	"github.com/docker-bottle/docker-bottle/image"
	"github.com/docker-bottle/docker-bottle/image/layer"
	"github.com/docker-bottle/docker-bottle/internal/bundlebin"
	"github.com/docker-bottle/docker-bottle/pki"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/provider"
	"github.com/docker-bottle/docker-bottle/provider/guest"
	"github.com/docker-bottle/docker-bottle/spec"
	"github.com/docker-bottle/docker-bottle/stage"
)

// RunOptions say what `docker bottle run` does.
type RunOptions struct {
	Prepare PrepareOptions
	// Image is the agent image request (a Dockerfile to build or an image);
	// Run fills in the bottle layer.
	Image image.Request
	// Pipeline builds and packs images; nil: the service's own.
	Pipeline *image.Pipeline
	// Command is what the agent container or machine runs; nil means the
	// provider's bootstrap (clone the workspace, then start the agent).
	Command []string
	// Files are added to the bottle layer (a provider's in-guest settings).
	Files  []layer.File
	Detach bool
	TTY    bool
	// Interactive passes the user's stdin to the agent.
	Interactive bool
	// Remove removes the bottle when the agent exits (--rm).
	Remove bool
	// KeepOnFailure keeps what a failed run made, for debugging.
	KeepOnFailure bool
	// Arch is the engine's architecture (the bottle binary's); "": the
	// engine is asked.
	Arch string
	// BringUp tunes the bundle.
	BringUp BringUpOptions
	// BeforeLaunch runs once the bundle is up and before the agent starts
	// (check uses it to put its stand-in hosts on the bundle's network).
	BeforeLaunch func(ctx context.Context, p plan.Plan) error
	// Streams of the agent; nil means the process's own.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// RunResult is what a run ends with.
type RunResult struct {
	Plan     plan.Plan
	ExitCode int
	// Detached: the user detached from the agent (Ctrl-P Ctrl-Q), which
	// keeps running; --rm leaves the bottle then.
	Detached bool
}

// StepError says which step of a run failed.
type StepError = backend.StepError

// Run prepares a bottle, brings its bundle up, makes the agent image and
// launches the agent; attached, it returns the agent's exit code. Any
// failure or interrupt before the agent runs removes what the run made,
// unless KeepOnFailure.
func (s *Service) Run(ctx context.Context, o RunOptions) (res RunResult, err error) {
	p, err := s.Prepare(ctx, o.Prepare)
	if err != nil {
		return res, &StepError{Step: "preparing the bottle", Err: err}
	}
	res.Plan = p
	if o.Prepare.DryRun {
		return res, nil
	}
	launched := false
	defer func() {
		if err == nil || launched || o.KeepOnFailure {
			return
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		if rerr := s.Remove(cctx, p.Slug, false); rerr != nil {
			err = fmt.Errorf("%w (removing what the run made also failed: %v)", err, rerr)
		}
	}()

	s.step("bundle: bringing up the proxy, the git gate and the supervisor")
	if p, err = s.BringUp(ctx, p, o.BringUp); err != nil {
		return res, &StepError{Step: "bringing the bundle up", Err: err}
	}
	res.Plan = p
	if o.BeforeLaunch != nil {
		if err := o.BeforeLaunch(ctx, p); err != nil {
			return res, &StepError{Step: "preparing the launch", Err: err}
		}
	}
	if o.Stdin == nil {
		o.Stdin = os.Stdin
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}

	if o.Arch, err = s.arch(ctx, o.Arch); err != nil {
		return res, &StepError{Step: "asking the engine for its architecture", Err: err}
	}
	req, err := s.agentImageRequest(o)
	if err != nil {
		return res, &StepError{Step: "preparing the bottle layer", Err: err}
	}
	if o.Command == nil {
		o.Command = provider.Bootstrap(p.Agent)
	}
	b, err := s.Backend(p)
	if err != nil {
		return res, &StepError{Step: "launching the agent", Err: err}
	}
	built, err := s.image(ctx, b, o, req)
	if err != nil {
		return res, err
	}
	s.announceApprovals(p)
	co := backend.CreateOptions{
		Image:   built,
		Command: o.Command, TTY: o.TTY, Interactive: o.Interactive, Detach: o.Detach, CPUs: p.Spec.Resources.CPUs,
		Labels: map[string]string{plan.LabelBottle: p.Slug, plan.LabelRole: plan.RoleAgent, plan.LabelVersion: s.version},
		Record: s.agentCreated,
	}
	if m := p.Spec.Resources.Memory; m != nil {
		co.Memory = int64(*m)
	}
	if p, err = b.Create(ctx, p, co); err != nil {
		return res, err
	}
	res.Plan = p
	ex, err := b.Launch(ctx, p, backend.LaunchOptions{Command: o.Command, Detach: o.Detach, TTY: o.TTY, Interactive: o.Interactive,
		Streams: backend.Streams{Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr}})
	launched = ex.Launched
	if err != nil {
		return res, err
	}
	res.ExitCode, res.Detached = ex.Code, ex.Detached
	if o.Remove && !res.Detached {
		if err := s.Remove(context.WithoutCancel(ctx), p.Slug, false); err != nil {
			return res, &StepError{Step: "removing the bottle (--rm)", Err: err}
		}
	}
	return res, nil
}

// announceApprovals says, before the agent takes the terminal, where the
// requests it holds for a human can be decided: the agent's terminal is
// the agent's, so the question cannot be asked there.
func (s *Service) announceApprovals(p plan.Plan) {
	sup := p.Spec.Supervise
	if len(sup.Approvals) == 0 || (sup.Timeout != nil && *sup.Timeout == 0) {
		return
	}
	wait := spec.DefaultApprovalTimeout
	if sup.Timeout != nil {
		wait = time.Duration(*sup.Timeout)
	}
	s.step("supervise: %s requests wait up to %s for your decision: run `docker bottle approvals -i %s` in another terminal",
		strings.Join(sup.Approvals, ", "), wait, p.Slug)
}

// Built is an agent image ready for a backend.
type Built = backend.Built

// Build makes the agent image for a backend (`docker bottle build`, and
// the image step of a run): with its bottle layer in the engine for the
// docker backend, packed into a cached artifact for smolvm.
func (s *Service) Build(ctx context.Context, backendName string, o RunOptions) (Built, error) {
	b, err := backend.Named(backendName, s.deps())
	if err != nil {
		return Built{}, err
	}
	if o.Arch, err = s.arch(ctx, o.Arch); err != nil {
		return Built{}, &StepError{Step: "asking the engine for its architecture", Err: err}
	}
	req, err := s.agentImageRequest(o)
	if err != nil {
		return Built{}, &StepError{Step: "preparing the bottle layer", Err: err}
	}
	return s.image(ctx, b, o, req)
}

// image makes the agent image with the backend b, on the pipeline of o,
// else the service's.
func (s *Service) image(ctx context.Context, b backend.Backend, o RunOptions, req image.Request) (Built, error) {
	pipe, err := s.pipeline(ctx, o.Pipeline)
	if err != nil {
		return Built{}, &StepError{Step: "making the image pipeline", Err: err}
	}
	return b.Image(ctx, pipe, req, o.Arch)
}

// agentCreated records in the saved plan that the agent's container or
// machine exists.
func (s *Service) agentCreated(p plan.Plan) (plan.Plan, error) {
	p.AgentCreated = true
	if err := stage.Save(p); err != nil {
		return p, &StepError{Step: "saving the plan", Err: err}
	}
	return p, nil
}

// agentImageRequest completes the image request with the bottle layer: the
// CA in the image's trust stores and in one bundle file, and the bottle
// binary.
func (s *Service) agentImageRequest(o RunOptions) (image.Request, error) {
	req := o.Image
	ca, err := pki.LoadCA(filepath.Join(s.dirs.CA(), pki.CertFile), filepath.Join(s.dirs.CA(), pki.KeyFile))
	if err != nil {
		return req, err
	}
	bin, err := bundlebin.Binary(o.Arch)
	if err != nil {
		return req, err
	}
	req.Bottle = layer.Spec{
		CA:         ca.CertPEM(),
		BundleFile: plan.GuestCABundle,
		Files:      append([]layer.File{{Path: guest.HelperPath, Mode: 0o755, Content: bin}}, o.Files...),
		// The agent's own disk is mounted at these; they must be its
		// user's, whichever user the image runs as.
		OwnedDirs: []string{plan.GuestWorkspace},
		OwnHome:   true,
		RootUser:  backend.RootStandIn,
	}
	if req.Build == nil && req.Image == "" {
		return req, errors.New("no agent image: give agent.image or a Dockerfile")
	}
	return req, nil
}

// copyCA puts the bottle CA certificate into the guest dir.
func copyCA(dirs stage.Dirs, dir stage.Dir) error {
	ca, err := pki.LoadCA(filepath.Join(dirs.CA(), pki.CertFile), filepath.Join(dirs.CA(), pki.KeyFile))
	if err != nil {
		return err
	}
	return dir.WriteGuestFile(filepath.Base(stage.GuestCA), ca.CertPEM())
}
