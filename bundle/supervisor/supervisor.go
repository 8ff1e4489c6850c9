// Package supervisor is the bundle's control plane: the health of the three
// daemons, the events the agent's hooks post and the daemons emit, the
// approvals the proxy and the gate hold for a human, and the merged audit
// stream. It serves them over HTTP (see the api package) to the plugin on
// the host and, for posting events, to the agent.
//
// Two tokens make two roles. The agent's token, which is inside the bottle,
// may post events and list pending approvals; only the operator's token,
// which stays on the host, may decide an approval or read events and the
// audit. An agent can therefore never approve its own request.
package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/docker-bottle/docker-bottle/bundle/approval"
	"github.com/docker-bottle/docker-bottle/bundle/audit"
	"github.com/docker-bottle/docker-bottle/bundle/listen"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor/api"
)

// Event is an event as the API carries it; the bundle's daemons Emit them.
type Event = api.Event

// Supervisor holds the bottle's approvals, events and merged audit. It is
// safe for concurrent use.
type Supervisor struct {
	cfg        Config
	limits     Limits
	agentToken string
	// operatorToken is read again from its file when it changes: the
	// plugin mints a new one at each start of the bundle, and the one
	// before is refused from then on, even by a bundle that kept running.
	operatorToken tokenFile
	log           *slog.Logger
	audit         *audit.Logger // the supervisor's own lines; nil without a file

	events    *feed[api.Event]
	auditFeed *feed[api.AuditEntry]
	followers chan struct{} // one slot per open live stream
	agentReqs chan struct{} // one slot per agent request being handled

	mu      sync.Mutex
	pending map[string]*pending
	always  map[alwaysKey]bool
	closed  bool

	healthMu sync.Mutex
	health   []namedCheck
}

type namedCheck struct {
	name  string
	check func() error
}

// Option changes a Supervisor made by New.
type Option func(*Supervisor)

// WithLogger sends the supervisor's own diagnostics (not the audit) to l.
func WithLogger(l *slog.Logger) Option { return func(s *Supervisor) { s.log = l } }

// New reads the tokens, opens the audit file if one is configured, and
// returns a supervisor ready to Serve. Close it when done.
func New(cfg Config, opts ...Option) (*Supervisor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("supervisor config: %w", err)
	}
	s := &Supervisor{
		cfg:     cfg,
		limits:  cfg.Limits.withDefaults(),
		log:     slog.New(slog.NewTextHandler(os.Stderr, nil)),
		pending: map[string]*pending{},
		always:  map[alwaysKey]bool{},
	}
	for _, o := range opts {
		o(s)
	}
	var err error
	if s.agentToken, err = readToken(cfg.AgentTokenFile, "agent"); err != nil {
		return nil, err
	}
	op, err := readToken(cfg.OperatorTokenFile, "operator")
	if err != nil {
		return nil, err
	}
	s.operatorToken = tokenFile{path: cfg.OperatorTokenFile, tok: op}
	if s.agentToken == op {
		return nil, errors.New("supervisor: the agent's and the operator's tokens are the same; " +
			"the agent would be able to decide its own approvals: mint two tokens")
	}
	s.events = newRetainingFeed(s.limits.MaxEvents, retention[api.Event]{
		head: s.limits.MaxEvents / 8, kept: s.limits.MaxEvents / 4, important: importantEvent,
		seq: func(e api.Event) uint64 { return e.Seq },
		gap: func(n int, seq uint64) api.Event {
			return api.Event{Seq: seq, Source: api.SourceSupervisor, Type: EventDropped,
				Message: fmt.Sprintf("%d events dropped here: the stream keeps the first %d, the newest %d and %d of pushes and approvals given",
					n, s.limits.MaxEvents/8, s.limits.MaxEvents, s.limits.MaxEvents/4)}
		},
	})
	s.auditFeed = newRetainingFeed(s.limits.MaxAudit, retention[api.AuditEntry]{
		head: s.limits.MaxAudit / 8, kept: s.limits.MaxAudit / 4, important: importantAudit,
		seq: func(e api.AuditEntry) uint64 { return e.Seq },
		gap: func(n int, seq uint64) api.AuditEntry {
			rec, _ := json.Marshal(map[string]any{"daemon": api.SourceSupervisor, "event": audit.EventDropped, "dropped_lines": n,
				"reason": fmt.Sprintf("dropped from the stream, which keeps the first %d lines, the newest %d and %d that let something through; the audit files keep more",
					s.limits.MaxAudit/8, s.limits.MaxAudit, s.limits.MaxAudit/4)})
			return api.AuditEntry{Seq: seq, Source: api.SourceSupervisor, Record: rec}
		},
	})
	s.followers = make(chan struct{}, s.limits.MaxFollowers)
	s.agentReqs = make(chan struct{}, s.limits.MaxAgentRequests)
	if cfg.AuditFile != "" {
		if s.audit, err = audit.Open(cfg.AuditFile, cfg.AuditMaxBytes); err != nil {
			return nil, fmt.Errorf("supervisor: %w", err)
		}
		s.audit.Tee(s.AuditSource(api.SourceSupervisor))
	}
	return s, nil
}

