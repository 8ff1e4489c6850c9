// Package api is the supervisor's HTTP contract: its routes and the JSON
// values they carry. The supervisor serves it and the client package calls
// it; both import only this, so the plugin side can read the bundle's
// supervisor without importing the daemon.
//
// Every route needs a bottle token, as the password of HTTP Basic or as a
// Bearer token. The agent's token may post events, ask for a tool approval
// (POST /v1/approvals, which answers once the request is settled), list
// pending approvals and read health; the operator's token may do
// everything. No token but the operator's may decide a request. Lists are JSON
// arrays; with ?follow=1 the events and audit routes stream instead, as
// newline-delimited JSON (Content-Type application/x-ndjson): first what is
// kept after ?after=SEQ, then each new item as it arrives, until the client
// goes away.
package api

import (
	"encoding/json"
	"net/url"
	"time"

	"github.com/docker-bottle/docker-bottle/bundle/approval"
)

// Routes.
const (
	PathHealth    = "/v1/health"
	PathEvents    = "/v1/events"
	PathApprovals = "/v1/approvals"
	PathAudit     = "/v1/audit"
)

// Query parameters of the events and audit routes.
const (
	// QueryFollow ("1") streams newline-delimited JSON until the client
	// goes away.
	QueryFollow = "follow"
	// QueryAfter returns only items whose sequence number is greater.
	QueryAfter = "after"
)

// ContentTypeNDJSON is the type of a followed stream.
const ContentTypeNDJSON = "application/x-ndjson"

// Event sources the supervisor sets itself.
const (
	SourceAgent      = "agent"      // posted with the agent's token
	SourceOperator   = "operator"   // posted with the operator's token
	SourceSupervisor = "supervisor" // approvals
)

// Event is one thing that happened in the bottle: posted by the agent's
// hooks, emitted by the proxy, the gate or the supervisor.
type Event struct {
	// Seq orders events; the supervisor assigns it (increasing, from 1).
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	// Source says who emitted the event. For posted events the supervisor
	// sets it from the token, so the agent cannot pose as a daemon.
	Source string `json:"source"`
	// Type is short and dotted, e.g. "tool.use" or "approval.decided".
	Type    string `json:"type"`
	Message string `json:"message,omitempty"`
	// Data is any JSON value the emitter attaches.
	Data json.RawMessage `json:"data,omitempty"`
}

// Approval is a request held for a human.
type Approval struct {
	// ID is random and unguessable; deciding needs it and the operator's
	// token.
	ID        string        `json:"id"`
	Kind      approval.Kind `json:"kind"`
	Subject   string        `json:"subject"`
	Detail    string        `json:"detail,omitempty"`
	Requester string        `json:"requester,omitempty"`
	Since     time.Time     `json:"since"`
	// Deadline is when the request is denied if no one decides.
	Deadline time.Time `json:"deadline"`
}

// AskRequest is the body of POST /v1/approvals: the agent's hooks ask
// before a tool call. Only kind "tool" may be asked this way; egress and
// push requests come from the proxy and the gate themselves.
type AskRequest struct {
	Kind approval.Kind `json:"kind"`
	// Subject names the call, short and stable ("Bash(git push)"): an
	// allow-always decision matches later requests on it.
	Subject string `json:"subject"`
	Detail  string `json:"detail,omitempty"`
}

// Answer is the answer to an AskRequest, sent once the request is settled:
// by the operator, by the timeout (deny), or at once by the policy.
type Answer struct {
	// ID is the request's id while it was held; empty when the policy
	// settled it without holding it.
	ID       string            `json:"id,omitempty"`
	Decision approval.Decision `json:"decision"`
	// By says who settled it: "operator", "remembered", "policy", "limit",
	// "timeout" or "shutdown".
	By     string `json:"by"`
	Reason string `json:"reason,omitempty"`
}

// DecideRequest is the body of POST /v1/approvals/{id}.
type DecideRequest struct {
	Decision approval.Decision `json:"decision"`
}

// Decided is the answer to a decision: the request and what became of it.
type Decided struct {
	Approval
	Decision approval.Decision `json:"decision"`
}

// AuditEntry is one line of the merged audit stream.
type AuditEntry struct {
	Seq uint64 `json:"seq"`
	// Source is the daemon whose audit log wrote the line: "proxy",
	// "gate" or "supervisor".
	Source string `json:"source"`
	// Record is the line itself, a JSON object with at least "time".
	Record json.RawMessage `json:"record"`
}

// Health is the answer of GET /v1/health: 200 when every daemon is
// healthy, 503 otherwise.
type Health struct {
	OK      bool                    `json:"ok"`
	Bottle  string                  `json:"bottle,omitempty"`
	Daemons map[string]DaemonHealth `json:"daemons"`
}

// DaemonHealth is one daemon's state.
type DaemonHealth struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// Error is the body of every error answer.
type Error struct {
	Error string `json:"error"`
}

// ApprovalPath is the route of one approval.
func ApprovalPath(id string) string { return PathApprovals + "/" + url.PathEscape(id) }
