package supervisor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/docker-bottle/docker-bottle/bundle/approval"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor/api"
)

// Who or what settled a request, in audit lines and events.
const (
	byOperator   = "operator"   // a human, with the operator's token
	byRemembered = "remembered" // an earlier allow-always for the same kind, subject and scope
	byPolicy     = "policy"     // the kind is not held, or the timeout is 0
	byLimit      = "limit"      // too many requests pending
	byTimeout    = "timeout"    // no one decided in time
	byRequester  = "requester"  // the asker gave up (its context ended)
	byShutdown   = "shutdown"   // the bundle is stopping
)

// Event types the supervisor emits.
const (
	EventApprovalPending = "approval.pending"
	EventApprovalDecided = "approval.decided"
)

// Bounds on a request's fields, so that one request cannot fill memory.
const (
	maxSubject = 1024
	maxDetail  = 4096
)

// alwaysKey is what an allow-always remembers: the kind, the subject and
// the request's scope (for a push, which protected paths with which
// contents), so that it allows exactly the same request again.
type alwaysKey struct {
	kind    approval.Kind
	subject string
	scope   string
}

func keyOf(req approval.Request) alwaysKey { return alwaysKey{req.Kind, req.Subject, req.Scope} }

type pending struct {
	a   api.Approval
	key alwaysKey
	// waiters are the askers waiting for this request: the same request
	// asked again while it is held (two hooks for one tool call, two
	// connections to one host) joins it rather than asking twice.
	waiters int
	out     outcome       // set once, before done is closed
	done    chan struct{} // closed by whoever settles the request
}

// outcome is how a request was settled.
type outcome struct {
	d          approval.Decision
	by, reason string
}

// ErrNotPending is returned by Resolve for an id that is not held (never
// was, or was decided, timed out or withdrawn).
var ErrNotPending = errors.New("no such pending approval")

// Decide holds req until the operator decides, the policy's timeout denies
// it, or ctx ends (then the request is withdrawn and ctx's error returned).
// Requests of a kind the policy does not hold, and every request when the
// timeout is 0, are denied at once; an allow-always given earlier for the
// same kind, subject and scope allows at once. Every outcome is an audit
// line and an event.
//
// A request no one decided in time is denied with approval.ErrNoDecision,
// whichever deadline passed first: the policy's or ctx's; one not held for
// a human at all (policy, limit, shutdown) with approval.ErrNotHeld.
func (s *Supervisor) Decide(ctx context.Context, req approval.Request) (approval.Decision, error) {
	o, _, err := s.decide(ctx, req)
	if err == nil {
		switch o.by {
		case byTimeout:
			err = approval.ErrNoDecision
		case byPolicy, byLimit, byShutdown:
			err = fmt.Errorf("%w: %s", approval.ErrNotHeld, o.reason)
		}
	}
	return o.d, err
}

// noDecision is the reason of a request denied at its deadline.
func noDecision(waited time.Duration) string {
	return fmt.Sprintf("no decision in time: no one decided within %s", waited.Round(time.Millisecond))
}