func readToken(path, role string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("supervisor: reading the %s token: %w", role, err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("supervisor: the %s token file %s is empty", role, path)
	}
	return tok, nil
}

// tokenFile is a token and the file it is read from again whenever the
// file changes.
type tokenFile struct {
	path string
	mu   sync.Mutex
	st   os.FileInfo // of the file tok was read from
	tok  string
}

// current is the file's token now; "" (nothing matches) when the file is
// unreadable or empty, or says the agent's token.
func (t *tokenFile) current(agent string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	st, err := os.Stat(t.path)
	if err != nil {
		return ""
	}
	// A new token is written aside and renamed into place: a new file.
	if t.st != nil && os.SameFile(st, t.st) && st.ModTime().Equal(t.st.ModTime()) && st.Size() == t.st.Size() {
		return t.tok
	}
	tok, err := readToken(t.path, "operator")
	if err != nil || tok == agent {
		return ""
	}
	t.st, t.tok = st, tok
	return tok
}

// Decider returns the hook the proxy and the gate ask through.
func (s *Supervisor) Decider() approval.Decider { return s }

// Emit records an event from inside the bundle (proxy, gate, bundle). Seq
// is assigned; Time defaults to now and Source to "bundle". It never
// blocks on readers.
func (s *Supervisor) Emit(ev Event) Event {
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	if ev.Source == "" {
		ev.Source = "bundle"
	}
	if ev.Type == "" {
		ev.Type = "event"
	}
	if len(ev.Data) > 0 && !json.Valid(ev.Data) {
		s.log.Error("supervisor: dropping the invalid JSON data of an event", "source", ev.Source, "type", ev.Type)
		ev.Data = nil
	}
	return s.events.add(func(seq uint64) api.Event {
		ev.Seq = seq
		return ev
	})
}

// AuditSource returns a function to pass to audit.Logger.Tee: every line
// that logger writes joins the merged audit stream. source names the
// daemon ("proxy", "gate"); a line's own "daemon" field, when present,
// takes precedence, so one logger shared by several daemons still tells
// them apart.
func (s *Supervisor) AuditSource(source string) func(line []byte) {
	return func(line []byte) {
		if !json.Valid(line) {
			s.log.Error("supervisor: dropping an audit line that is not JSON", "source", source)
			return
		}
		rec := json.RawMessage(bytes.Clone(line))
		var d struct {
			Daemon string `json:"daemon"`
		}
		if json.Unmarshal(rec, &d) == nil && d.Daemon != "" {
			source = d.Daemon
		}
		s.auditFeed.add(func(seq uint64) api.AuditEntry {
			return api.AuditEntry{Seq: seq, Source: source, Record: rec}
		})
	}
}

// EventDropped is the type of the event that stands for events the stream
// dropped.
const EventDropped = "events.dropped"

// importantAudit marks the merged audit's lines that let something
// through, as the audit files keep them apart.
func importantAudit(e api.AuditEntry) bool {
	var rec map[string]any
	return json.Unmarshal(e.Record, &rec) == nil && audit.Kept(rec)
}

