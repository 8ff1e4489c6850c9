// Package dashboard is `docker bottle dashboard`: one screen over every
// bottle of a state dir that says which one needs its user. The State
// (state.go) and the poll (poll.go) hold no terminal, so tests drive them
// with fakes; the Bubble Tea program (ui.go, view.go) shows them.
//
// The dashboard reads bottles only through a Source, which the command
// implements with the bottles service and the supervisors' operator API.
package dashboard

import (
	"context"
	"time"

	"github.com/docker-bottle/docker-bottle/bundle/approval"
)

// Source is where the dashboard reads bottles and what it acts on them
// with. Every text it returns that came from a bottle (branch, events,
// requests, output) must already be safe for a terminal: the agent is
// hostile, and the dashboard shows text as it gets it.
type Source interface {
	// List names the bottles of the state dir.
	List(ctx context.Context) ([]string, error)
	// Inspect reads what the engine says of one bottle.
	Inspect(ctx context.Context, name string) (Facts, error)
	// Supervisor returns the bottle's supervisor, or an error saying why
	// it cannot be asked.
	Supervisor(ctx context.Context, name string) (Supervisor, error)
	// Decide settles a held request of a bottle as `approvals -i` does:
	// the outcome in words for the user, or an error.
	Decide(ctx context.Context, name, id string, d approval.Decision) (string, error)
	// Stop, Start and Remove act on a bottle as the commands of those
	// names do; Remove removes a running bottle too.
	Stop(ctx context.Context, name string) error
	Start(ctx context.Context, name string) error
	Remove(ctx context.Context, name string) error
}

// Supervisor is one bottle's supervisor, asked with the operator's token.
type Supervisor interface {
	// Held lists the requests waiting for a decision.
	Held(ctx context.Context) ([]Held, error)
	// Events lists the events with a sequence number greater than after.
	Events(ctx context.Context, after uint64) ([]Line, error)
	// Audit lists the lines of the merged audit after after.
	Audit(ctx context.Context, after uint64) ([]Line, error)
	// Health says which daemons of the bundle fail; "" when all run.
	Health(ctx context.Context) (string, error)
}

// Facts is what the engine says of one bottle.
type Facts struct {
	Name string
	// Repo is the repository the bottle works on (its workspace path) and
	// Branch the branch the agent pushes to.
	Repo, Branch string
	Backend      string
	Created      time.Time
	// AgentCreated: the run got as far as making the agent.
	AgentCreated bool
	// Agent is the agent's state as the engine or smolvm says it
	// (running, exited, created, missing, ...).
	Agent string
	// ExitCode is the agent's when it exited; -1 when not known.
	ExitCode int
	// Serving: the bundle runs, so its supervisor can be asked.
	Serving bool
	// Failed says why the bottle failed for good ("" when it did not):
	// its bundle died and will not be restarted.
	Failed string
	// LastLine is the agent's last line of output, when it is cheap to
	// read (the docker backend); "" otherwise.
	LastLine string
	// Usage is the CPU and memory the bottle uses, as far as known.
	Usage Usage
}

// Held is a request a bottle holds for a decision.
type Held struct {
	Bottle string
	ID     string
	// Kind is egress, push or tool.
	Kind approval.Kind
	// Subject is what exactly is asked: host and port, the pushed ref,
	// the tool call; Detail adds the rest (protected paths touched, the
	// tool's arguments).
	Subject, Detail string
	Requester       string
	Since, Deadline time.Time
}

// Line is one entry of a bottle's feed: an event or an audit line.
type Line struct {
	Seq  uint64
	Time time.Time
	// Source is who wrote it: agent, proxy, gate, supervisor, ...
	Source string
	// Type is the event's type ("hook.Stop", "approval.decided") or the
	// audit line's decision ("allow", "deny").
	Type string
	Text string
}