// decide is Decide that also says who settled the request, why, and the
// request's id when it was held.
func (s *Supervisor) decide(ctx context.Context, req approval.Request) (outcome, string, error) {
	if err := checkRequest(req); err != nil {
		return outcome{d: approval.Deny}, "", err
	}
	now := time.Now().UTC()
	p := &pending{
		a: api.Approval{
			Kind: req.Kind, Subject: req.Subject, Detail: req.Detail, Requester: req.Requester, Since: now,
		},
		key:  keyOf(req),
		done: make(chan struct{}),
	}
	key := p.key
	timeout := s.cfg.Approvals.timeout()

	s.mu.Lock()
	var by, reason string
	decision := approval.Deny
	switch {
	case s.closed:
		by, reason = byShutdown, "the bundle is stopping"
	case s.always[key]:
		decision, by, reason = approval.AllowAlways, byRemembered, "allowed always earlier in this bottle's life"
	case !s.cfg.Approvals.asks(req.Kind):
		by, reason = byPolicy, fmt.Sprintf("%s requests are not sent for approval in this bottle", req.Kind)
	case timeout == 0:
		by, reason = byPolicy, "the approval timeout is 0 (unattended run): denied without asking"
	case s.joinable(req) != nil:
		p = s.joinable(req)
		p.waiters++
	case s.pendingOf(req.Kind) >= s.limits.MaxPendingPerKind:
		by, reason = byLimit, fmt.Sprintf("%d %s requests are already waiting for a decision", s.pendingOf(req.Kind), req.Kind)
	case len(s.pending) >= s.limits.MaxPending:
		by, reason = byLimit, fmt.Sprintf("%d requests are already waiting for a decision", len(s.pending))
	default:
		p.a.ID = newID()
		p.a.Deadline = now.Add(timeout)
		// The asker may give up sooner (the gate and the proxy have
		// deadlines of their own): the human sees the earlier one.
		if dl, ok := ctx.Deadline(); ok && dl.Before(p.a.Deadline) {
			p.a.Deadline = dl
		}
		p.waiters = 1
		s.pending[p.a.ID] = p
		// Recorded under the lock, so that its line comes before the
		// decision's whoever decides.
		s.asked(p.a)
	}
	s.mu.Unlock()
	if p.a.ID == "" {
		s.settle(p, decision, by, reason)
		<-p.done
		return p.out, "", nil
	}

	// Every waiter keeps the request's deadline: whichever of them sees it
	// pass first denies the request for all.
	timer := time.NewTimer(time.Until(p.a.Deadline))
	defer timer.Stop()
	select {
	case <-p.done:
		return p.out, p.a.ID, nil
	case <-timer.C:
		if s.take(p.a.ID) {
			s.settle(p, approval.Deny, byTimeout, noDecision(time.Since(p.a.Since)))
		}
		<-p.done
		return p.out, p.a.ID, nil
	case <-ctx.Done():
		// The asker's deadline passing is no decision in time, as the
		// policy's is; being cancelled is withdrawing the request.
		timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded)
		switch s.leave(p) {
		case lastWaiter:
			if timedOut {
				s.settle(p, approval.Deny, byTimeout, noDecision(time.Since(p.a.Since)))
				<-p.done
				return p.out, p.a.ID, nil
			}
			s.settle(p, approval.Deny, byRequester, fmt.Sprintf("the request was withdrawn (%v)", ctx.Err()))
			<-p.done
			return p.out, p.a.ID, ctx.Err()
		case othersWait:
			// The request stays for the others; this asker gave up.
			if timedOut {
				return outcome{d: approval.Deny, by: byTimeout, reason: noDecision(time.Since(p.a.Since))}, p.a.ID, nil
			}
			return outcome{d: approval.Deny, by: byRequester, reason: "withdrawn"}, p.a.ID, ctx.Err()
		}
		// Decided meanwhile: the decision stands, and is already recorded.
		<-p.done
		return p.out, p.a.ID, nil
	}
}

// joinable is the held request that req repeats (same kind, subject, scope
// and detail, from the same address on another connection), if any. Call
// with s.mu held.
func (s *Supervisor) joinable(req approval.Request) *pending {
	for _, p := range s.pending {
		if p.key == keyOf(req) && p.a.Detail == req.Detail &&
			withoutPort(p.a.Requester) == withoutPort(req.Requester) {
			return p
		}
	}
	return nil
}

// pendingOf counts the held requests of kind k. Call with s.mu held.
func (s *Supervisor) pendingOf(k approval.Kind) int {
	n := 0
	for _, p := range s.pending {
		if p.a.Kind == k {
			n++
		}
	}
	return n
}

// withoutPort drops a trailing ":port" from a requester ("agent
// 10.0.0.3:41234", "10.0.0.3:41234"): each connection has its own port.
func withoutPort(requester string) string {
	i := strings.LastIndexByte(requester, ':')
	if i < 0 {
		return requester
	}
	if _, err := strconv.Atoi(requester[i+1:]); err != nil {
		return requester
	}
	return requester[:i]
}

// What leave found.
const (
	settledMeanwhile = iota
	lastWaiter       // the request was taken: the caller settles it
	othersWait       // other askers still wait for it
)

// leave is a waiter giving up on p.
func (s *Supervisor) leave(p *pending) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending[p.a.ID] != p {
		return settledMeanwhile
	}
	p.waiters--
	if p.waiters > 0 {
		return othersWait
	}
	delete(s.pending, p.a.ID)
	return lastWaiter
}

// Resolve is the operator's decision on a pending request. An allow-always
// is remembered for the bottle's lifetime and also settles the other
// requests pending for the same kind, subject and scope.
func (s *Supervisor) Resolve(id string, d approval.Decision) (api.Decided, error) {
	switch d {
	case approval.AllowOnce, approval.AllowAlways, approval.Deny:
	default:
		return api.Decided{}, fmt.Errorf("decision %q is not one of allow-once, allow-always, deny", d)
	}
	s.mu.Lock()
	p, ok := s.pending[id]
	if !ok {
		s.mu.Unlock()
		return api.Decided{}, ErrNotPending
	}
	delete(s.pending, id)
	var same []*pending
	if d == approval.AllowAlways {
		s.always[p.key] = true
		for oid, o := range s.pending {
			if o.key == p.key {
				delete(s.pending, oid)
				same = append(same, o)
			}
		}
	}
	s.mu.Unlock()
	s.settle(p, d, byOperator, "")
	for _, o := range same {
		s.settle(o, approval.AllowAlways, byRemembered, "allowed always by the decision on "+id)
	}
	return api.Decided{Approval: p.a, Decision: d}, nil
}

