package plugin

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-bottle/docker-bottle/backend"
	"github.com/docker-bottle/docker-bottle/bottles"
	"github.com/docker-bottle/docker-bottle/gitstage"
	"github.com/docker-bottle/docker-bottle/hostcheck"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/provider"
	"github.com/docker-bottle/docker-bottle/smolvm"
	"github.com/docker-bottle/docker-bottle/spec"
	"github.com/docker-bottle/docker-bottle/stage"
)

// specOptions are the flags every command that reads bottle.yaml shares.
type specOptions struct {
	file string
}

// loadedSpec is a spec file read, flags applied and defaults resolved.
type loadedSpec struct {
	path     string // "" when there is no file
	spec     spec.Spec
	provider provider.Provider
}

// loadSpec reads -f FILE, or bottle.yaml in dir when present, applies the
// flags' overrides and fills the provider's defaults.
func loadSpec(opts specOptions, dir string, o spec.Overrides) (loadedSpec, error) {
	path := opts.file
	if path == "" {
		candidate := filepath.Join(dir, spec.DefaultFile)
		if _, err := os.Stat(candidate); err == nil {
			path = candidate
		} else if !errors.Is(err, fs.ErrNotExist) {
			return loadedSpec{}, fmt.Errorf("looking for %s: %w", candidate, err)
		}
	}
	s := &spec.Spec{}
	if path != "" {
		var err error
		if s, err = spec.Load(path); err != nil {
			return loadedSpec{}, err
		}
	}
	applied, err := s.Apply(o)
	if err != nil {
		return loadedSpec{}, err
	}
	p, err := provider.Get(applied.Agent.Provider)
	if err != nil {
		return loadedSpec{}, err
	}
	d := p.Defaults
	d.ProtectFiles = spec.RepoFiles(repoRoot(dir), spec.Base(path, dir), path, applied)
	return loadedSpec{path: path, spec: applied.Resolve(d), provider: p}, nil
}

// repoRoot is the top of the git work tree dir is in (protected paths are
// relative to it), or dir itself outside one.
func repoRoot(dir string) string {
	if root, err := gitstage.TopLevel(context.Background(), dir); err == nil {
		return root
	}
	return dir
}

// gatherFacts looks at the engine, smolvm and the hypervisor, and where
// smolvm could run, whether a microVM boots: a recent verdict is reused
// unless fresh (doctor asks afresh).
func gatherFacts(ctx context.Context, dockerCli command.Cli, fresh bool) plan.Facts {
	f := hostcheck.Gather(ctx, dockerCli, smolvmFacts)
	if f.Smolvm.Found && f.Smolvm.Error == "" && f.Hypervisor.Usable {
		state := ""
		if dirs, err := stage.DefaultDirs(); err == nil && stage.Ensure(dirs.State) == nil {
			state = dirs.State
		}
		f.Hypervisor = hostcheck.Boot(ctx, smolvm.New(f.Smolvm.Path), f.Hypervisor, state, fresh)
	}
	return f
}

// smolvmFacts finds smolvm ($DOCKER_BOTTLE_SMOLVM or PATH) and checks its
// version against the gates of smolvm-cli.md.
func smolvmFacts(ctx context.Context) plan.SmolvmFacts {
	path, err := smolvm.Lookup()
	if errors.Is(err, smolvm.ErrNotFound) {
		return plan.SmolvmFacts{}
	}
	if err != nil {
		return plan.SmolvmFacts{Found: true, Path: os.Getenv(smolvm.EnvBinary), Error: err.Error()}
	}
	f := plan.SmolvmFacts{Found: true, Path: path}
	v, err := smolvm.New(path).Version(ctx)
	if err != nil {
		f.Error = err.Error()
		return f
	}
	f.Version = v.String()
	warning, err := v.Check()
	if err != nil {
		f.Error = err.Error()
	}
	f.Warning = warning
	return f
}

// agentOf loads a bottle whose agent exists, and its backend.
func agentOf(dockerCli command.Cli, name string) (plan.Plan, backend.Backend, error) {
	svc, err := bottles.New(dockerCli)
	if err != nil {
		return plan.Plan{}, nil, err
	}
	p, err := svc.Load(name)
	if err != nil {
		return p, nil, err
	}
	if !p.AgentCreated {
		return p, nil, fmt.Errorf("bottle %s has no agent yet (its run did not get that far): `docker bottle rm %s`", name, name)
	}
	b, err := svc.Backend(p)
	return p, b, err
}

// exitStatus turns a command's exit code in a bottle into ours.
func exitStatus(code int, err error) error {
	if err != nil {
		return err
	}
	if code != 0 {
		return cli.StatusError{StatusCode: code}
	}
	return nil
}

// completeBottles completes bottle names.
func completeBottles(dockerCli command.Cli) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		svc, err := bottles.New(dockerCli)
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		ps, _ := svc.List()
		var names []string
		for _, p := range ps {
			if strings.HasPrefix(p.Slug, toComplete) {
				names = append(names, p.Slug)
			}
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}
