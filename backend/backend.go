// Package backend launches and manages the agent of a bottle where it runs:
// a smolvm microVM (backend/smolvm), or a hardened container on the engine
// (backend/docker). Each implements Backend, as buildx's drivers implement
// its driver interface; For picks the one a plan names, so the lifecycle
// code never asks which it has.
package backend

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sort"
	"sync"

	"github.com/docker/cli/cli/command"

	"github.com/docker-bottle/docker-bottle/image"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/smolvm"
	"github.com/docker-bottle/docker-bottle/spec"
)

// States of the agent that every backend reports (a backend may report
// others, as the engine or smolvm names them).
const (
	StateRunning = "running"
	StateMissing = "missing"
)

// Backend is what the bottle's lifecycle asks of the place its agent runs.
// Every method takes the bottle's plan, which names the agent's container or
// machine.
type Backend interface {
	// Image makes the agent image this backend runs from req (which
	// carries the bottle layer) for the engine's arch, through pipe.
	Image(ctx context.Context, pipe *image.Pipeline, req image.Request, arch string) (Built, error)
	// Create makes the agent, not started, from the agent image the
	// pipeline made. It returns the plan with what it recorded; it calls
	// o.Record once the agent may exist, so removal finds it.
	Create(ctx context.Context, p plan.Plan, o CreateOptions) (plan.Plan, error)
	// Launch runs the agent's command the first time: detached, it returns
	// once the agent runs; attached, when the agent ends or the user
	// detaches.
	Launch(ctx context.Context, p plan.Plan, o LaunchOptions) (Exit, error)
	// Start starts a stopped agent again, in the background, running its
	// command again as a container does.
	Start(ctx context.Context, p plan.Plan) error
	// Stop stops the agent; it can be started again.
	Stop(ctx context.Context, p plan.Plan) error
	// Attach attaches the streams to the running agent.
	Attach(ctx context.Context, p plan.Plan, o AttachOptions) (Exit, error)
	// Exec runs a command next to the agent, with the agent's network
	// (guest.Exec), and returns its exit code.
	Exec(ctx context.Context, p plan.Plan, o ExecOptions) (int, error)
	// Logs writes the agent's output and returns the exit code of the
	// command that read it.
	Logs(ctx context.Context, p plan.Plan, o LogsOptions) (int, error)
	// Status is the agent's state: StateRunning, StateMissing when it does
	// not exist, or what its container or machine reports.
	Status(ctx context.Context, p plan.Plan) string
	// Remove removes the agent and its disk; a missing agent is not an
	// error.
	Remove(ctx context.Context, p plan.Plan) error
	// Objects are what the agent is, takes the names of, or was made
	// from, the agent first.
	Objects(p plan.Plan) []Object
	// Describe is one line about the agent's place for the dry run's plan:
	// a key and its value.
	Describe(p plan.Plan) (key, value string)
	// HostAddr is the host as the agent's network sees it: where a
	// service on the host's loopback would answer the agent, were it
	// exposed.
	HostAddr(p plan.Plan) netip.Addr
}

// Object is something a backend makes or uses for a bottle, by kind (an
// engine object's kind, KindMachine or KindArtifact) and name, with its
// role in the bottle.
type Object struct {
	Kind, Name, Role string
}

// Kinds of Object that are not the engine's.
const (
	KindMachine = "machine"
	// KindArtifact is a cached artifact the agent was made from (prune
	// keeps it).
	KindArtifact = "artifact"
)

// Exit is how the agent's run or attach ended.
type Exit struct {
	// Code is the agent's exit code.
	Code int
	// Detached: the user detached (Ctrl-P Ctrl-Q); the agent keeps running.
	Detached bool
	// Launched: the agent was started, even if Launch then failed (what the
	// run made is kept for the user then).
	Launched bool
}

// Built is an agent image ready for a backend's Create.
type Built struct {
	// Tag is the image with its bottle layer in the engine (docker).
	Tag string `json:"tag,omitempty"`
	// Artifact is the .smolmachine sidecar (smolvm).
	Artifact string `json:"artifact,omitempty"`
	// Image is the agent image in the engine and User its USER (smolvm).
	Image string `json:"image,omitempty"`
	User  string `json:"user,omitempty"`
	// CacheHit says nothing was built, pushed or packed.
	CacheHit bool `json:"cache_hit"`
}

