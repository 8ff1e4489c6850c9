package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/docker-bottle/docker-bottle/bundle/approval"
	"github.com/docker-bottle/docker-bottle/bundle/auth"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor/api"
)

type role int

const (
	roleNone role = iota
	roleAgent
	roleOperator
)

type roleKey struct{}

// route is one path's methods; operator marks those the agent may not use.
type route map[string]struct {
	operator bool
	h        http.HandlerFunc
}

// Handler is the HTTP API. Every request is authenticated first (401
// without a valid token, whatever the path), then routed (404, 405), then
// the role is checked (403).
func (s *Supervisor) Handler() http.Handler {
	mux := http.NewServeMux()
	handle := func(path string, rt route) { mux.Handle(path, s.methods(rt)) }
	handle(api.PathHealth, route{
		http.MethodGet: {false, s.serveHealth},
	})
	handle(api.PathEvents, route{
		http.MethodGet:  {true, s.serveEvents},
		http.MethodPost: {false, s.postEvent},
	})
	handle(api.PathApprovals, route{
		http.MethodGet:  {false, s.serveApprovals},
		http.MethodPost: {false, s.askApproval},
	})
	handle(api.PathApprovals+"/{id}", route{
		http.MethodPost: {true, s.decideApproval},
	})
	handle(api.PathAudit, route{
		http.MethodGet: {true, s.serveAudit},
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such route: %s", r.URL.Path))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rl := s.roleOf(r)
		if rl == roleNone {
			w.Header().Set("WWW-Authenticate", `Basic realm="docker bottle supervisor"`)
			writeError(w, http.StatusUnauthorized, "this needs the bottle's token (HTTP Basic password or Bearer)")
			return
		}
		// Health is quick and cheap, and the host asks it with the
		// agent's token: the agent's own requests must not crowd it out.
		if rl == roleAgent && r.URL.Path != api.PathHealth {
			select {
			case s.agentReqs <- struct{}{}:
				defer func() { <-s.agentReqs }()
			default:
				writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("the agent has %d requests open here already: wait for one to end", cap(s.agentReqs)))
				return
			}
		}
		mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), roleKey{}, rl)))
	})
}

// roleOf compares the presented token with both tokens, always both, in
// constant time.
func (s *Supervisor) roleOf(r *http.Request) role {
	h := r.Header.Get("Authorization")
	tok, ok := auth.Bearer(h)
	if !ok {
		tok, ok = auth.BasicPassword(h)
	}
	if !ok {
		return roleNone
	}
	op := auth.Equal(tok, s.operatorToken.current(s.agentToken))
	ag := auth.Equal(tok, s.agentToken)
	switch {
	case op:
		return roleOperator
	case ag:
		return roleAgent
	}
	return roleNone
}

func (s *Supervisor) methods(rt route) http.Handler {
	allowed := make([]string, 0, len(rt))
	for m := range rt {
		allowed = append(allowed, m)
	}
	slices.Sort(allowed)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m, ok := rt[r.Method]
		if !ok {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s %s: use %s", r.Method, r.URL.Path, strings.Join(allowed, " or ")))
			return
		}
		if m.operator && r.Context().Value(roleKey{}) != roleOperator {
			writeError(w, http.StatusForbidden, "this needs the operator's token: the agent's token may only post events, ask for tool approvals and list pending approvals")
			return
		}
		m.h(w, r)
	})
}

func (s *Supervisor) serveHealth(w http.ResponseWriter, r *http.Request) {
	h := s.Health()
	code := http.StatusOK
	if !h.OK {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, h)
}

// postedEvent is what a client may set in a posted event; the rest is the
// supervisor's.
type postedEvent struct {
	Type    string          `json:"type"`
	Message string          `json:"message,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"`
}

const maxEventType = 128

func (s *Supervisor) postEvent(w http.ResponseWriter, r *http.Request) {
	var pe postedEvent
	if !decodeBody(w, r, s.limits.MaxEventBytes, &pe) {
		return
	}
	if pe.Type == "" || len(pe.Type) > maxEventType || strings.ContainsAny(pe.Type, " \t\r\n") {
		writeError(w, http.StatusBadRequest, fmt.Sprintf(`an event needs a "type" of 1 to %d characters without spaces, e.g. "tool.use"`, maxEventType))
		return
	}
	source := api.SourceAgent
	if r.Context().Value(roleKey{}) == roleOperator {
		source = api.SourceOperator
	}
	ev := s.Emit(api.Event{Source: source, Type: pe.Type, Message: pe.Message, Data: pe.Data})
	writeJSON(w, http.StatusCreated, ev)
}