// Pending lists the requests waiting for a decision, oldest first.
func (s *Supervisor) Pending() []api.Approval {
	s.mu.Lock()
	out := make([]api.Approval, 0, len(s.pending))
	for _, p := range s.pending {
		out = append(out, p.a)
	}
	s.mu.Unlock()
	sortApprovals(out)
	return out
}

func sortApprovals(a []api.Approval) {
	// Insertion sort: the list is bounded by MaxPending.
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && (a[j].Since.Before(a[j-1].Since) ||
			a[j].Since.Equal(a[j-1].Since) && a[j].ID < a[j-1].ID); j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}

// take removes id from the pending map and reports whether it was there:
// whoever takes a request settles it, exactly once.
func (s *Supervisor) take(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.pending[id]; !ok {
		return false
	}
	delete(s.pending, id)
	return true
}

// settle records the outcome (audit line, then event) and hands it to the
// asker. Recording first means the asker, once answered, finds the line.
func (s *Supervisor) settle(p *pending, d approval.Decision, by, reason string) {
	now := time.Now().UTC()
	rec := s.record("approval.decided", p.a, string(d), by, reason)
	rec.Time = now.Format(time.RFC3339Nano)
	if !p.a.Since.IsZero() {
		rec.WaitedMS = float64(now.Sub(p.a.Since).Microseconds()) / 1000
	}
	s.writeAudit(rec)
	data, _ := json.Marshal(decidedData{Decided: api.Decided{Approval: p.a, Decision: d}, By: by, Reason: reason})
	msg := fmt.Sprintf("%s %s: %s (%s)", p.a.Kind, p.a.Subject, d, by)
	if by == byTimeout {
		msg = fmt.Sprintf("%s %s: denied, %s", p.a.Kind, p.a.Subject, reason)
	} else if reason != "" {
		msg += ": " + reason
	}
	s.Emit(api.Event{Time: now, Source: api.SourceSupervisor, Type: EventApprovalDecided, Message: msg, Data: data})
	p.out = outcome{d, by, reason}
	close(p.done)
}

// asked records a request that is now held.
func (s *Supervisor) asked(a api.Approval) {
	rec := s.record("approval.pending", a, "pending", "", "")
	rec.Time = a.Since.Format(time.RFC3339Nano)
	s.writeAudit(rec)
	data, _ := json.Marshal(a)
	msg := fmt.Sprintf("%s %s is waiting for a decision until %s (id %s)",
		a.Kind, a.Subject, a.Deadline.Format(time.RFC3339), a.ID)
	s.Emit(api.Event{Time: a.Since, Source: api.SourceSupervisor, Type: EventApprovalPending, Message: msg, Data: data})
}

// decidedData is the Data of an approval.decided event.
type decidedData struct {
	api.Decided
	By     string `json:"by"`
	Reason string `json:"reason,omitempty"`
}

// auditRecord is one of the supervisor's audit lines. Decision is
// "pending" when a request is held, then "allow-once", "allow-always" or
// "deny" when it is settled; By says who settled it.
type auditRecord struct {
	Time      string        `json:"time"`
	Daemon    string        `json:"daemon"`
	Bottle    string        `json:"bottle,omitempty"`
	Event     string        `json:"event"`
	ID        string        `json:"id,omitempty"`
	Kind      approval.Kind `json:"kind"`
	Subject   string        `json:"subject"`
	Detail    string        `json:"detail,omitempty"`
	Requester string        `json:"requester,omitempty"`
	Decision  string        `json:"decision"`
	By        string        `json:"by,omitempty"`
	Reason    string        `json:"reason,omitempty"`
	WaitedMS  float64       `json:"waited_ms,omitempty"`
}

func (s *Supervisor) record(event string, a api.Approval, decision, by, reason string) auditRecord {
	return auditRecord{
		Daemon: api.SourceSupervisor, Bottle: s.cfg.Bottle, Event: event,
		ID: a.ID, Kind: a.Kind, Subject: a.Subject, Detail: a.Detail, Requester: a.Requester,
		Decision: decision, By: by, Reason: reason,
	}
}

func checkRequest(r approval.Request) error {
	switch r.Kind {
	case approval.Egress, approval.Push, approval.Tool:
	default:
		return fmt.Errorf("approval kind %q is not one of egress, push, tool", r.Kind)
	}
	if r.Subject == "" {
		return errors.New("an approval request needs a subject")
	}
	if len(r.Subject) > maxSubject || len(r.Detail) > maxDetail || len(r.Requester) > maxSubject {
		return fmt.Errorf("approval request for %.64q is too large", r.Subject)
	}
	return nil
}

// newID returns 128 random bits in hex: ids are capabilities of a sort
// (deciding still needs the operator's token), so they must not be guessed.
func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails since Go 1.24
	return hex.EncodeToString(b)
}
