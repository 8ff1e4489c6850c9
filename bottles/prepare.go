package bottles

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/backend"
	"github.com/docker-bottle/docker-bottle/gitstage"
	"github.com/docker-bottle/docker-bottle/pki"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/spec"
	"github.com/docker-bottle/docker-bottle/stage"
)

// PrepareOptions are the inputs of Prepare.
type PrepareOptions struct {
	Spec      spec.Spec // resolved
	NameFlag  string
	Workspace string
	Prompt    string
	Provider  plan.Provider
	Choice    plan.Choice
	DryRun    bool

	// UserConfig is the snapshot of the user's agent settings (a tar).
	UserConfig []byte
	// EngineTLS is the TLS the docker CLI uses for the host of its
	// default context, which the plan records with the host.
	EngineTLS *plan.EngineTLS
}

// Prepare makes the bottle's plan and everything it needs on the host, with
// nothing started: stage dir, tokens, subnet, the user's bottle CA, the
// gate's repository and the git remote the user fetches the agent's work
// from. On error it removes what it made. With DryRun it makes the same
// checks (the repository, the names in use) and only computes the plan.
func (s *Service) Prepare(ctx context.Context, o PrepareOptions) (p plan.Plan, err error) {
	if err := gitstage.CheckWorkTree(ctx, o.Workspace); err != nil {
		return plan.Plan{}, err
	}
	alloc, err := s.allocator()
	if err != nil {
		return plan.Plan{}, err
	}
	p, err = stage.Prepare(ctx, stage.Options{
		Spec: o.Spec, NameFlag: o.NameFlag, Workspace: o.Workspace, Prompt: o.Prompt,
		Provider: o.Provider, Choice: o.Choice, Dirs: s.dirs, Allocator: alloc, DryRun: o.DryRun,
		InUse: s.nameInUse(ctx), UserConfig: o.UserConfig,
	})
	if err != nil {
		return p, err
	}
	p = p.WithStageOnEngine(s.throughEngine())
	if s.cli != nil {
		p.Engine = plan.EnginePlan{Context: s.cli.CurrentContext(), Host: s.cli.DockerEndpoint().Host, TLS: o.EngineTLS}
	}
	if err := s.checkObjectNames(ctx, p); err != nil {
		if !o.DryRun {
			if rerr := s.removeHostSide(context.Background(), p); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}
		return plan.Plan{}, err
	}
	if o.DryRun {
		return p, nil
	}
	defer func() {
		if err != nil {
			if rerr := s.removeHostSide(context.Background(), p); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}
	}()
	s.step("prepare: bottle %s in %s", p.Slug, p.StageDir)
	if n := gitstage.Uncommitted(ctx, p.Workspace); n > 0 {
		s.step("prepare: note: %d uncommitted change(s) in %s stay here: the bottle gets the repository's commits "+
			"(commit or stash them first to give them to the agent)", n, p.Workspace)
	}
	if _, err := pki.LoadOrCreateCA(s.dirs.CA()); err != nil {
		return p, fmt.Errorf("preparing the bottle CA: %w", err)
	}
	if err := copyCA(s.dirs, stage.Of(p)); err != nil {
		return p, fmt.Errorf("giving the bottle the CA certificate: %w", err)
	}
	if err := gitstage.Prepare(ctx, p.Workspace, p.GitGate.Repo); err != nil {
		return p, fmt.Errorf("making the gate's repository: %w", err)
	}
	ref, commit, err := gitstage.Start(ctx, p.GitGate.Repo)
	if err != nil {
		return p, err
	}
	p = p.WithStart(ref, commit)
	if err := stage.Save(p); err != nil {
		return p, err
	}
	if err := gitstage.AddRemote(ctx, p.Workspace, p.GitGate.Remote, s.gateURL(p),
		gitstage.WithFetchRefspecs(gitstage.BottleRefspec(p.Slug))); err != nil {
		return p, fmt.Errorf("registering the git remote %s: %w", p.GitGate.Remote, err)
	}
	return p, nil
}

// gateURL is where the remote registered in the user's repository fetches
// from: the stage's gate repository on this host's disk, or, when the
// bundle is reached through the engine (a remote engine, whose disk this
// host cannot read), bottle::NAME, which git-remote-bottle fetches
// through the engine API.
func (s *Service) gateURL(p plan.Plan) string {
	if p.ThroughEngine() {
		return gitstage.HelperURL(p.Slug)
	}
	return p.GitGate.Repo
}

// gitEndpoint makes git's git-remote-bottle, which a bottle::NAME remote
// runs, reach this service's engine.
func (s *Service) gitEndpoint() gitstage.Option {
	if s.cli == nil {
		return gitstage.WithDockerEndpoint("", "")
	}
	return gitstage.WithDockerEndpoint(s.cli.CurrentContext(), s.cli.DockerEndpoint().Host)
}