func (s *Supervisor) serveEvents(w http.ResponseWriter, r *http.Request) {
	serveFeed(s, w, r, s.events)
}

func (s *Supervisor) serveAudit(w http.ResponseWriter, r *http.Request) {
	serveFeed(s, w, r, s.auditFeed)
}

func (s *Supervisor) serveApprovals(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Pending())
}

// askApproval holds a tool request from the agent until it is settled and
// answers the outcome. The asker going away withdraws the request (denied,
// recorded by "requester"). Only tool requests: egress and push requests
// are the proxy's and the gate's to ask, so the agent cannot fill the
// human's queue with requests that look like theirs.
func (s *Supervisor) askApproval(w http.ResponseWriter, r *http.Request) {
	var req api.AskRequest
	if !decodeBody(w, r, maxAskBytes, &req) {
		return
	}
	if req.Kind != approval.Tool {
		writeError(w, http.StatusForbidden, fmt.Sprintf(`kind %q cannot be asked here: the agent asks only for "tool" approvals; egress and push requests come from the proxy and the gate`, req.Kind))
		return
	}
	requester := api.SourceAgent
	if r.Context().Value(roleKey{}) == roleOperator {
		requester = api.SourceOperator
	}
	o, id, err := s.decide(r.Context(), approval.Request{
		Kind: req.Kind, Subject: req.Subject, Detail: req.Detail, Requester: requester + " " + r.RemoteAddr,
	})
	if err != nil && r.Context().Err() == nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	// When the asker has gone, this answer reaches no one; it is written
	// anyway, the outcome being recorded already.
	writeJSON(w, http.StatusOK, api.Answer{ID: id, Decision: o.d, By: o.by, Reason: o.reason})
}

// maxAskBytes bounds an AskRequest: the subject and detail limits plus
// room for JSON escaping.
const maxAskBytes = 4 * (maxSubject + maxDetail)

func (s *Supervisor) decideApproval(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var req api.DecideRequest
	if !decodeBody(w, r, 4<<10, &req) {
		return
	}
	switch req.Decision {
	case approval.AllowOnce, approval.AllowAlways, approval.Deny:
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf(`decision %q: use "allow-once", "allow-always" or "deny"`, req.Decision))
		return
	}
	d, err := s.Resolve(id, req.Decision)
	if errors.Is(err, ErrNotPending) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no pending approval %q: it was never asked, or it was already decided, timed out or withdrawn", id))
		return
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// serveFeed answers a list (a JSON array) or, with ?follow=1, a live
// stream of newline-delimited JSON: the kept items after ?after=SEQ, then
// each new one, until the client goes away or the server stops.
func serveFeed[T any](s *Supervisor, w http.ResponseWriter, r *http.Request, f *feed[T]) {
	q := r.URL.Query()
	var after uint64
	if v := q.Get(api.QueryAfter); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("%s=%q: want a sequence number", api.QueryAfter, v))
			return
		}
		after = n
	}
	follow := false
	if v := q.Get(api.QueryFollow); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("%s=%q: want 1 or 0", api.QueryFollow, v))
			return
		}
		follow = b
	}
	if !follow {
		items, _, _ := f.since(after)
		if items == nil {
			items = []T{}
		}
		writeJSON(w, http.StatusOK, items)
		return
	}
	select {
	case s.followers <- struct{}{}:
		defer func() { <-s.followers }()
	default:
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("%d live streams are open already: close one and try again", cap(s.followers)))
		return
	}
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", api.ContentTypeNDJSON)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if flusher != nil {
		flusher.Flush() // the client knows at once that the stream is open
	}
	enc := json.NewEncoder(w)
	for {
		items, last, wake := f.since(after)
		for _, it := range items {
			if err := enc.Encode(it); err != nil {
				return
			}
		}
		if len(items) > 0 && flusher != nil {
			flusher.Flush()
		}
		after = last
		select {
		case <-wake:
		case <-r.Context().Done():
			return
		}
	}
}

// decodeBody reads one JSON object of at most limit bytes into v, strictly;
// on failure it answers 400 or 413 and returns false.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes", limit))
		return false
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "reading the body: "+err.Error())
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "the body is not the expected JSON object: "+err.Error())
		return false
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "the body has data after its JSON object")
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encoding the answer: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(api.Error{Error: msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}
