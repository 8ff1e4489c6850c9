// Package approval is the hook through which a bundle daemon holds a request
// for a human: the proxy for a host not on the allowlist, the gate for a push
// that touches a protected path. The supervisor implements Decider; the
// daemons only ask.
package approval

import (
	"context"
	"errors"
)

// Kind says which daemon asks.
type Kind string

const (
	// Egress is a connection to a host the egress rules do not list.
	Egress Kind = "egress"
	// Push is a git push the gate's rules would refuse (protected path).
	Push Kind = "push"
	// Tool is an agent tool call that the spec sends for approval.
	Tool Kind = "tool"
)

// Request is what a human is asked to decide.
type Request struct {
	Kind Kind `json:"kind"`
	// Subject is what is asked for, short and stable, e.g. "example.com:443"
	// or "refs/heads/bottle/x/fix". Allow-always decisions match on Kind,
	// Subject and Scope.
	Subject string `json:"subject"`
	// Scope narrows what an allow-always covers to requests with the same
	// Scope: the gate gives a digest of the protected paths a push changes
	// and their contents, so that allowing one push always does not allow
	// every later push to the ref.
	Scope string `json:"scope,omitempty"`
	// Detail is a human-readable elaboration, e.g. the protected paths a
	// push touches.
	Detail string `json:"detail,omitempty"`
	// Requester names who asks: a client address or a component.
	Requester string `json:"requester,omitempty"`
}

// Decision is a human's answer (or the timeout's).
type Decision string

// The decisions: refuse, allow this request, allow the rule for good.
const (
	Deny        Decision = "deny"
	AllowOnce   Decision = "allow-once"
	AllowAlways Decision = "allow-always"
)

// Allowed reports whether the decision lets the request through.
func (d Decision) Allowed() bool { return d == AllowOnce || d == AllowAlways }

// ErrNoDecision comes with a Deny when no one decided in time: the request
// was not refused by a human, and must not be reported as if it were.
var ErrNoDecision = errors.New("no decision in time")

// ErrNotHeld comes with a Deny when the request was not held for a human
// at all (the policy does not ask for its kind, too many wait already, the
// bundle is stopping): no human refused it either.
var ErrNotHeld = errors.New("not held for a decision")

// Decider holds a request until a decision is made or ctx ends. An error or
// an ended context means deny; callers must treat them so.
type Decider interface {
	Decide(ctx context.Context, req Request) (Decision, error)
}

// DeciderFunc adapts a function to Decider.
type DeciderFunc func(ctx context.Context, req Request) (Decision, error)

// Decide calls f.
func (f DeciderFunc) Decide(ctx context.Context, req Request) (Decision, error) { return f(ctx, req) }