// nameInUse reports a bottle name held on the engine or in smolvm by a
// bottle this state dir does not know (one of another DOCKER_CONFIG): the
// engine's and smolvm's names are global, the state dir is not.
func (s *Service) nameInUse(ctx context.Context) func(string) bool {
	var machines map[string]bool
	return func(slug string) bool {
		f := make(client.Filters).Add("label", plan.LabelBottle+"="+slug)
		if cs, err := s.engine.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f}); err == nil && len(cs.Items) > 0 {
			return true
		}
		if ns, err := s.engine.NetworkList(ctx, client.NetworkListOptions{Filters: f}); err == nil && len(ns.Items) > 0 {
			return true
		}
		if vs, err := s.engine.VolumeList(ctx, client.VolumeListOptions{Filters: f}); err == nil && len(vs.Items) > 0 {
			return true
		}
		if s.smolvm == nil {
			return false
		}
		if machines == nil {
			machines = map[string]bool{}
			if ms, err := s.smolvm.MachineList(ctx); err == nil {
				for _, m := range ms {
					machines[m.Name] = true
				}
			}
		}
		return machines["bottle-"+slug]
	}
}

// checkObjectNames refuses engine objects that are not a bottle's yet hold
// a name the plan gives the bottle's own (a user's container or volume
// that happens to be called so): making the bottle would fail half way, or
// mount someone else's volume as the agent's disk.
func (s *Service) checkObjectNames(ctx context.Context, p plan.Plan) error {
	objects := []backend.Object{{Kind: "container", Name: p.Bundle.Container, Role: "bundle"}, {Kind: "network", Name: p.Bundle.Network, Role: "network"}}
	if p.Bundle.StageOnEngine {
		objects = append(objects, backend.Object{Kind: "volume", Name: stage.Volume(p.Slug, plan.RoleStage), Role: "stage"},
			backend.Object{Kind: "volume", Name: stage.Volume(p.Slug, plan.RoleGuest), Role: "guest dir"})
	}
	b, err := s.Backend(p)
	if err != nil {
		return err
	}
	// objectExists knows engine objects only: a machine of that name is
	// smolvm's to refuse.
	for _, o := range append(objects, b.Objects(p)...) {
		if s.objectExists(ctx, o.Kind, o.Name) {
			return fmt.Errorf("a %s named %s exists and is not this bottle's %s: remove or rename it (`docker %s rm %s`), or run the bottle under another --name",
				o.Kind, o.Name, o.Role, o.Kind, o.Name)
		}
	}
	return nil
}

// objectExists reports whether the engine has a container, network or
// volume of exactly that name (the engine's name filters match parts).
func (s *Service) objectExists(ctx context.Context, kind, name string) bool {
	f := make(client.Filters).Add("name", name)
	var names []string
	switch kind {
	case "container":
		cs, err := s.engine.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
		if err != nil {
			return false
		}
		for _, c := range cs.Items {
			names = append(names, c.Names...)
		}
		name = "/" + name
	case "network":
		ns, err := s.engine.NetworkList(ctx, client.NetworkListOptions{Filters: f})
		if err != nil {
			return false
		}
		for _, n := range ns.Items {
			names = append(names, n.Name)
		}
	case "volume":
		vs, err := s.engine.VolumeList(ctx, client.VolumeListOptions{Filters: f})
		if err != nil {
			return false
		}
		for _, v := range vs.Items {
			names = append(names, v.Name)
		}
	}
	return slices.Contains(names, name)
}

// removeHostSide removes what Prepare and the bundle's starts made on the
// host: the git remote, the subnet reservation, the operator token and
// the stage dir.
func (s *Service) removeHostSide(ctx context.Context, p plan.Plan) error {
	var errs []error
	if err := stage.RemoveOperatorToken(p); err != nil {
		errs = append(errs, err)
	}
	if p.Workspace != "" && p.GitGate.Remote != "" {
		if err := gitstage.RemoveRemote(ctx, p.Workspace, p.GitGate.Remote); err != nil && !os.IsNotExist(err) {
			errs = append(errs, err)
		}
	}
	if alloc, err := s.allocator(); err == nil {
		if err := alloc.Release(p.Bundle.Reserved, p.Slug); err != nil {
			errs = append(errs, err)
		}
	}
	if p.StageDir != "" {
		if err := stage.Of(p).Remove(); err != nil {
			errs = append(errs, fmt.Errorf("removing the stage dir: %w", err))
		}
	}
	return errors.Join(errs...)
}
