// Package bottles carries out the operations on bottles that the commands
// ask for (prepare, bring-up, run, list, remove), one file per operation,
// on top of the parts: plan, gitstage, bringup, the image pipeline and the
// backends.
package bottles

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"

	"github.com/docker/cli/cli/command"
	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/backend"
	_ "github.com/docker-bottle/docker-bottle/backend/docker" // the backends a plan can name
	_ "github.com/docker-bottle/docker-bottle/backend/smolvm"
	"github.com/docker-bottle/docker-bottle/bringup"
	"github.com/docker-bottle/docker-bottle/display"
	"github.com/docker-bottle/docker-bottle/image"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/smolvm"
	"github.com/docker-bottle/docker-bottle/stage"
)

// Engine is what the operations ask of the engine.
type Engine interface {
	bringup.Engine
	backend.Engine
	ContainerStop(ctx context.Context, containerID string, options client.ContainerStopOptions) (client.ContainerStopResult, error)
}

// Service does the operations for one docker CLI context. Make it with
// New; it owns what it works with.
type Service struct {
	engine  Engine
	dirs    stage.Dirs
	version string
	// progress receives one line per step; nil discards.
	progress io.Writer
	// getenv reads the host's environment (secrets); nil means os.Getenv.
	getenv func(string) string
	// smolvm is the smolvm CLI; nil when smolvm is not installed.
	smolvm *smolvm.CLI
	// cli is the running docker CLI, whose container commands attach to
	// the agent and whose settings build and push images; nil where
	// nothing attaches or builds.
	cli command.Cli

	mode    string          // the progress display's (New)
	display display.Display // nil until a pipeline or JSON needs one
	pipe    *image.Pipeline // made on first use (pipeline)
}

// Backend is the backend the bottle's plan names.
func (s *Service) Backend(p plan.Plan) (backend.Backend, error) {
	return backend.For(p, s.deps())
}

func (s *Service) deps() backend.Deps {
	return backend.Deps{Engine: s.engine, CLI: s.cli, Smolvm: s.smolvm, Step: s.step}
}

// ErrNotFound means no bottle has that name.
var ErrNotFound = errors.New("no such bottle")

// Load reads the plan of the bottle called name.
func (s *Service) Load(name string) (plan.Plan, error) {
	dir := s.dirs.Stage(name)
	if _, err := os.Stat(dir.File(stage.PlanFile)); errors.Is(err, fs.ErrNotExist) {
		return plan.Plan{}, fmt.Errorf("%w: %s (see `docker bottle ls -a`)", ErrNotFound, name)
	}
	return dir.Load()
}

// List reads the plans of every bottle, by name.
func (s *Service) List() ([]plan.Plan, error) {
	entries, err := os.ReadDir(s.dirs.Bottles())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ps []plan.Plan
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		p, err := s.dirs.Stage(e.Name()).Load()
		if err != nil {
			continue // a bottle being prepared right now has no plan yet
		}
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].Slug < ps[j].Slug })
	return ps, nil
}

// allocator is the subnet allocator shared by every bottle of these dirs;
// a reservation whose bottle is gone is reclaimed.
func (s *Service) allocator() (*stage.Allocator, error) {
	pool, err := stage.PoolFromEnv()
	if err != nil {
		return nil, err
	}
	return &stage.Allocator{
		Pool:   pool,
		Dir:    s.dirs.Subnets(),
		Engine: s.engine,
		Alive: func(owner string) bool {
			_, err := os.Stat(s.dirs.Stage(owner).Path())
			return err == nil
		},
	}, nil
}

func (s *Service) step(format string, args ...any) {
	if w := s.stepOut(); w != nil {
		fmt.Fprintf(w, format+"\n", args...)
	}
}