// importantEvent marks the events a flood must not push out: pushes, the
// bundle's own, and approvals given. Never the agent's: it chooses them.
func importantEvent(e api.Event) bool {
	if e.Source == api.SourceAgent {
		return false
	}
	switch {
	case strings.HasPrefix(e.Type, "git.push."), strings.HasPrefix(e.Type, "bundle."):
		return true
	case e.Type == EventApprovalDecided:
		var d api.Decided
		return json.Unmarshal(e.Data, &d) == nil && d.Decision.Allowed()
	}
	return false
}

// AddHealth registers a daemon's health check; GET /v1/health calls it. A
// check should answer quickly: one that takes over HealthCheckTimeout counts
// as unhealthy. The supervisor itself is always reported.
func (s *Supervisor) AddHealth(name string, check func() error) {
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	s.health = append(s.health, namedCheck{name, check})
}

// HealthCheckTimeout bounds one daemon's health check.
const HealthCheckTimeout = 2 * time.Second

// Health runs every check at once.
func (s *Supervisor) Health() api.Health {
	s.healthMu.Lock()
	checks := append([]namedCheck(nil), s.health...)
	s.healthMu.Unlock()
	h := api.Health{OK: true, Bottle: s.cfg.Bottle, Daemons: map[string]api.DaemonHealth{
		api.SourceSupervisor: {OK: true},
	}}
	type result struct {
		name string
		err  error
	}
	results := make(chan result, len(checks))
	for _, c := range checks {
		go func() {
			defer func() {
				if r := recover(); r != nil {
					results <- result{c.name, fmt.Errorf("health check panicked: %v", r)}
				}
			}()
			results <- result{c.name, c.check()}
		}()
	}
	timeout := time.NewTimer(HealthCheckTimeout)
	defer timeout.Stop()
	for _, c := range checks {
		h.Daemons[c.name] = api.DaemonHealth{Error: fmt.Sprintf("no answer within %s", HealthCheckTimeout)}
	}
	for range checks {
		select {
		case r := <-results:
			if r.err != nil {
				h.Daemons[r.name] = api.DaemonHealth{Error: r.err.Error()}
			} else {
				h.Daemons[r.name] = api.DaemonHealth{OK: true}
			}
		case <-timeout.C:
			h.OK = false
			return h
		}
	}
	for _, d := range h.Daemons {
		h.OK = h.OK && d.OK
	}
	return h
}

// Serve answers the HTTP API on ln until ctx ends, then shuts down: live
// streams end at once, other requests get a few seconds to finish.
func (s *Supervisor) Serve(ctx context.Context, ln net.Listener) error {
	base, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	ln = listen.Limit(ln, listen.Limits{MaxConns: s.limits.MaxConns, MaxPerClient: s.limits.MaxConnsPerClient,
		WriteStall: time.Minute})
	srv := listen.HTTPServer(s.Handler(), listen.Timeouts{Header: 10 * time.Second, Body: 30 * time.Second, Idle: 2 * time.Minute})
	srv.BaseContext = func(net.Listener) context.Context { return base }
	srv.ErrorLog = slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("supervisor: serving: %w", err)
	case <-ctx.Done():
	}
	cancel() // ends the live streams, which would otherwise hold Shutdown
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("supervisor: serving: %w", err)
	}
	return nil
}

// Close denies every pending request and closes the audit file. Later
// requests are denied at once.
func (s *Supervisor) Close() error {
	s.mu.Lock()
	s.closed = true
	var held []*pending
	for id, p := range s.pending {
		delete(s.pending, id)
		held = append(held, p)
	}
	s.mu.Unlock()
	for _, p := range held {
		s.settle(p, approval.Deny, byShutdown, "the bundle is stopping")
	}
	return s.audit.Close()
}

// writeAudit writes one of the supervisor's own lines: to its audit file,
// whose tee puts it in the merged stream, or straight into the stream when
// there is no file (or writing the file failed).
func (s *Supervisor) writeAudit(rec auditRecord) {
	if s.audit != nil {
		err := s.audit.Write(rec)
		if err == nil {
			return
		}
		s.log.Error("supervisor: writing the audit line failed", "err", err)
	}
	line, err := json.Marshal(rec)
	if err != nil {
		s.log.Error("supervisor: encoding the audit line failed", "err", err)
		return
	}
	s.AuditSource(api.SourceSupervisor)(line)
}