// CreateOptions say what the agent is made from and how it runs.
type CreateOptions struct {
	Image Built
	// Command replaces the image's entrypoint and command.
	Command     []string
	TTY         bool
	Interactive bool
	// Detach: the agent starts in the background, with no one attached.
	// The docker backend then gives it a terminal and an open stdin, as
	// `docker run -dit` does, so that a later attach can type to it and
	// detach with Ctrl-P Ctrl-Q (smolvm runs every agent in a terminal
	// session already).
	Detach bool
	// Memory (bytes) and CPUs bound the agent (0: defaults).
	Memory int64
	CPUs   int
	Labels map[string]string
	// Record saves the plan as a bottle whose agent exists (required).
	Record func(plan.Plan) (plan.Plan, error)
}

// LaunchOptions say how the agent's command runs the first time.
type LaunchOptions struct {
	// Command is the agent's command (smolvm runs it in a session; a
	// container has it from Create).
	Command     []string
	Detach      bool
	TTY         bool
	Interactive bool
	Streams
}

// Streams are the user's side of the agent's terminal.
type Streams struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// AttachOptions say how `docker bottle attach` attaches.
type AttachOptions struct {
	// TTY: the user's side is a terminal (smolvm; a container keeps the
	// terminal it was made with).
	TTY bool
	Streams
}

// ExecOptions say how `docker bottle exec` runs a command next to the
// agent.
type ExecOptions struct {
	Command []string
	// Env are the user's variables: KEY=VALUE, or KEY for the caller's
	// value.
	Env         []string
	Workdir     string
	TTY         bool
	Interactive bool
	Streams
}

// ExitReporter is a Backend that can say how its agent ended: the exit code
// of an agent that ran and ended (ok is false while it runs, before it
// ran, or when its backend does not know).
type ExitReporter interface {
	ExitCode(ctx context.Context, p plan.Plan) (code int, ok bool)
}

// PortPublisher is a Backend that publishes the agent's ports itself, fixed
// when the agent is made (smolvm's --port on the host's loopback); the
// agent of any other backend is reached through the bundle's relay.
type PortPublisher interface {
	// PublishedPorts are the agent's ports with their host ports.
	PublishedPorts(p plan.Plan) ([]spec.Port, error)
}

// Dialer is a Backend that reaches the bundle's services through the
// engine API, one exec in the bundle per connection (as `kubectl
// port-forward` reaches a pod's port), rather than through the ports the
// bundle publishes on the host's loopback, which a remote engine's host
// has and the client does not.
type Dialer interface {
	// Dial connects to port (plan.SupervisePort, plan.GatePort,
	// plan.ProxyPort) in the bundle's network namespace.
	Dial(ctx context.Context, p plan.Plan, port int) (net.Conn, error)
}

// LogsOptions say which of the agent's output `docker bottle logs` shows.
type LogsOptions struct {
	Follow bool
	// Tail is the number of lines from the end, or "all".
	Tail string
	// Timestamps, Since and Until are docker logs' (the docker backend's).
	Timestamps   bool
	Since, Until string
	Stdout       io.Writer
	Stderr       io.Writer
}

// Deps are what backends are made with.
type Deps struct {
	// Engine is the engine of the current context.
	Engine Engine
	// CLI is the running docker CLI, whose container commands attach,
	// exec and show logs in process; nil where nothing attaches.
	CLI command.Cli
	// Smolvm is the smolvm CLI; nil when smolvm is not installed.
	Smolvm *smolvm.CLI
	// Step prints one progress line; nil prints nothing.
	Step func(format string, args ...any)
}

// StepError says which step of a run failed.
type StepError struct {
	Step string
	Err  error
}

func (e *StepError) Error() string { return fmt.Sprintf("%s failed: %v", e.Step, e.Err) }
func (e *StepError) Unwrap() error { return e.Err }

var (
	mu        sync.Mutex
	factories = map[string]func(Deps) Backend{}
)

// Register makes a backend known by the name a plan gives it
// (spec.BackendDocker, spec.BackendSmolvm); the backend's package does it
// when imported.
func Register(name string, f func(Deps) Backend) {
	mu.Lock()
	defer mu.Unlock()
	if _, ok := factories[name]; ok {
		panic("backend " + name + " registered twice")
	}
	factories[name] = f
}

// For is the backend the plan names, made with d.
func For(p plan.Plan, d Deps) (Backend, error) {
	b, err := Named(p.Backend, d)
	if err != nil {
		return nil, fmt.Errorf("bottle %s: %w", p.Slug, err)
	}
	return b, nil
}

// Named is the backend called name, made with d.
func Named(name string, d Deps) (Backend, error) {
	mu.Lock()
	f, ok := factories[name]
	mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("backend %q is not one this docker bottle knows (%v)", name, names())
	}
	return f(d), nil
}

func names() []string {
	mu.Lock()
	defer mu.Unlock()
	var ns []string
	for n := range factories {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return ns
}
